//! `"auth"` of an HTTP entry in `mcpServers`: how to authorize with the
//! server (OAuth 2.1), and the credential store the pool's servers share.
//!
//! ```json
//! { "mcpServers": {
//!     "linear": { "url": "https://mcp.linear.app/mcp", "auth": "oauth" },
//!     "corp":   { "url": "https://mcp.corp.example/mcp",
//!                 "auth": { "client_id": "mcp-conn", "client_secret": "${CORP_SECRET}",
//!                           "scopes": ["tools:read", "tools:call"], "redirect_port": 8765 } }
//! } }
//! ```
//!
//! `"oauth"` (or `true`) uses discovery and dynamic registration; an object
//! may give `client_id`, `client_secret`, `scopes` (a list or one
//! space-separated string), `redirect_port` (the loopback port the browser
//! comes back to; 0 or absent: any free port) and `client_metadata_url`.
//! Everything needs the cargo feature `oauth`; without it such an entry is
//! an error that says so.

use std::fmt;

use serde_json::Value;

use crate::error::PoolConfigError;

/// How an HTTP server is authorized.
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HttpAuth {
    /// A pre-registered client id.
    pub client_id: Option<String>,
    /// Its secret (`${VAR}` expanded; never in `Debug`).
    pub client_secret: Option<String>,
    /// Scopes to ask for when the server does not say.
    pub scopes: Vec<String>,
    /// The loopback port for the browser's redirect (0: any).
    pub redirect_port: u16,
    /// This client's Client ID Metadata Document URL.
    pub client_metadata_url: Option<String>,
}

impl fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpAuth")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("scopes", &self.scopes)
            .field("redirect_port", &self.redirect_port)
            .field("client_metadata_url", &self.client_metadata_url)
            .finish()
    }
}

impl HttpAuth {
    /// Reads `auth` at `path`; `expand` resolves `${VAR}` in strings.
    pub(crate) fn parse(
        value: Value,
        path: &str,
        expand: &dyn Fn(&str, &str) -> Result<String, PoolConfigError>,
    ) -> Result<Option<Self>, PoolConfigError> {
        let object = match value {
            Value::Null | Value::Bool(false) => return Ok(None),
            Value::Bool(true) => return Ok(Some(HttpAuth::default())),
            Value::String(s) if s == "oauth" => return Ok(Some(HttpAuth::default())),
            Value::String(s) if s == "none" => return Ok(None),
            Value::Object(o) => o,
            _ => {
                return Err(PoolConfigError::new(
                    path,
                    "expected \"oauth\", \"none\" or an object (client_id, client_secret, scopes, redirect_port, client_metadata_url)",
                ))
            }
        };
        let mut auth = HttpAuth::default();
        for (key, value) in object {
            let at = format!("{path}.{key}");
            let string = |v: &Value| match v {
                Value::String(s) => expand(s, &at),
                _ => Err(PoolConfigError::new(&at, "expected a string")),
            };
            match key.as_str() {
                "type" => {
                    if value.as_str() != Some("oauth") {
                        return Err(PoolConfigError::new(&at, "only \"oauth\" is supported"));
                    }
                }
                "client_id" | "clientId" => auth.client_id = Some(string(&value)?),
                "client_secret" | "clientSecret" => auth.client_secret = Some(string(&value)?),
                "client_metadata_url" | "clientMetadataUrl" => {
                    auth.client_metadata_url = Some(string(&value)?)
                }
                "scopes" | "scope" => {
                    auth.scopes = match &value {
                        Value::String(s) => expand(s, &at)?
                            .split_whitespace()
                            .map(str::to_owned)
                            .collect(),
                        Value::Array(items) => items
                            .iter()
                            .enumerate()
                            .map(|(i, v)| match v {
                                Value::String(s) => expand(s, &format!("{at}[{i}]")),
                                _ => Err(PoolConfigError::new(
                                    format!("{at}[{i}]"),
                                    "expected a string",
                                )),
                            })
                            .collect::<Result<_, _>>()?,
                        _ => return Err(PoolConfigError::new(&at, "expected a list of strings")),
                    }
                }
                "redirect_port" | "redirectPort" => {
                    auth.redirect_port = value
                        .as_u64()
                        .and_then(|p| u16::try_from(p).ok())
                        .ok_or_else(|| {
                            PoolConfigError::new(&at, "expected a port number (0 to 65535)")
                        })?;
                }
                _ => return Err(PoolConfigError::new(&at, "unknown setting")),
            }
        }
        if auth.client_secret.is_some() && auth.client_id.is_none() {
            return Err(PoolConfigError::new(
                format!("{path}.client_secret"),
                "a client_secret needs a client_id",
            ));
        }
        Ok(Some(auth))
    }
}

#[cfg(feature = "oauth")]
pub use with_oauth::*;

#[cfg(feature = "oauth")]
mod with_oauth {
    use std::fmt;
    use std::path::PathBuf;
    use std::sync::Arc;

    use mcp_transport_http::oauth::{
        BrowserConsent, CredentialStore, FileStore, MemoryStore, NoConsent, OAuthProvider,
    };

    use super::HttpAuth;
    use crate::error::PoolConfigError;

    /// Why authorization failed (see [`crate::ConnectionPool::authorization_error`]).
    pub use mcp_transport_http::oauth::OAuthError;

    /// The credential store every server of a pool shares (tokens keyed by
    /// authorization server and resource, so servers never see each
    /// other's).
    #[derive(Clone)]
    pub struct SharedCredentials(pub Arc<dyn CredentialStore>);

    impl fmt::Debug for SharedCredentials {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("SharedCredentials")
        }
    }

    impl SharedCredentials {
        /// Tokens in memory only.
        pub fn memory() -> Self {
            SharedCredentials(Arc::new(MemoryStore::new()))
        }

        /// Tokens in the file at `path` (owner-only, written atomically).
        pub fn file(path: impl Into<PathBuf>) -> Self {
            SharedCredentials(Arc::new(FileStore::new(path)))
        }

        /// The default: `$MCP_CONN_CREDENTIALS`, else
        /// `$XDG_CONFIG_HOME/mcp-conn/credentials.json`, else
        /// `~/.config/mcp-conn/credentials.json`; in memory when there is
        /// no home. Nothing is written until a server needs authorization.
        pub fn default_location() -> Self {
            let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
            let path = var("MCP_CONN_CREDENTIALS").map(PathBuf::from).or_else(|| {
                var("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")))
                    .map(|d| d.join("mcp-conn").join("credentials.json"))
            });
            match path {
                Some(p) => Self::file(p),
                None => Self::memory(),
            }
        }
    }

    impl Default for SharedCredentials {
        fn default() -> Self {
            Self::default_location()
        }
    }

    impl crate::ConnectionPool {
        /// Why the server `name` (an entry with `auth`) has no usable
        /// token, if its last attempt to get one failed:
        /// [`OAuthError::ConsentRequired`](mcp_transport_http::oauth::OAuthError::ConsentRequired)
        /// when it needs the user's consent and
        /// [`crate::PoolConfig::ask_for_consent`] is off, else what went
        /// wrong in discovery, registration, consent or the token request.
        /// `None` for a server without `auth` or whose authorization works.
        pub fn authorization_error(
            &self,
            name: &str,
        ) -> Option<Arc<mcp_transport_http::oauth::OAuthError>> {
            self.inner.oauth.lock().get(name)?.last_error()
        }

        /// Whether the server `name` has an `auth` entry (OAuth).
        pub fn uses_oauth(&self, name: &str) -> bool {
            self.inner.oauth.lock().contains_key(name)
        }
    }

    impl HttpAuth {
        /// The OAuth provider for the server at `url`: browser consent on
        /// the configured loopback port, the pool's store.
        pub(crate) fn provider(
            &self,
            url: &str,
            pool: &crate::PoolConfig,
            path: &str,
        ) -> Result<OAuthProvider, PoolConfigError> {
            let mut b = OAuthProvider::builder(url);
            b = if pool.ask_for_consent {
                b.consent(BrowserConsent::new(self.redirect_port))
            } else {
                b.consent(NoConsent)
            };
            let mut b = b
                .store(pool.credentials.0.clone())
                .scopes(self.scopes.clone());
            if let Some(id) = &self.client_id {
                b = b.client_id(id);
            }
            if let Some(secret) = &self.client_secret {
                b = b.client_secret(secret.as_str());
            }
            if let Some(doc) = &self.client_metadata_url {
                b = b.client_metadata_url(doc);
            }
            b.build()
                .map_err(|e| PoolConfigError::new(format!("{path}.auth"), e.to_string()))
        }
    }
}
