//! [`OAuthProvider`]: a [`TokenProvider`] that obtains, keeps and renews
//! tokens with OAuth 2.1 (authorization code + PKCE), as the MCP
//! authorization specification describes.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use oauth2::basic::BasicTokenResponse;
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, RefreshToken, Scope};
use url::Url;

use super::consent::Consent;
use super::discovery::{self, ServerMetadata};
use super::http::OAuthHttp;
use super::store::{ClientRegistration, CredentialStore, StoreKey, StoredCredentials};
use super::{OAuthError, Secret};
use crate::auth::{AuthChallenge, TokenProvider};
use crate::config::redacted;

mod builder;
mod grant;
mod registration;

pub use builder::OAuthProviderBuilder;
use grant::{apply, check_redirect, oauth_client, token_error};
/// Re-authorizations for more scope (403 `insufficient_scope`) allowed
/// after one consent.
pub const MAX_STEP_UPS: u32 = 3;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn split_scopes(s: Option<&str>) -> Vec<String> {
    s.map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The settings of an [`OAuthProvider`].
struct Settings {
    client_id: Option<String>,
    client_secret: Option<Secret>,
    client_metadata_url: Option<String>,
    scopes: Vec<String>,
    client_name: String,
    consent_timeout: Duration,
    refresh_margin: Duration,
    client_credentials: bool,
}

/// Gets tokens for one MCP server by OAuth 2.1, keeps them in a
/// [`CredentialStore`] and renews them. Hand it to
/// [`HttpTransportBuilder::token_provider`](crate::HttpTransportBuilder::token_provider);
/// keep a clone to read [`OAuthProvider::last_error`].
///
/// On a 401 it discovers the protected resource and its authorization
/// server, refreshes the token when it can, else identifies the client
/// (pre-registered, Client ID Metadata Document, or dynamic registration),
/// runs the [`Consent`] step with PKCE S256, `state` and `resource`, and
/// exchanges the code. On a 403 `insufficient_scope` it asks again with the
/// union of the scopes, at most [`MAX_STEP_UPS`] times.
#[derive(Clone)]
pub struct OAuthProvider {
    inner: Arc<Inner>,
}

struct Inner {
    server: Url,
    /// The server URL without query or fragment: the store's resource key.
    resource_key: String,
    settings: Settings,
    consent: Arc<dyn Consent>,
    store: Arc<dyn CredentialStore>,
    http: OAuthHttp,
    state: tokio::sync::Mutex<State>,
    last_error: Mutex<Option<Arc<OAuthError>>>,
    consents: AtomicU32,
}

#[derive(Default)]
struct State {
    loaded: bool,
    current: Option<(StoreKey, StoredCredentials)>,
    step_ups: u32,
}

/// What discovery found.
struct Discovered {
    meta: ServerMetadata,
    resource_indicator: String,
    scopes_supported: Option<Vec<String>>,
    key: StoreKey,
}

impl fmt::Debug for OAuthProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.inner.settings;
        f.debug_struct("OAuthProvider")
            .field("server", &redacted(&self.inner.server))
            .field("client_id", &s.client_id)
            .field("client_secret", &s.client_secret.is_some())
            .field("client_metadata_url", &s.client_metadata_url)
            .field("scopes", &s.scopes)
            .finish_non_exhaustive()
    }
}

impl OAuthProvider {
    /// A builder for the MCP server at `server_url`.
    pub fn builder(server_url: impl Into<String>) -> OAuthProviderBuilder {
        OAuthProviderBuilder {
            server: server_url.into(),
            client_id: None,
            client_secret: None,
            client_metadata_url: None,
            scopes: Vec::new(),
            client_name: "mcp-conn".into(),
            consent: None,
            store: None,
            http_timeout: Duration::from_secs(30),
            consent_timeout: Duration::from_secs(300),
            refresh_margin: Duration::from_secs(60),
            client_credentials: false,
        }
    }

    /// Why the last attempt to get a token failed, if it did (the transport
    /// only sees that there is no token).
    pub fn last_error(&self) -> Option<Arc<OAuthError>> {
        self.inner
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many times the consent step has run.
    pub fn consent_count(&self) -> u32 {
        self.inner.consents.load(Ordering::SeqCst)
    }
}

impl Inner {
    fn record(&self, e: OAuthError) {
        tracing::warn!(server = %redacted(&self.server), error = %e, "OAuth authorization failed");
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(e));
    }

    fn clear_error(&self) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    async fn ensure_loaded(&self, st: &mut State) {
        if st.loaded {
            return;
        }
        st.loaded = true;
        match self.store.for_resource(&self.resource_key).await {
            Ok(mut entries) => {
                entries.sort_by_key(|(_, c)| c.saved_at);
                st.current = entries.pop();
            }
            Err(e) => self.record(e),
        }
    }

    fn usable_token(&self, creds: &StoredCredentials) -> Option<String> {
        let token = creds.access_token.as_ref()?;
        match creds.expires_at {
            Some(at) if at <= now().saturating_add(self.settings.refresh_margin.as_secs()) => None,
            _ => Some(token.expose().to_owned()),
        }
    }

    async fn save(&self, st: &mut State, key: StoreKey, creds: StoredCredentials) -> String {
        let token = creds
            .access_token
            .as_ref()
            .map(|t| t.expose().to_owned())
            .unwrap_or_default();
        if let Some((old, _)) = &st.current {
            if old != &key {
                // The authorization server changed: the old entry is stale.
                if let Err(e) = self.store.remove(old).await {
                    self.record(e);
                }
            }
        }
        if let Err(e) = self.store.save(&key, &creds).await {
            self.record(e);
        }
        st.current = Some((key, creds));
        token
    }

    async fn refresh_tokens(&self, st: &mut State) -> Result<String, OAuthError> {
        let Some((key, creds)) = st.current.clone() else {
            return Err(OAuthError::Config("no stored credentials".into()));
        };
        let Some(refresh) = creds.refresh_token.clone() else {
            return Err(OAuthError::Config("no refresh token".into()));
        };
        let client = oauth_client(
            &creds.client,
            &creds.authorization_endpoint,
            &creds.token_endpoint,
        )?;
        let refresh = RefreshToken::new(refresh.expose().to_owned());
        let resp = client
            .exchange_refresh_token(&refresh)
            .add_extra_param("resource", creds.resource_indicator.clone())
            .request_async(&self.http)
            .await
            .map_err(|e| token_error(&creds.token_endpoint, e))?;
        let scopes = creds.scopes.clone();
        let updated = apply(creds, &resp, &scopes);
        Ok(self.save(st, key, updated).await)
    }

    async fn discover(&self, challenge: &AuthChallenge) -> Result<Discovered, OAuthError> {
        let prm = discovery::resource_metadata(
            &self.http,
            &self.server,
            challenge.resource_metadata.as_deref(),
        )
        .await?;
        let (meta, resource_indicator, scopes_supported) = match prm {
            Some(prm) => {
                let issuer = prm
                    .authorization_servers
                    .first()
                    .cloned()
                    .unwrap_or_default();
                let meta = discovery::server_metadata(&self.http, &issuer).await?;
                (meta, prm.resource, prm.scopes_supported)
            }
            None => (
                discovery::legacy_server_metadata(&self.http, &self.server).await?,
                self.resource_key.clone(),
                None,
            ),
        };
        let key = StoreKey {
            issuer: meta.issuer.clone(),
            resource: self.resource_key.clone(),
        };
        Ok(Discovered {
            meta,
            resource_indicator,
            scopes_supported,
            key,
        })
    }

    fn choose_scopes(&self, challenge: &AuthChallenge, d: &Discovered) -> Vec<String> {
        let from_challenge = split_scopes(challenge.scope.as_deref());
        if !from_challenge.is_empty() {
            return from_challenge;
        }
        if !self.settings.scopes.is_empty() {
            return self.settings.scopes.clone();
        }
        d.scopes_supported.clone().unwrap_or_default()
    }

    /// Consent, code, tokens.
    async fn authorize(
        &self,
        st: &mut State,
        d: Discovered,
        mut scopes: Vec<String>,
    ) -> Result<String, OAuthError> {
        if self.settings.client_credentials {
            return self.client_credentials(st, d, scopes).await;
        }
        let redirect_uri = self.consent.redirect_uri().await?;
        let known = match &st.current {
            Some((k, c)) if k == &d.key => Some(c.client.clone()),
            _ => self.store.load(&d.key).await?.map(|c| c.client),
        };
        let client = self.client_identity(&d, &redirect_uri, known).await?;
        if d.meta.supports_scope("offline_access") && !scopes.iter().any(|s| s == "offline_access")
        {
            scopes.push("offline_access".into());
        }
        let oauth = oauth_client(
            &client,
            &d.meta.authorization_endpoint,
            &d.meta.token_endpoint,
        )?;
        let (pkce, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = oauth
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(pkce)
            .add_extra_param("resource", d.resource_indicator.clone());
        for scope in &scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state) = request.url();
        self.consents.fetch_add(1, Ordering::SeqCst);
        let redirect =
            tokio::time::timeout(self.settings.consent_timeout, self.consent.authorize(&url))
                .await
                .map_err(|_| {
                    OAuthError::consent(format!(
                        "no answer within {:?}",
                        self.settings.consent_timeout
                    ))
                })??;
        let code = check_redirect(&redirect, state.secret(), &d.meta)?;
        let resp = oauth
            .exchange_code(AuthorizationCode::new(code.expose().to_owned()))
            .set_pkce_verifier(verifier)
            .add_extra_param("resource", d.resource_indicator.clone())
            .request_async(&self.http)
            .await
            .map_err(|e| token_error(&d.meta.token_endpoint, e))?;
        Ok(self.store_grant(st, d, client, &resp, &scopes).await)
    }

    /// Keeps what a token endpoint granted, for this registration and
    /// authorization server, and returns the access token.
    async fn store_grant(
        &self,
        st: &mut State,
        d: Discovered,
        client: ClientRegistration,
        resp: &BasicTokenResponse,
        scopes: &[String],
    ) -> String {
        let creds = StoredCredentials {
            client,
            authorization_endpoint: d.meta.authorization_endpoint.clone(),
            token_endpoint: d.meta.token_endpoint.clone(),
            resource_indicator: d.resource_indicator.clone(),
            access_token: None,
            refresh_token: None,
            expires_at: None,
            scopes: Vec::new(),
            saved_at: 0,
        };
        let creds = apply(creds, resp, scopes);
        self.save(st, d.key, creds).await
    }

    /// The `client_credentials` grant: a token for the client itself.
    async fn client_credentials(
        &self,
        st: &mut State,
        d: Discovered,
        scopes: Vec<String>,
    ) -> Result<String, OAuthError> {
        let s = &self.settings;
        let client = ClientRegistration {
            client_id: s.client_id.clone().unwrap_or_default(),
            client_secret: s.client_secret.clone(),
            token_endpoint_auth_method: Self::token_auth_method(&d.meta, s.client_secret.is_some()),
            // Never used: this grant has no redirect.
            redirect_uri: "http://localhost/".into(),
            kind: "pre-registered".into(),
        };
        let oauth = oauth_client(
            &client,
            &d.meta.authorization_endpoint,
            &d.meta.token_endpoint,
        )?;
        let mut request = oauth
            .exchange_client_credentials()
            .add_extra_param("resource", d.resource_indicator.clone());
        for scope in &scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let resp = request
            .request_async(&self.http)
            .await
            .map_err(|e| token_error(&d.meta.token_endpoint, e))?;
        Ok(self.store_grant(st, d, client, &resp, &scopes).await)
    }

    /// 401: refresh with the same authorization server if possible, else
    /// consent again.
    async fn on_unauthorized(
        &self,
        st: &mut State,
        challenge: &AuthChallenge,
    ) -> Result<String, OAuthError> {
        let d = self.discover(challenge).await?;
        let same_server = st.current.as_ref().is_some_and(|(k, _)| k == &d.key);
        let can_refresh = st
            .current
            .as_ref()
            .is_some_and(|(_, c)| c.refresh_token.is_some());
        if same_server && can_refresh {
            match self.refresh_tokens(st).await {
                Ok(token) => return Ok(token),
                Err(e) => {
                    tracing::info!(server = %redacted(&self.server), error = %e, "token refresh failed; asking for consent again")
                }
            }
        }
        let scopes = self.choose_scopes(challenge, &d);
        let token = self.authorize(st, d, scopes).await?;
        st.step_ups = 0;
        Ok(token)
    }

    /// 403 `insufficient_scope`: the union of the scopes held and asked for.
    async fn on_insufficient_scope(
        &self,
        st: &mut State,
        challenge: &AuthChallenge,
    ) -> Result<String, OAuthError> {
        let wanted = split_scopes(challenge.scope.as_deref());
        let mut union: Vec<String> = st
            .current
            .as_ref()
            .map(|(_, c)| c.scopes.clone())
            .unwrap_or_default();
        let before = union.len();
        for s in &wanted {
            if !union.contains(s) {
                union.push(s.clone());
            }
        }
        if union.len() == before || st.step_ups >= MAX_STEP_UPS {
            // Nothing new to ask for, or asked enough: asking again cannot help.
            return Err(OAuthError::StepUpLimit {
                attempts: st.step_ups,
                scopes: wanted.join(" "),
            });
        }
        st.step_ups += 1;
        let d = self.discover(challenge).await?;
        self.authorize(st, d, union).await
    }
}

#[async_trait]
impl TokenProvider for OAuthProvider {
    async fn token(&self) -> Option<String> {
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        inner.ensure_loaded(&mut st).await;
        let (_, creds) = st.current.as_ref()?;
        if let Some(token) = inner.usable_token(creds) {
            return Some(token);
        }
        creds.refresh_token.as_ref()?;
        match inner.refresh_tokens(&mut st).await {
            Ok(token) => {
                inner.clear_error();
                Some(token)
            }
            Err(e) => {
                // The server's 401 will start discovery and consent.
                tracing::info!(server = %redacted(&inner.server), error = %e, "token refresh failed");
                None
            }
        }
    }

    fn use_network(&self, network: &crate::TransportNetwork) {
        self.inner.http.use_network(network);
    }

    async fn refresh(&self, challenge: &AuthChallenge) -> Option<String> {
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        inner.ensure_loaded(&mut st).await;
        let result = if challenge.status == 403 {
            inner.on_insufficient_scope(&mut st, challenge).await
        } else {
            inner.on_unauthorized(&mut st, challenge).await
        };
        match result {
            Ok(token) => {
                inner.clear_error();
                Some(token)
            }
            Err(e) => {
                inner.record(e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(iss_supported: Option<bool>) -> ServerMetadata {
        let mut m =
            ServerMetadata::defaults_for(&Url::parse("https://as.example.com").expect("valid"));
        m.issuer = "https://as.example.com".into();
        m.authorization_response_iss_parameter_supported = iss_supported;
        m
    }

    fn redirect(q: &str) -> Url {
        Url::parse(&format!("http://localhost:1/callback?{q}")).expect("valid")
    }

    #[test]
    fn redirect_checks() {
        let m = meta(Some(true));
        let ok = check_redirect(
            &redirect("code=c&state=s&iss=https%3A%2F%2Fas.example.com"),
            "s",
            &m,
        );
        assert_eq!(ok.expect("accepted").expose(), "c");
        assert!(matches!(
            check_redirect(&redirect("code=c&state=s"), "s", &m),
            Err(OAuthError::IssMissing { .. })
        ));
        assert!(matches!(
            check_redirect(
                &redirect("code=c&state=s&iss=https%3A%2F%2Fas.example.com%2F"),
                "s",
                &m
            ),
            Err(OAuthError::IssMismatch { .. })
        ));
        assert!(matches!(
            check_redirect(
                &redirect("code=c&state=x&iss=https%3A%2F%2Fas.example.com"),
                "s",
                &m
            ),
            Err(OAuthError::StateMismatch)
        ));
        let not_advertised = meta(None);
        assert!(check_redirect(&redirect("code=c&state=s"), "s", &not_advertised).is_ok());
        assert!(matches!(
            check_redirect(
                &redirect("code=c&state=s&iss=https%3A%2F%2Fevil"),
                "s",
                &not_advertised
            ),
            Err(OAuthError::IssMismatch { .. })
        ));
        assert!(matches!(
            check_redirect(
                &redirect("error=access_denied&state=s"),
                "s",
                &not_advertised
            ),
            Err(OAuthError::AuthorizationDenied { .. })
        ));
        assert!(matches!(
            check_redirect(&redirect("state=s"), "s", &not_advertised),
            Err(OAuthError::MissingCode)
        ));
    }

    #[test]
    fn auth_method_choice() {
        let mut m = meta(None);
        assert_eq!(Inner::token_auth_method(&m, false), "none");
        assert_eq!(Inner::token_auth_method(&m, true), "client_secret_basic");
        m.token_endpoint_auth_methods_supported = Some(vec!["client_secret_post".into()]);
        assert_eq!(Inner::token_auth_method(&m, true), "client_secret_post");
    }

    #[test]
    fn builder_checks_and_debug_hides_the_secret() {
        assert!(OAuthProvider::builder("ftp://x").build().is_err());
        assert!(OAuthProvider::builder("https://x/mcp")
            .client_secret("s")
            .build()
            .is_err());
        assert!(OAuthProvider::builder("https://x/mcp")
            .client_metadata_url("http://x/doc.json")
            .build()
            .is_err());
        let p = OAuthProvider::builder("https://x/mcp")
            .client_id("id")
            .client_secret("very-secret")
            .build()
            .expect("valid");
        assert!(!format!("{p:?}").contains("very-secret"));
    }
}
