//! [`HttpTransport`] and its builder: every setting, checked once in
//! [`HttpTransportBuilder::build`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::HeaderMap;
use mcp_conn_core::{Link, Transport, TransportError};
use url::Url;

use crate::auth::TokenProvider;
use crate::proxy::{Env, Proxies, ProxyOption};
use crate::tls::TlsOptions;

/// Headers the transport sets itself; configuring them is an error.
const RESERVED: [&str; 7] = [
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "content-type",
    "content-length",
    "accept",
    "host",
];

/// Why an [`HttpTransport`] could not be built. Each variant names the
/// setting it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpConfigError {
    /// The URL does not parse, is not `http`/`https`, or has no host.
    #[error("invalid MCP server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header name or value is not valid HTTP.
    #[error("invalid HTTP header {name:?}: {reason}")]
    InvalidHeader {
        /// The header's name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header the transport sets itself (`Mcp-Session-Id`, `Accept`, …).
    #[error("HTTP header {name:?} is set by the transport and cannot be configured")]
    ReservedHeader {
        /// The header's name as given.
        name: String,
    },
    /// The bearer token is not valid in an HTTP header.
    #[error("invalid bearer token: {reason}")]
    InvalidToken {
        /// What is wrong with it (never the token itself).
        reason: String,
    },
    /// Two settings that exclude each other were both given.
    #[error("`{first}` and `{second}` cannot both be set")]
    Conflict {
        /// One setting.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// A TLS setting could not be used: a PEM file that cannot be read or
    /// holds no certificate, a key that does not match the certificate, no
    /// trusted authority at all.
    #[error("TLS setting `{setting}`: {reason}")]
    Tls {
        /// The setting (`ca_file`, `client_cert`, `client_key`,
        /// `SSL_CERT_FILE`, `tls_roots`).
        setting: &'static str,
        /// What is wrong (names the file, never a key's contents).
        reason: String,
    },
    /// A proxy URL (given, or from `HTTPS_PROXY` & co.) is not usable.
    #[error("proxy setting `{setting}`: {reason}")]
    InvalidProxy {
        /// The setting or environment variable.
        setting: &'static str,
        /// What is wrong (never the credentials).
        reason: String,
    },
    /// A setting that must be positive is zero.
    #[error("`{setting}` must be greater than zero")]
    Zero {
        /// The setting.
        setting: &'static str,
    },
}

/// Which HTTP transport to speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpMode {
    /// Streamable HTTP, falling back to HTTP+SSE when `initialize` gets 400,
    /// 404 or 405 (default).
    #[default]
    Auto,
    /// Streamable HTTP only.
    StreamableHttp,
    /// The 2024-11-05 HTTP+SSE transport only.
    LegacySse,
}

/// Where bearer tokens come from.
#[derive(Clone, Default)]
pub(crate) enum Credentials {
    /// No `Authorization` from the transport.
    #[default]
    None,
    /// A fixed `Authorization: Bearer …` (marked sensitive).
    Fixed(HeaderValue),
    /// Asked of a provider, which also refreshes them.
    Provider(Arc<dyn TokenProvider>),
}

/// The checked settings of a transport, shared by its links.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) url: Url,
    /// `url`, parsed once for every request to it.
    pub(crate) uri: http::Uri,
    /// Static headers; values marked sensitive.
    pub(crate) headers: HeaderMap,
    pub(crate) credentials: Credentials,
    pub(crate) mode: HttpMode,
    pub(crate) connect_timeout: Duration,
    pub(crate) idle_stream_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) max_in_flight: usize,
    /// The TLS client configuration (roots, client certificate); ALPN is
    /// set by the connector.
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) proxies: crate::proxy::Proxies,
    /// What the last connection negotiated (written by the links).
    pub(crate) negotiated: crate::connector::NegotiatedSlot,
}

/// Talks to an MCP server over Streamable HTTP (hyper, pooled keep-alive
/// connections), with the 2024-11-05 HTTP+SSE transport as a fallback.
///
/// Build one with [`HttpTransport::new`] (defaults) or
/// [`HttpTransport::builder`]. Redirects are never followed: a 3xx answer
/// is a [`TransportError::Http`] error, so that credentials never travel to
/// a place the configuration did not name (see the crate docs for every
/// failure and what it ends).
///
/// ```no_run
/// use mcp_conn_core::Connection;
/// use mcp_transport_http::HttpTransport;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let transport = HttpTransport::builder("https://mcp.example.com/mcp")
///     .bearer_token("secret-token")
///     .header("X-Tenant", "acme")
///     .build()?;
/// let connection = Connection::new("remote", transport);
/// let client = connection.connect().await?;
/// println!("{:?}", client.server_info());
/// connection.disconnect().await; // DELETEs the session
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HttpTransport {
    settings: Arc<Settings>,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        // Header values (tokens, keys) are secrets: only names are shown.
        let names: Vec<&str> = s.headers.keys().map(HeaderName::as_str).collect();
        let credentials = match s.credentials {
            Credentials::None => "none",
            Credentials::Fixed(_) => "bearer token",
            Credentials::Provider(_) => "token provider",
        };
        f.debug_struct("HttpTransport")
            .field("url", &redacted(&s.url))
            .field("headers", &names)
            .field("credentials", &credentials)
            .field("mode", &s.mode)
            .field("proxies", &s.proxies)
            .finish_non_exhaustive()
    }
}

/// The URL without a user name, password or query (which may hold keys).
pub(crate) fn redacted(url: &Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

impl HttpTransport {
    /// A transport for the MCP endpoint at `url` (`http` or `https`), with
    /// every other setting at its default. Short for
    /// `HttpTransport::builder(url).build()`.
    pub fn new(url: &str) -> Result<Self, HttpConfigError> {
        Self::builder(url).build()
    }

    /// A builder for a transport to `url`; nothing is checked until
    /// [`HttpTransportBuilder::build`].
    pub fn builder(url: impl Into<String>) -> HttpTransportBuilder {
        HttpTransportBuilder {
            url: url.into(),
            headers: Vec::new(),
            bearer_token: None,
            token_provider: None,
            mode: HttpMode::Auto,
            connect_timeout: Duration::from_secs(10),
            idle_stream_timeout: Duration::from_secs(300),
            response_timeout: Duration::from_secs(60),
            max_message_size: 16 * 1024 * 1024,
            max_in_flight: 256,
            tls: TlsOptions::default(),
            proxy: ProxyOption::default(),
            no_proxy: None,
            env: Env::default(),
        }
    }

    /// The endpoint URL.
    pub fn url(&self) -> &str {
        self.settings.url.as_str()
    }

    /// What the last connection this transport opened negotiated (proxy,
    /// TLS version, HTTP version); `None` before the first one.
    pub fn negotiated(&self) -> Option<crate::Negotiated> {
        self.settings.negotiated.lock().clone()
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn connect(&self) -> Result<Link, TransportError> {
        crate::link::open(self.settings.clone()).await
    }

    fn kind(&self) -> &'static str {
        "http"
    }

    fn wire_info(&self) -> Option<mcp_conn_core::WireInfo> {
        self.negotiated().map(|n| {
            mcp_conn_core::WireInfo::new(n.proxy, n.tls_version, Some(n.http_version.to_owned()))
        })
    }
}

/// Settings for an [`HttpTransport`]. Setters never fail; [`Self::build`]
/// checks everything at once.
#[must_use = "a builder does nothing until `build()`"]
pub struct HttpTransportBuilder {
    url: String,
    headers: Vec<(String, String)>,
    bearer_token: Option<String>,
    token_provider: Option<Arc<dyn TokenProvider>>,
    mode: HttpMode,
    connect_timeout: Duration,
    idle_stream_timeout: Duration,
    response_timeout: Duration,
    max_message_size: usize,
    max_in_flight: usize,
    pub(crate) tls: TlsOptions,
    pub(crate) proxy: ProxyOption,
    pub(crate) no_proxy: Option<String>,
    pub(crate) env: Env,
}

impl fmt::Debug for HttpTransportBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpTransportBuilder")
            .field("headers", &names)
            .field("bearer_token", &self.bearer_token.is_some())
            .field("token_provider", &self.token_provider.is_some())
            .field("mode", &self.mode)
            .field("tls", &self.tls)
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

impl HttpTransportBuilder {
    /// Adds a header sent on every request to this server (and no other).
    /// Its value is never shown in `Debug` or logs.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends `Authorization: Bearer <token>` on every request. Excludes
    /// [`Self::token_provider`].
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// Gets bearer tokens from `provider`, and asks it for a new one when
    /// the server answers 401, or 403 `insufficient_scope`. Excludes
    /// [`Self::bearer_token`].
    pub fn token_provider(mut self, provider: impl TokenProvider) -> Self {
        self.token_provider = Some(Arc::new(provider));
        self
    }

    /// Chooses the transport (default: Streamable HTTP with fallback).
    pub fn mode(mut self, mode: HttpMode) -> Self {
        self.mode = mode;
        self
    }

    /// Time allowed to open a TCP connection. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A stream that sends nothing (not even a keep-alive comment) for this
    /// long is treated as broken. Default 300 s.
    pub fn idle_stream_timeout(mut self, idle: Duration) -> Self {
        self.idle_stream_timeout = idle;
        self
    }

    /// How long the server may take to answer a POSTed notification or
    /// response (202). Requests are bounded by their own timeouts instead.
    /// Default 60 s.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The largest JSON body or SSE event accepted. Default 16 MiB.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// How many HTTP exchanges may be open at once. Default 256.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// Checks every setting and makes the transport.
    pub fn build(self) -> Result<HttpTransport, HttpConfigError> {
        let url = parse_url(&self.url)?;
        let uri = url
            .as_str()
            .parse::<http::Uri>()
            .map_err(|e| HttpConfigError::InvalidUrl {
                url: redacted(&url),
                reason: e.to_string(),
            })?;
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let bad = |reason: String| HttpConfigError::InvalidHeader {
                name: name.clone(),
                reason,
            };
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
            if RESERVED.contains(&header.as_str()) {
                return Err(HttpConfigError::ReservedHeader { name: name.clone() });
            }
            let mut value = HeaderValue::from_str(value).map_err(|e| bad(e.to_string()))?;
            value.set_sensitive(true);
            headers.append(header, value);
        }
        let credentials = match (self.bearer_token, self.token_provider) {
            (Some(_), Some(_)) => {
                return Err(HttpConfigError::Conflict {
                    first: "bearer_token",
                    second: "token_provider",
                })
            }
            (Some(token), None) => {
                let value = bearer(&token).map_err(|e| HttpConfigError::InvalidToken {
                    reason: e.to_string(),
                })?;
                Credentials::Fixed(value)
            }
            (None, Some(provider)) => Credentials::Provider(provider),
            (None, None) => Credentials::None,
        };
        if headers.contains_key(AUTHORIZATION) && !matches!(credentials, Credentials::None) {
            let second = match credentials {
                Credentials::Provider(_) => "token_provider",
                _ => "bearer_token",
            };
            return Err(HttpConfigError::Conflict {
                first: "header(\"Authorization\")",
                second,
            });
        }
        for (setting, zero) in [
            ("connect_timeout", self.connect_timeout.is_zero()),
            ("idle_stream_timeout", self.idle_stream_timeout.is_zero()),
            ("response_timeout", self.response_timeout.is_zero()),
            ("max_message_size", self.max_message_size == 0),
            ("max_in_flight", self.max_in_flight == 0),
        ] {
            if zero {
                return Err(HttpConfigError::Zero { setting });
            }
        }
        let proxies = Proxies::new(&self.proxy, self.no_proxy.as_deref(), &self.env)?;
        let tls = Arc::new(self.tls.client_config(&self.env)?);
        if let Credentials::Provider(provider) = &credentials {
            provider.use_network(&crate::TransportNetwork {
                tls: tls.clone(),
                proxies: proxies.clone(),
            });
        }
        Ok(HttpTransport {
            settings: Arc::new(Settings {
                tls,
                proxies,
                negotiated: Default::default(),
                url,
                uri,
                headers,
                credentials,
                mode: self.mode,
                connect_timeout: self.connect_timeout,
                idle_stream_timeout: self.idle_stream_timeout,
                response_timeout: self.response_timeout,
                max_message_size: self.max_message_size,
                max_in_flight: self.max_in_flight,
            }),
        })
    }
}

fn parse_url(url: &str) -> Result<Url, HttpConfigError> {
    let bad = |reason: String| HttpConfigError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let parsed = Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(format!(
            "scheme {:?} is not http or https",
            parsed.scheme()
        )));
    }
    if parsed.host_str().map_or(true, str::is_empty) {
        return Err(bad("no host".into()));
    }
    Ok(parsed)
}

/// `Bearer <token>` as a sensitive header value.
pub(crate) fn bearer(token: &str) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoTokens;

    #[async_trait]
    impl TokenProvider for NoTokens {
        async fn token(&self) -> Option<String> {
            None
        }
        async fn refresh(&self, _: &crate::AuthChallenge) -> Option<String> {
            None
        }
    }

    fn err(b: HttpTransportBuilder) -> HttpConfigError {
        match b.build() {
            Ok(t) => panic!("built {t:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn build_checks_every_setting() {
        let b = || HttpTransport::builder("http://127.0.0.1:1/mcp");
        for bad in ["not a url", "ftp://example.com/mcp", "http://"] {
            assert!(matches!(
                err(HttpTransport::builder(bad)),
                HttpConfigError::InvalidUrl { .. }
            ));
        }
        assert_eq!(
            err(b().bearer_token("a").token_provider(NoTokens)),
            HttpConfigError::Conflict {
                first: "bearer_token",
                second: "token_provider"
            }
        );
        assert!(matches!(
            err(b().header("Authorization", "x").bearer_token("a")),
            HttpConfigError::Conflict { .. }
        ));
        assert!(
            matches!(err(b().header("bad header", "x")), HttpConfigError::InvalidHeader { name, .. } if name == "bad header")
        );
        assert!(
            matches!(err(b().header("Mcp-Session-Id", "x")), HttpConfigError::ReservedHeader { name } if name == "Mcp-Session-Id")
        );
        assert!(matches!(
            err(b().bearer_token("a\nb")),
            HttpConfigError::InvalidToken { .. }
        ));
        assert_eq!(
            err(b().max_in_flight(0)),
            HttpConfigError::Zero {
                setting: "max_in_flight"
            }
        );
        assert_eq!(
            err(b().connect_timeout(Duration::ZERO)),
            HttpConfigError::Zero {
                setting: "connect_timeout"
            }
        );
        assert!(b().header("Authorization", "Basic x").build().is_ok());
    }

    #[test]
    fn debug_shows_no_secret() {
        let t = HttpTransport::builder("https://user:pw@example.com/mcp?key=k1")
            .bearer_token("tok-123")
            .header("X-Tenant", "acme")
            .build()
            .expect("valid");
        let debug = format!("{t:?}");
        for secret in ["tok-123", "acme", "pw", "k1"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }
}
