//! [`OAuthProvider`]: a [`TokenProvider`] that obtains, keeps and renews
//! tokens with OAuth 2.1 (authorization code + PKCE), as the MCP
//! authorization specification describes.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use url::Url;

use super::consent::{BrowserConsent, Consent};
use super::discovery::{self, ServerMetadata};
use super::http::OAuthHttp;
use super::store::{ClientRegistration, CredentialStore, MemoryStore, StoreKey, StoredCredentials};
use super::{OAuthError, Secret};
use crate::auth::{AuthChallenge, TokenProvider};
use crate::config::redacted;

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

/// Settings for an [`OAuthProvider`]; [`Self::build`] checks them.
#[must_use = "a builder does nothing until `build()`"]
pub struct OAuthProviderBuilder {
    server: String,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    client_metadata_url: Option<String>,
    scopes: Vec<String>,
    client_name: String,
    consent: Option<Arc<dyn Consent>>,
    store: Option<Arc<dyn CredentialStore>>,
    http_timeout: Duration,
    consent_timeout: Duration,
    refresh_margin: Duration,
    client_credentials: bool,
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

    fn token_auth_method(meta: &ServerMetadata, has_secret: bool) -> String {
        if !has_secret {
            return "none".into();
        }
        // RFC 8414: absent means client_secret_basic.
        let supported = meta
            .token_endpoint_auth_methods_supported
            .clone()
            .unwrap_or_else(|| vec!["client_secret_basic".into()]);
        ["client_secret_basic", "client_secret_post"]
            .into_iter()
            .find(|m| supported.iter().any(|s| s == m))
            .unwrap_or("none")
            .to_owned()
    }

    async fn client_identity(
        &self,
        d: &Discovered,
        redirect_uri: &str,
        known: Option<ClientRegistration>,
    ) -> Result<ClientRegistration, OAuthError> {
        let s = &self.settings;
        if let Some(id) = &s.client_id {
            return Ok(ClientRegistration {
                client_id: id.clone(),
                client_secret: s.client_secret.clone(),
                token_endpoint_auth_method: Self::token_auth_method(
                    &d.meta,
                    s.client_secret.is_some(),
                ),
                redirect_uri: redirect_uri.to_owned(),
                kind: "pre-registered".into(),
            });
        }
        if let Some(url) = &s.client_metadata_url {
            if d.meta.client_id_metadata_document_supported == Some(true) {
                return Ok(ClientRegistration {
                    client_id: url.clone(),
                    client_secret: None,
                    token_endpoint_auth_method: "none".into(),
                    redirect_uri: redirect_uri.to_owned(),
                    kind: "metadata-document".into(),
                });
            }
        }
        if let Some(known) = known {
            if known.kind == "dynamic" && known.redirect_uri == redirect_uri {
                return Ok(known);
            }
        }
        match &d.meta.registration_endpoint {
            Some(endpoint) => self.register(&d.meta, endpoint, redirect_uri).await,
            None => Err(OAuthError::NoClientIdentity {
                issuer: d.meta.issuer.clone(),
            }),
        }
    }

    /// RFC 7591 dynamic client registration.
    async fn register(
        &self,
        meta: &ServerMetadata,
        endpoint: &str,
        redirect_uri: &str,
    ) -> Result<ClientRegistration, OAuthError> {
        let bad = |reason: String| OAuthError::Registration {
            url: endpoint.split('?').next().unwrap_or_default().to_owned(),
            reason,
        };
        let url = Url::parse(endpoint).map_err(|e| bad(format!("not a URL: {e}")))?;
        let supported = meta
            .token_endpoint_auth_methods_supported
            .clone()
            .unwrap_or_else(|| vec!["client_secret_basic".into()]);
        let method = ["none", "client_secret_basic", "client_secret_post"]
            .into_iter()
            .find(|m| supported.iter().any(|s| s == m))
            .unwrap_or("none");
        let mut grant_types = vec!["authorization_code"];
        let lists_refresh = meta
            .grant_types_supported
            .as_ref()
            .is_some_and(|g| g.iter().any(|x| x == "refresh_token"));
        if lists_refresh {
            grant_types.push("refresh_token");
        }
        let loopback = Url::parse(redirect_uri).is_ok_and(|u| {
            matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
                || u.scheme() != "https"
        });
        let body = serde_json::json!({
            "client_name": self.settings.client_name,
            "redirect_uris": [redirect_uri],
            "grant_types": grant_types,
            "response_types": ["code"],
            "token_endpoint_auth_method": method,
            "application_type": if loopback { "native" } else { "web" },
        });
        let answer = self.http.post_json(&url, &body).await?;
        let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        if !answer.status.is_success() {
            let error = json
                .get("error")
                .and_then(|v| v.as_str())
                .unwrap_or("no error code");
            let description = json
                .get("error_description")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            return Err(bad(format!(
                "HTTP {}: {error} {description}",
                answer.status.as_u16()
            )));
        }
        let Some(client_id) = json.get("client_id").and_then(|v| v.as_str()) else {
            return Err(bad("the answer has no client_id".into()));
        };
        let client_secret = json
            .get("client_secret")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        let method = json
            .get("token_endpoint_auth_method")
            .and_then(|v| v.as_str())
            .unwrap_or(method);
        let method = match (method, &client_secret) {
            (m @ ("client_secret_basic" | "client_secret_post"), Some(_)) => m,
            _ => "none",
        };
        Ok(ClientRegistration {
            client_id: client_id.to_owned(),
            client_secret,
            token_endpoint_auth_method: method.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            kind: "dynamic".into(),
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
        let creds = apply(creds, &resp, &scopes);
        Ok(self.save(st, d.key, creds).await)
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
        let creds = apply(creds, &resp, &scopes);
        Ok(self.save(st, d.key, creds).await)
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

/// An `oauth2` client for one registration and authorization server.
fn oauth_client(
    client: &ClientRegistration,
    authorization_endpoint: &str,
    token_endpoint: &str,
) -> Result<
    BasicClient<
        oauth2::EndpointSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    >,
    OAuthError,
> {
    let bad = |what: &str, e: url::ParseError| OAuthError::Config(format!("{what}: {e}"));
    let mut oauth = BasicClient::new(ClientId::new(client.client_id.clone()))
        .set_auth_uri(
            AuthUrl::new(authorization_endpoint.to_owned())
                .map_err(|e| bad("authorization endpoint", e))?,
        )
        .set_token_uri(
            TokenUrl::new(token_endpoint.to_owned()).map_err(|e| bad("token endpoint", e))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(client.redirect_uri.clone()).map_err(|e| bad("redirect URI", e))?,
        );
    match (
        client.token_endpoint_auth_method.as_str(),
        &client.client_secret,
    ) {
        ("client_secret_basic", Some(secret)) => {
            oauth = oauth
                .set_client_secret(ClientSecret::new(secret.expose().to_owned()))
                .set_auth_type(AuthType::BasicAuth);
        }
        ("client_secret_post", Some(secret)) => {
            oauth = oauth
                .set_client_secret(ClientSecret::new(secret.expose().to_owned()))
                .set_auth_type(AuthType::RequestBody);
        }
        // A public client: client_id in the body, no secret.
        _ => oauth = oauth.set_auth_type(AuthType::RequestBody),
    }
    Ok(oauth)
}

/// The checks on the redirect: `state`, then `iss` (RFC 9207, exact string
/// comparison), then `error`, then `code`.
fn check_redirect(
    redirect: &Url,
    state: &str,
    meta: &ServerMetadata,
) -> Result<Secret, OAuthError> {
    let mut params = std::collections::HashMap::new();
    for (k, v) in redirect.query_pairs() {
        params
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    if params.get("state").map(String::as_str) != Some(state) {
        return Err(OAuthError::StateMismatch);
    }
    match params.get("iss") {
        Some(iss) if iss != &meta.issuer => {
            return Err(OAuthError::IssMismatch {
                expected: meta.issuer.clone(),
                found: iss.clone(),
            })
        }
        None if meta.authorization_response_iss_parameter_supported == Some(true) => {
            return Err(OAuthError::IssMissing {
                issuer: meta.issuer.clone(),
            })
        }
        _ => {}
    }
    if let Some(error) = params.get("error") {
        return Err(OAuthError::AuthorizationDenied {
            error: error.clone(),
            description: params.get("error_description").cloned(),
        });
    }
    params
        .remove("code")
        .filter(|c| !c.is_empty())
        .map(Secret::new)
        .ok_or(OAuthError::MissingCode)
}

fn apply(
    mut creds: StoredCredentials,
    resp: &BasicTokenResponse,
    requested: &[String],
) -> StoredCredentials {
    creds.access_token = Some(Secret::new(resp.access_token().secret().clone()));
    if let Some(refresh) = resp.refresh_token() {
        creds.refresh_token = Some(Secret::new(refresh.secret().clone()));
    }
    creds.expires_at = resp.expires_in().map(|d| now().saturating_add(d.as_secs()));
    creds.scopes = match resp.scopes() {
        Some(granted) => granted.iter().map(|s| s.to_string()).collect(),
        None => requested.to_vec(),
    };
    creds.saved_at = now();
    creds
}

/// The token endpoint's failure, without any token or body in it.
fn token_error(url: &str, e: RequestTokenError<OAuthError, BasicErrorResponse>) -> OAuthError {
    let url = url.split('?').next().unwrap_or_default().to_owned();
    match e {
        RequestTokenError::ServerResponse(r) => OAuthError::Token {
            invalid_grant: matches!(r.error(), BasicErrorResponseType::InvalidGrant),
            reason: match r.error_description() {
                Some(d) => format!("{}: {d}", r.error()),
                None => r.error().to_string(),
            },
            url,
        },
        RequestTokenError::Request(e) => e,
        RequestTokenError::Parse(e, _) => OAuthError::Token {
            reason: format!("unreadable answer (at `{}`)", e.path()),
            invalid_grant: false,
            url,
        },
        RequestTokenError::Other(reason) => OAuthError::Token {
            reason,
            invalid_grant: false,
            url,
        },
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
