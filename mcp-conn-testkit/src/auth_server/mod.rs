//! An OAuth 2.1 authorization server and a protected MCP endpoint in one
//! in-process hyper server on `127.0.0.1`, for the OAuth client's tests.
//!
//! Routes (`{base}` is `http://127.0.0.1:<port>`, the issuer is
//! `{base}{issuer_path}`):
//! - `POST /mcp`: a minimal MCP server (`initialize`, `ping`, `tools/list`,
//!   `tools/call` `echo`) that wants a live access token (401 with
//!   `WWW-Authenticate: Bearer resource_metadata=…` otherwise) and, for
//!   `tools/call`, the scopes in [`AuthServerConfig::call_scopes`] (403
//!   `insufficient_scope` otherwise);
//! - `GET /.well-known/oauth-protected-resource/mcp`: the resource metadata;
//! - the authorization server metadata at the location
//!   [`AuthServerConfig::metadata_at`] names;
//! - `{issuer_path}/authorize` (redirects at once: consent is automatic),
//!   `{issuer_path}/token`, `{issuer_path}/register`.
//!
//! Everything it receives is recorded for assertions.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

mod endpoints;

use endpoints::handle;

/// What the `iss` parameter of the authorization response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssInRedirect {
    /// The issuer.
    Correct,
    /// Another issuer.
    Wrong,
    /// None.
    Omit,
}

/// Where the authorization server metadata is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataAt {
    /// `/.well-known/oauth-authorization-server{issuer_path}`.
    OAuth,
    /// `{issuer_path}/.well-known/openid-configuration`.
    OpenIdAppended,
}

/// The server's settings.
#[derive(Debug, Clone)]
pub struct AuthServerConfig {
    /// The issuer's path (`""` or e.g. `/as`).
    pub issuer_path: String,
    /// Serve metadata whose `issuer` is this instead of the real one.
    pub metadata_issuer: Option<String>,
    /// Where the metadata is.
    pub metadata_at: MetadataAt,
    /// `code_challenge_methods_supported`.
    pub pkce_methods: Option<Vec<String>>,
    /// `authorization_response_iss_parameter_supported`.
    pub iss_supported: Option<bool>,
    /// What `iss` the redirect carries.
    pub iss_in_redirect: IssInRedirect,
    /// `token_endpoint_auth_methods_supported`.
    pub auth_methods: Vec<String>,
    /// `grant_types_supported`.
    pub grant_types: Vec<String>,
    /// `scopes_supported` of the authorization server.
    pub as_scopes: Option<Vec<String>>,
    /// Offer dynamic registration.
    pub registration: bool,
    /// `client_id_metadata_document_supported`.
    pub cimd: bool,
    /// Pre-registered clients: id and secret.
    pub clients: Vec<(String, Option<String>)>,
    /// The resource metadata's `resource` (default: the MCP URL).
    pub resource: Option<String>,
    /// The resource metadata's `scopes_supported`.
    pub resource_scopes: Option<Vec<String>>,
    /// The `scope` of the 401 challenge.
    pub challenge_scope: Option<String>,
    /// Put `resource_metadata` in the 401 challenge.
    pub challenge_metadata_url: bool,
    /// Scopes `tools/call` needs (403 `insufficient_scope` otherwise).
    pub call_scopes: Vec<String>,
    /// Every `tools/call` gets 403 with a new scope `extra-N`.
    pub always_more_scope: bool,
    /// `expires_in` of access tokens.
    pub expires_in: u64,
    /// Refuse consent (`error=access_denied`).
    pub deny: bool,
    /// Answer this endpoint (`prm`, `as-metadata`, `register`, `token`)
    /// with this status and body instead.
    pub garbage: Option<(String, u16, String)>,
}

impl Default for AuthServerConfig {
    fn default() -> Self {
        AuthServerConfig {
            issuer_path: "/as".into(),
            metadata_issuer: None,
            metadata_at: MetadataAt::OAuth,
            pkce_methods: Some(vec!["S256".into()]),
            iss_supported: Some(true),
            iss_in_redirect: IssInRedirect::Correct,
            auth_methods: vec!["none".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            as_scopes: None,
            registration: true,
            cimd: false,
            clients: Vec::new(),
            resource: None,
            resource_scopes: None,
            challenge_scope: None,
            challenge_metadata_url: true,
            call_scopes: Vec::new(),
            always_more_scope: false,
            expires_in: 3600,
            deny: false,
            garbage: None,
        }
    }
}

/// One request to an OAuth endpoint, as received.
#[derive(Debug, Clone, Default)]
pub struct OAuthRequest {
    /// `authorize`, `token`, `register`, `prm`, `as-metadata`.
    pub endpoint: String,
    /// Query or form parameters.
    pub params: HashMap<String, String>,
    /// The JSON body (registration).
    pub json: Value,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The path asked for.
    pub path: String,
}

#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    scopes: Vec<String>,
    challenge: String,
    redirect_uri: String,
    resource: Option<String>,
}

#[derive(Debug, Clone)]
struct Token {
    scopes: Vec<String>,
    live: bool,
}

#[derive(Default)]
struct State {
    config: AuthServerConfig,
    log: Vec<OAuthRequest>,
    clients: HashMap<String, (Option<String>, String)>,
    codes: HashMap<String, Grant>,
    access: HashMap<String, Token>,
    refresh: HashMap<String, (String, Vec<String>, bool)>,
    mcp_status: Vec<u16>,
}

/// The running server; stops when dropped.
#[derive(Debug)]
pub struct AuthServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    counter: Arc<AtomicU64>,
    _tasks: JoinSet<()>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AuthServer {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start(config: AuthServerConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            config,
            ..Default::default()
        }));
        let counter = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        let (st, n) = (state.clone(), counter.clone());
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let (st, n) = (st.clone(), n.clone());
                        connections.spawn(async move {
                            let service = service_fn(move |req| {
                                let (st, n) = (st.clone(), n.clone());
                                async move { Ok::<_, Infallible>(handle(addr, st, n, req).await) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(AuthServer {
            addr,
            state,
            counter,
            _tasks: tasks,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The MCP endpoint.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base())
    }

    /// The issuer.
    pub fn issuer(&self) -> String {
        format!("{}{}", self.base(), lock(&self.state).config.issuer_path)
    }

    /// Changes the settings.
    pub fn configure(&self, f: impl FnOnce(&mut AuthServerConfig)) {
        f(&mut lock(&self.state).config);
    }

    /// Every OAuth request so far.
    pub fn requests(&self) -> Vec<OAuthRequest> {
        lock(&self.state).log.clone()
    }

    /// The requests to one endpoint (`authorize`, `token`, `register`, …).
    pub fn requests_to(&self, endpoint: &str) -> Vec<OAuthRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.endpoint == endpoint)
            .collect()
    }

    /// The statuses the MCP endpoint answered, in order.
    pub fn mcp_statuses(&self) -> Vec<u16> {
        lock(&self.state).mcp_status.clone()
    }

    /// Makes every access token issued so far invalid (as if expired).
    pub fn expire_access_tokens(&self) {
        for t in lock(&self.state).access.values_mut() {
            t.live = false;
        }
    }

    /// Revokes every refresh token issued so far.
    pub fn revoke_refresh_tokens(&self) {
        for r in lock(&self.state).refresh.values_mut() {
            r.2 = false;
        }
    }

    /// How many tokens (access, refresh) were issued.
    pub fn issued(&self) -> u64 {
        self.counter.load(Ordering::SeqCst)
    }
}
