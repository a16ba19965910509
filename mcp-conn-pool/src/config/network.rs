//! An HTTP server's network settings: the authority file to trust, the
//! client certificate, the proxy. No MCP host has a per-server convention
//! for these (Claude Code and the Node-based hosts read `HTTPS_PROXY`,
//! `NO_PROXY` and `NODE_EXTRA_CA_CERTS` from the environment, which the
//! HTTP transport honours by default), so the keys follow the file's own
//! style: `caFile`, `clientCert`, `clientKey`, `proxy`, `noProxy`.

use std::fmt;
use std::path::Path;

use serde_json::Value;

use super::expand::Expander;
use super::ConfigContext;
use crate::error::PoolConfigError;

/// Which proxy an HTTP server is reached through.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyChoice {
    /// `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY` (default).
    #[default]
    Environment,
    /// `"proxy": "http(s)://[user:password@]host:port"`.
    Url(String),
    /// `"proxy": false`: never a proxy.
    Off,
}

impl fmt::Debug for ProxyChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyChoice::Environment => f.write_str("Environment"),
            // The URL may hold credentials: only where it points.
            ProxyChoice::Url(url) => {
                let host = url.rsplit('@').next().unwrap_or_default();
                write!(f, "Url({host:?})")
            }
            ProxyChoice::Off => f.write_str("Off"),
        }
    }
}

/// `caFile`, `clientCert`, `clientKey`, `proxy`, `noProxy` of an HTTP
/// server (paths `${VAR}` expanded, relative ones taken from the config
/// file's folder).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpNetwork {
    /// A PEM file of authorities to trust besides the usual ones.
    pub ca_file: Option<String>,
    /// A PEM client certificate (chain) for mutual TLS.
    pub client_cert: Option<String>,
    /// Its PEM private key.
    pub client_key: Option<String>,
    /// The proxy.
    pub proxy: ProxyChoice,
    /// Hosts reached without a proxy (`NO_PROXY`'s syntax), instead of
    /// `NO_PROXY`.
    pub no_proxy: Option<String>,
}

/// The keys as written.
pub(super) struct RawNetwork {
    pub(super) ca_file: Option<String>,
    pub(super) client_cert: Option<String>,
    pub(super) client_key: Option<String>,
    pub(super) proxy: Option<Value>,
    pub(super) no_proxy: Option<String>,
}

impl RawNetwork {
    /// Whether any key is given (they are for HTTP servers only).
    pub(super) fn any(&self) -> Option<&'static str> {
        [
            ("caFile", self.ca_file.is_some()),
            ("clientCert", self.client_cert.is_some()),
            ("clientKey", self.client_key.is_some()),
            ("proxy", self.proxy.is_some()),
            ("noProxy", self.no_proxy.is_some()),
        ]
        .into_iter()
        .find_map(|(key, given)| given.then_some(key))
    }

    pub(super) fn resolve(
        self,
        path: &str,
        expand: &Expander<'_>,
    ) -> Result<HttpNetwork, PoolConfigError> {
        let file = |value: Option<String>, key: &str| {
            value
                .map(|v| {
                    let at = format!("{path}.{key}");
                    let v = expand.expand(&v, &at)?;
                    absolute(&v, &at, expand.context)
                })
                .transpose()
        };
        let network = HttpNetwork {
            ca_file: file(self.ca_file, "caFile")?,
            client_cert: file(self.client_cert, "clientCert")?,
            client_key: file(self.client_key, "clientKey")?,
            proxy: match self.proxy {
                None => ProxyChoice::Environment,
                Some(Value::Bool(false)) => ProxyChoice::Off,
                Some(Value::String(url)) => {
                    ProxyChoice::Url(expand.expand(&url, &format!("{path}.proxy"))?)
                }
                Some(_) => {
                    return Err(PoolConfigError::new(
                        format!("{path}.proxy"),
                        "expected a proxy URL, or false for none",
                    ))
                }
            },
            no_proxy: self
                .no_proxy
                .map(|v| expand.expand(&v, &format!("{path}.noProxy")))
                .transpose()?,
        };
        match (&network.client_cert, &network.client_key) {
            (Some(_), None) => Err(PoolConfigError::new(
                format!("{path}.clientKey"),
                "missing: \"clientCert\" needs its key",
            )),
            (None, Some(_)) => Err(PoolConfigError::new(
                format!("{path}.clientCert"),
                "missing: \"clientKey\" needs its certificate",
            )),
            _ => Ok(network),
        }
    }
}

fn absolute(file: &str, at: &str, context: &ConfigContext) -> Result<String, PoolConfigError> {
    let path = Path::new(file);
    if path.is_absolute() {
        return Ok(file.to_owned());
    }
    match &context.base_dir {
        Some(base) => Ok(base.join(path).to_string_lossy().into_owned()),
        None => Err(PoolConfigError::new(
            at,
            format!("relative path {file:?} but no config file folder to take it from"),
        )),
    }
}

#[cfg(feature = "http")]
impl HttpNetwork {
    /// Applies these settings to a transport builder.
    pub(super) fn apply(
        &self,
        mut b: mcp_transport_http::HttpTransportBuilder,
    ) -> mcp_transport_http::HttpTransportBuilder {
        if let Some(ca) = &self.ca_file {
            b = b.ca_file(ca);
        }
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            b = b.client_cert(cert, key);
        }
        match &self.proxy {
            ProxyChoice::Environment => {}
            ProxyChoice::Url(url) => b = b.proxy(url),
            ProxyChoice::Off => b = b.disable_proxy(),
        }
        if let Some(hosts) = &self.no_proxy {
            b = b.no_proxy(hosts);
        }
        b
    }

    /// The config key a TLS or proxy setting of the transport came from.
    pub(super) fn key_of(setting: &str) -> Option<&'static str> {
        Some(match setting {
            "ca_file" => "caFile",
            "client_cert" => "clientCert",
            "client_key" => "clientKey",
            "proxy" => "proxy",
            _ => return None,
        })
    }
}
