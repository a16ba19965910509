//! [`OAuthProviderBuilder`]: the provider's settings, checked once in `build()`.

use std::fmt;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use url::Url;

use crate::oauth::consent::{BrowserConsent, Consent};
use crate::oauth::http::OAuthHttp;
use crate::oauth::store::{CredentialStore, MemoryStore};
use crate::oauth::{OAuthError, Secret};

use super::*;

/// Settings for an [`OAuthProvider`]; [`Self::build`] checks them.
#[must_use = "a builder does nothing until `build()`"]
pub struct OAuthProviderBuilder {
    pub(super) server: String,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<Secret>,
    pub(super) client_metadata_url: Option<String>,
    pub(super) scopes: Vec<String>,
    pub(super) client_name: String,
    pub(super) consent: Option<Arc<dyn Consent>>,
    pub(super) store: Option<Arc<dyn CredentialStore>>,
    pub(super) http_timeout: Duration,
    pub(super) consent_timeout: Duration,
    pub(super) refresh_margin: Duration,
    pub(super) client_credentials: bool,
}

impl fmt::Debug for OAuthProviderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthProviderBuilder")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.is_some())
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl OAuthProviderBuilder {
    /// A pre-registered client id (used before any other identity).
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// The pre-registered client's secret.
    pub fn client_secret(mut self, secret: impl Into<Secret>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// The HTTPS URL of this client's Client ID Metadata Document, used as
    /// `client_id` where the authorization server supports it.
    pub fn client_metadata_url(mut self, url: impl Into<String>) -> Self {
        self.client_metadata_url = Some(url.into());
        self
    }

    /// Scopes to ask for when the server's challenge names none (before the
    /// resource metadata's `scopes_supported`).
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The `client_name` sent at dynamic registration. Default `mcp-conn`.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }

    /// How the user consents. Default: [`BrowserConsent`] on any free port.
    pub fn consent(mut self, consent: impl Consent) -> Self {
        self.consent = Some(Arc::new(consent));
        self
    }

    /// Where tokens are kept (share one among servers). Default: in memory.
    pub fn store(mut self, store: Arc<dyn CredentialStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Bound on each OAuth HTTP request. Default 30 s.
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// Bound on the consent step. Default 5 minutes.
    pub fn consent_timeout(mut self, timeout: Duration) -> Self {
        self.consent_timeout = timeout;
        self
    }

    /// Refresh a token this long before it expires. Default 60 s.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// Uses the `client_credentials` grant (machine to machine, no user and
    /// no consent) with the pre-registered [`Self::client_id`] and
    /// [`Self::client_secret`], which it requires.
    pub fn client_credentials(mut self) -> Self {
        self.client_credentials = true;
        self
    }

    /// Checks the settings and makes the provider.
    pub fn build(self) -> Result<OAuthProvider, OAuthError> {
        let server =
            Url::parse(&self.server).map_err(|e| OAuthError::Config(format!("server URL: {e}")))?;
        if !matches!(server.scheme(), "http" | "https") {
            return Err(OAuthError::Config("server URL is not http(s)".into()));
        }
        if self.client_secret.is_some() && self.client_id.is_none() {
            return Err(OAuthError::Config("client_secret without client_id".into()));
        }
        if let Some(url) = &self.client_metadata_url {
            let ok = Url::parse(url).is_ok_and(|u| u.scheme() == "https" && u.path() != "/");
            if !ok {
                return Err(OAuthError::Config(
                    "client_metadata_url must be an https URL with a path".into(),
                ));
            }
        }
        if self.client_credentials && self.client_secret.is_none() {
            return Err(OAuthError::Config(
                "client_credentials needs a client_id and a client_secret".into(),
            ));
        }
        if self.http_timeout.is_zero() || self.consent_timeout.is_zero() {
            return Err(OAuthError::Config(
                "timeouts must be greater than zero".into(),
            ));
        }
        let mut key = server.clone();
        key.set_query(None);
        key.set_fragment(None);
        Ok(OAuthProvider {
            inner: Arc::new(Inner {
                resource_key: key.to_string(),
                server,
                settings: Settings {
                    client_id: self.client_id,
                    client_secret: self.client_secret,
                    client_metadata_url: self.client_metadata_url,
                    scopes: self.scopes,
                    client_name: self.client_name,
                    consent_timeout: self.consent_timeout,
                    refresh_margin: self.refresh_margin,
                    client_credentials: self.client_credentials,
                },
                consent: self
                    .consent
                    .unwrap_or_else(|| Arc::new(BrowserConsent::new(0))),
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                http: OAuthHttp::new(self.http_timeout),
                state: tokio::sync::Mutex::new(State::default()),
                last_error: Mutex::new(None),
                consents: AtomicU32::new(0),
            }),
        })
    }
}
