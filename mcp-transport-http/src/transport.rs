//! [`HttpTransport`]: settings, and the link that speaks Streamable HTTP (or
//! the legacy HTTP+SSE transport).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mcp_conn_core::jsonrpc::{parse_frame, Frame, JsonRpcError, Message, RequestId, Response};
use mcp_conn_core::{Inbound, Link, LinkRx, LinkTx, Transport, TransportError};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use url::Url;

use crate::auth::{AuthChallenge, TokenProvider};
use crate::sse::SseParser;

/// The session header (`Mcp-Session-Id`; header names are case-insensitive).
pub const SESSION_HEADER: &str = "mcp-session-id";
/// The protocol-version header sent after `initialize`.
pub const VERSION_HEADER: &str = "mcp-protocol-version";

const ACCEPT_BOTH: &str = "application/json, text/event-stream";
const SSE: &str = "text/event-stream";
/// How long to wait before resuming a stream whose server gave no `retry`.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// How many times one request's stream may be resumed.
const MAX_RESUMES: u32 = 5;
/// How long opening the GET stream may hold up the handshake.
const GET_STREAM_OPEN: Duration = Duration::from_secs(5);
/// Step-ups (403 `insufficient_scope`) tried for one message (item 60).
const MAX_STEP_UPS: u32 = 2;

/// Why an [`HttpTransport`] could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URL does not parse, or is not `http`/`https`.
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

/// Talks to an MCP server over Streamable HTTP (hyper, one pooled keep-alive
/// connection), with the 2024-11-05 HTTP+SSE transport as a fallback.
///
/// ```no_run
/// use mcp_conn_core::Connection;
/// use mcp_transport_http::HttpTransport;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let transport = HttpTransport::new("https://mcp.example.com/mcp")?
///     .bearer_token("secret-token")?
///     .header("X-Tenant", "acme")?;
/// let connection = Connection::new("remote", transport);
/// let client = connection.connect().await?;
/// println!("{:?}", client.server_info());
/// connection.disconnect().await; // DELETEs the session
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HttpTransport {
    url: Url,
    headers: HeaderMap,
    mode: HttpMode,
    connect_timeout: Duration,
    idle_stream_timeout: Duration,
    response_timeout: Duration,
    max_message_size: usize,
    max_in_flight: usize,
    token_provider: Option<Arc<dyn TokenProvider>>,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values (tokens, keys) are secrets: only names are shown.
        let names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("HttpTransport")
            .field("url", &self.url.as_str())
            .field("headers", &names)
            .field("mode", &self.mode)
            .field("token_provider", &self.token_provider.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    /// A transport for the MCP endpoint at `url` (`http` or `https`).
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        let bad = |reason: String| ConfigError::InvalidUrl {
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
        Ok(HttpTransport {
            url: parsed,
            headers: HeaderMap::new(),
            mode: HttpMode::Auto,
            connect_timeout: Duration::from_secs(10),
            idle_stream_timeout: Duration::from_secs(300),
            response_timeout: Duration::from_secs(60),
            max_message_size: 16 * 1024 * 1024,
            max_in_flight: 256,
            token_provider: None,
        })
    }

    /// Adds a header sent on every request to this server (and no other).
    /// Its value is never shown in `Debug` or logs.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, ConfigError> {
        let bad = |reason: String| ConfigError::InvalidHeader {
            name: name.to_owned(),
            reason,
        };
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let mut value = HeaderValue::from_str(value).map_err(|e| bad(e.to_string()))?;
        value.set_sensitive(true);
        self.headers.append(header, value);
        Ok(self)
    }

    /// Sends `Authorization: Bearer <token>` on every request.
    pub fn bearer_token(mut self, token: &str) -> Result<Self, ConfigError> {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| {
            ConfigError::InvalidHeader {
                name: "authorization".into(),
                reason: e.to_string(),
            }
        })?;
        value.set_sensitive(true);
        self.headers.insert(AUTHORIZATION, value);
        Ok(self)
    }

    /// Gets bearer tokens from `provider` (instead of a fixed
    /// [`HttpTransport::bearer_token`]), and asks it for a new one when the
    /// server answers 401, or 403 `insufficient_scope`.
    #[must_use]
    pub fn token_provider(mut self, provider: impl TokenProvider) -> Self {
        self.token_provider = Some(Arc::new(provider));
        self
    }

    /// Chooses the transport (default: Streamable HTTP with fallback).
    #[must_use]
    pub fn mode(mut self, mode: HttpMode) -> Self {
        self.mode = mode;
        self
    }

    /// Time allowed to open a TCP (and TLS) connection. Default 10 s.
    #[must_use]
    pub fn timeout(mut self, connect: Duration) -> Self {
        self.connect_timeout = connect;
        self
    }

    /// A stream that sends nothing (not even a keep-alive comment) for this
    /// long is treated as broken. Default 300 s.
    #[must_use]
    pub fn idle_stream_timeout(mut self, idle: Duration) -> Self {
        self.idle_stream_timeout = idle;
        self
    }

    /// How long the server may take to answer a POSTed notification or
    /// response (202). Requests are bounded by their own timeouts instead.
    /// Default 60 s.
    #[must_use]
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The largest JSON body or SSE event accepted. Default 16 MiB.
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// How many HTTP exchanges may be open at once. Default 256.
    #[must_use]
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// The endpoint URL.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn connect(&self) -> Result<Link, TransportError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(self.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        let (tx, rx) = mpsc::channel(1024);
        let token = match &self.token_provider {
            Some(p) => p.token().await.and_then(|t| bearer(&t)),
            None => None,
        };
        let shared = Arc::new(Shared {
            token_provider: self.token_provider.clone(),
            token: Mutex::new(token),
            client,
            base: self.url.clone(),
            endpoint: Mutex::new(self.url.clone()),
            headers: self.headers.clone(),
            mode: self.mode,
            session: Mutex::new(None),
            version: Mutex::new(None),
            init_params: Mutex::new(None),
            legacy: AtomicBool::new(self.mode == HttpMode::LegacySse),
            get_stream_started: AtomicBool::new(false),
            wants_get_stream: AtomicBool::new(false),
            init_id: Mutex::new(None),
            reinit: tokio::sync::Mutex::new(()),
            in_flight: Mutex::new(HashMap::new()),
            incoming: tx,
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            permits: Arc::new(Semaphore::new(self.max_in_flight)),
            idle_stream_timeout: self.idle_stream_timeout,
            response_timeout: self.response_timeout,
            max_message_size: self.max_message_size,
        });
        if self.mode == HttpMode::LegacySse {
            shared.open_legacy().await?;
        }
        Ok(Link::new(
            HttpTx {
                shared: shared.clone(),
                closed: false,
            },
            HttpRx { rx },
        ))
    }

    fn kind(&self) -> &'static str {
        "http"
    }
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

enum Item {
    Message(Message),
    Fatal(TransportError),
}

struct Shared {
    token_provider: Option<Arc<dyn TokenProvider>>,
    /// The provider's current token, as a header value.
    token: Mutex<Option<HeaderValue>>,
    client: HttpClient,
    /// The URL the user gave.
    base: Url,
    /// Where messages are POSTed (the legacy transport's `endpoint` event
    /// changes it).
    endpoint: Mutex<Url>,
    headers: HeaderMap,
    mode: HttpMode,
    session: Mutex<Option<HeaderValue>>,
    version: Mutex<Option<String>>,
    /// The `initialize` params, to start a fresh session after a 404.
    init_params: Mutex<Option<serde_json::Value>>,
    legacy: AtomicBool,
    get_stream_started: AtomicBool,
    /// Whether the `initialize` result calls for a GET stream.
    wants_get_stream: AtomicBool,
    /// The id of the `initialize` request whose result is being waited for.
    init_id: Mutex<Option<RequestId>>,
    /// Serialises re-initialisation after a 404 (guards an operation, not data).
    reinit: tokio::sync::Mutex<()>,
    /// Requests whose HTTP exchange is open, to drop it when the engine
    /// cancels the request.
    in_flight: Mutex<HashMap<RequestId, CancellationToken>>,
    incoming: mpsc::Sender<Item>,
    cancel: CancellationToken,
    tasks: TaskTracker,
    permits: Arc<Semaphore>,
    idle_stream_timeout: Duration,
    response_timeout: Duration,
    max_message_size: usize,
}

fn bearer(token: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn session(&self) -> Option<HeaderValue> {
        lock(&self.session).clone()
    }

    async fn push(&self, msg: Message) {
        let _ = self.incoming.send(Item::Message(msg)).await;
    }

    /// Ends the link with `error` (the first one is what the engine sees).
    async fn fatal(&self, error: TransportError) {
        if !self.cancel.is_cancelled() {
            tracing::debug!(%error, "HTTP link lost");
            let _ = self.incoming.send(Item::Fatal(error)).await;
        }
    }

    fn build(
        &self,
        method: Method,
        url: &Url,
        accept: &str,
        body: Option<Vec<u8>>,
        with_version: bool,
    ) -> Result<Request<Full<Bytes>>, TransportError> {
        let mut req = Request::builder().method(method).uri(url.as_str());
        if let Some(headers) = req.headers_mut() {
            headers.extend(self.headers.clone());
            if let Some(token) = lock(&self.token).clone() {
                headers.insert(AUTHORIZATION, token);
            }
            headers.insert(
                ACCEPT,
                HeaderValue::from_static(if accept == SSE { SSE } else { ACCEPT_BOTH }),
            );
            if body.is_some() {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            if !self.legacy.load(Ordering::SeqCst) {
                if let Some(session) = self.session() {
                    headers.insert(HeaderName::from_static(SESSION_HEADER), session);
                }
                if with_version {
                    if let Some(v) = lock(&self.version)
                        .as_ref()
                        .and_then(|v| HeaderValue::from_str(v).ok())
                    {
                        headers.insert(HeaderName::from_static(VERSION_HEADER), v);
                    }
                }
            }
        }
        let body = Full::new(Bytes::from(body.unwrap_or_default()));
        req.body(body)
            .map_err(|e| TransportError::Protocol(format!("cannot build a request for {url}: {e}")))
    }

    async fn send(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<hyper::Response<Incoming>, TransportError> {
        let target = req.uri().to_string();
        self.client
            .request(req)
            .await
            .map_err(|e| crate::failure::client_error(e, &target))
    }

    /// POSTs one message and handles the reply (checklist items 44-50).
    async fn deliver(self: &Arc<Self>, msg: &Message) -> Result<(), TransportError> {
        let (is_request, id, method) = match msg {
            Message::Request(r) => (true, Some(r.id.clone()), r.method.as_str()),
            Message::Notification(n) => (false, None, n.method.as_str()),
            Message::Response(_) => (false, None, ""),
        };
        let is_init = method == "initialize";
        if let (true, Message::Request(r)) = (is_init, msg) {
            *lock(&self.init_params) = r.params.clone();
            *lock(&self.init_id) = Some(r.id.clone());
        }
        let body = msg.to_vec();
        let mut retried = false;
        let (mut refreshed, mut step_ups) = (false, 0);
        loop {
            let sent_session = self.session();
            let endpoint = lock(&self.endpoint).clone();
            let post =
                self.send(self.build(Method::POST, &endpoint, "", Some(body.clone()), !is_init)?);
            let resp = if is_request {
                // Bounded by the request's own timeout: the engine cancels
                // it, which drops this exchange.
                post.await?
            } else {
                tokio::time::timeout(self.response_timeout, post)
                    .await
                    .map_err(|_| TransportError::Timeout {
                        what: format!("the server's answer to a POSTed `{method}`"),
                        after: self.response_timeout,
                    })??
            };
            let status = resp.status();
            if let Some(provider) = &self.token_provider {
                let www = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let challenge = AuthChallenge::parse(status.as_u16(), &www);
                let step_up = status == StatusCode::FORBIDDEN
                    && challenge.error.as_deref() == Some("insufficient_scope");
                // Item 59: ask once on 401; item 60: step up, at most twice.
                if (status == StatusCode::UNAUTHORIZED && !refreshed)
                    || (step_up && step_ups < MAX_STEP_UPS)
                {
                    if status == StatusCode::UNAUTHORIZED {
                        refreshed = true;
                    } else {
                        step_ups += 1;
                    }
                    let _ = self.read_body(resp.into_body()).await;
                    if let Some(token) = provider.refresh(&challenge).await.and_then(|t| bearer(&t))
                    {
                        *lock(&self.token) = Some(token);
                        continue;
                    }
                    return Err(match status {
                        StatusCode::UNAUTHORIZED => TransportError::Unauthorized {
                            www_authenticate: Some(www),
                        },
                        _ => TransportError::Http {
                            status: 403,
                            body: www,
                            retry_after: None,
                        },
                    });
                }
            }
            let legacy = self.legacy.load(Ordering::SeqCst);
            if status == StatusCode::NOT_FOUND
                && sent_session.is_some()
                && !retried
                && !is_init
                && !legacy
            {
                // Checklist item 50: the session expired. Start a fresh one,
                // then send this message once more.
                tracing::info!("the server ended the session (404); starting a new one");
                self.reinitialize(sent_session).await?;
                if method == "notifications/initialized" {
                    return Ok(()); // the fresh session sent its own (item 15: once)
                }
                retried = true;
                continue;
            }
            if is_init
                && !legacy
                && self.mode == HttpMode::Auto
                && matches!(status.as_u16(), 400 | 404 | 405)
            {
                // Checklist item 56: an old server; use HTTP+SSE.
                tracing::info!(%status, "initialize was refused; trying the HTTP+SSE transport");
                self.open_legacy().await?;
                return Box::pin(self.deliver(msg)).await;
            }
            return self
                .handle_reply(resp, is_request, is_init, id, method)
                .await;
        }
    }

    async fn handle_reply(
        self: &Arc<Self>,
        resp: hyper::Response<Incoming>,
        is_request: bool,
        is_init: bool,
        id: Option<RequestId>,
        method: &str,
    ) -> Result<(), TransportError> {
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if status.is_success() {
            if is_init {
                *lock(&self.session) = resp.headers().get(SESSION_HEADER).cloned().map(|mut v| {
                    v.set_sensitive(true);
                    v
                });
            }
            if self.legacy.load(Ordering::SeqCst) {
                return Ok(()); // the answer comes on the SSE stream
            }
            if content_type.starts_with(SSE) {
                return self.read_reply_stream(resp.into_body(), id).await;
            }
            if content_type.starts_with("application/json") {
                let body = self.read_body(resp.into_body()).await?;
                self.take_frame(&body).await;
            } else if is_request {
                tracing::warn!(%status, method, "a request got no JSON or SSE reply");
            }
            if method == "notifications/initialized" {
                self.open_get_stream().await;
            }
            return Ok(());
        }
        let www = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = self.read_body(resp.into_body()).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned();
        match status.as_u16() {
            401 => Err(TransportError::Unauthorized {
                www_authenticate: www,
            }),
            403 | 500..=599 => Err(TransportError::Http {
                status: status.as_u16(),
                body: text,
                retry_after: None,
            }),
            code => {
                // A 4xx about this one message: pass on the server's JSON-RPC
                // error if it sent one, else answer the request with an error
                // that names the HTTP status.
                if self.take_frame(&body).await {
                    return Ok(());
                }
                match (is_request, id) {
                    (true, Some(id)) => {
                        let mut error = JsonRpcError::new(
                            mcp_conn_core::jsonrpc::codes::INVALID_REQUEST,
                            format!("HTTP {code}: {text}"),
                        );
                        error.data = Some(serde_json::json!({ "httpStatus": code }));
                        self.push(Message::Response(Response::error(Some(id), error)))
                            .await;
                    }
                    _ => tracing::warn!(status = code, method, "the server refused a message"),
                }
                Ok(())
            }
        }
    }

    /// Pushes every message of a JSON text; false if there was none.
    async fn take_frame(&self, body: &[u8]) -> bool {
        let messages = match parse_frame(body) {
            Ok(Frame::Single(m)) => vec![m],
            Ok(Frame::Batch(items)) => items.into_iter().filter_map(Result::ok).collect(),
            Err(_) => return false,
        };
        let any = !messages.is_empty();
        for m in messages {
            self.note_initialize_result(&m);
            self.push(m).await;
        }
        any
    }

    /// Remembers the negotiated version from the `initialize` result.
    /// Reads the `initialize` result as it passes (only that response is
    /// parsed): the negotiated version, and whether a GET stream is wanted.
    fn note_initialize_result(&self, msg: &Message) {
        let Message::Response(r) = msg else { return };
        if r.id.is_none() || r.id != *lock(&self.init_id) {
            return;
        }
        let Ok(v) = r.clone().into_value() else {
            return;
        };
        if let Some(version) = v.get("protocolVersion").and_then(|v| v.as_str()) {
            *lock(&self.version) = Some(version.to_owned());
        }
        // The standalone GET stream is optional: open it only when the server
        // can send something unasked (notifications it declared, or requests
        // to capabilities the client declared).
        let caps = &v["capabilities"];
        let server_talks = caps.get("logging").is_some()
            || ["tools", "prompts", "resources"]
                .iter()
                .any(|k| caps[k]["listChanged"] == true)
            || caps["resources"]["subscribe"] == true;
        let params = lock(&self.init_params).clone().unwrap_or_default();
        let client_listens = params["capabilities"].as_object().is_some_and(|c| {
            ["roots", "sampling", "elicitation"]
                .iter()
                .any(|k| c.contains_key(*k))
        });
        self.wants_get_stream
            .store(server_talks || client_listens, Ordering::SeqCst);
    }

    async fn read_body(&self, mut body: Incoming) -> Result<Vec<u8>, TransportError> {
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| TransportError::Protocol(format!("reading a body failed: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > self.max_message_size {
                    return Err(TransportError::MessageTooLarge {
                        size: out.len() + data.len(),
                        limit: self.max_message_size,
                    });
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(out)
    }

    /// Reads a request's SSE reply until its response arrives, resuming with
    /// GET and `Last-Event-ID` when the stream breaks first (items 47, 51, 52).
    async fn read_reply_stream(
        self: &Arc<Self>,
        body: Incoming,
        id: Option<RequestId>,
    ) -> Result<(), TransportError> {
        let mut cursor = StreamCursor::default();
        let mut body = body;
        let mut resumes = 0;
        loop {
            let seen = self.pump(body, &mut cursor, id.as_ref()).await;
            let Some(id) = &id else { return Ok(()) };
            match seen {
                Ok(true) => return Ok(()),
                Ok(false) | Err(_) => {
                    let Some(last) = cursor.last_event_id.clone() else {
                        tracing::debug!(%id, "a reply stream ended before its response and cannot be resumed");
                        return Err(TransportError::Eof);
                    };
                    resumes += 1;
                    if resumes > MAX_RESUMES {
                        return Err(TransportError::Protocol(format!(
                            "request {id}: gave up resuming its stream"
                        )));
                    }
                    tokio::time::sleep(cursor.retry.unwrap_or(DEFAULT_RETRY)).await;
                    body = self.resume(&last).await?;
                }
            }
        }
    }

    async fn resume(&self, last_event_id: &str) -> Result<Incoming, TransportError> {
        let base = lock(&self.endpoint).clone();
        let mut req = self.build(Method::GET, &base, SSE, None, true)?;
        if let Ok(v) = HeaderValue::from_str(last_event_id) {
            req.headers_mut()
                .insert(HeaderName::from_static("last-event-id"), v);
        }
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(TransportError::Http {
                status: resp.status().as_u16(),
                body: "resuming a stream failed".into(),
                retry_after: None,
            });
        }
        Ok(resp.into_body())
    }

    /// Reads SSE events and pushes their messages. Returns whether the
    /// response to `awaiting` was among them (reading stops there).
    async fn pump(
        &self,
        mut body: Incoming,
        cursor: &mut StreamCursor,
        awaiting: Option<&RequestId>,
    ) -> Result<bool, TransportError> {
        let mut parser = SseParser::new(self.max_message_size);
        loop {
            loop {
                let event = parser
                    .next_event()
                    .map_err(|e| TransportError::MessageTooLarge {
                        size: e.size,
                        limit: self.max_message_size,
                    })?;
                let Some(event) = event else { break };
                if let Some(ms) = event.retry {
                    cursor.retry = Some(Duration::from_millis(ms));
                }
                if let Some(id) = event.id.clone() {
                    cursor.last_event_id = Some(id);
                }
                if event.data.trim().is_empty() {
                    continue; // a priming event
                }
                if event.event == "endpoint" {
                    cursor.endpoint = Some(event.data.clone());
                    continue;
                }
                if !(event.event.is_empty() || event.event == "message") {
                    continue;
                }
                let messages = match parse_frame(event.data.as_bytes()) {
                    Ok(Frame::Single(m)) => vec![m],
                    Ok(Frame::Batch(items)) => items.into_iter().filter_map(Result::ok).collect(),
                    Err(e) => {
                        tracing::warn!(error = %e, "dropped an SSE event that is not JSON-RPC");
                        continue;
                    }
                };
                let mut answered = false;
                for m in messages {
                    if let (Some(want), Message::Response(r)) = (awaiting, &m) {
                        answered |= r.id.as_ref() == Some(want);
                    }
                    self.note_initialize_result(&m);
                    self.push(m).await;
                }
                if answered {
                    return Ok(true);
                }
            }
            let frame = tokio::time::timeout(self.idle_stream_timeout, body.frame()).await;
            match frame {
                Err(_) => {
                    return Err(TransportError::Timeout {
                        what: "an idle SSE stream".into(),
                        after: self.idle_stream_timeout,
                    })
                }
                Ok(None) => return Ok(false),
                Ok(Some(Err(e))) => {
                    return Err(TransportError::Protocol(format!(
                        "the SSE stream broke: {e}"
                    )))
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        parser.push(&data);
                    }
                }
            }
        }
    }

    /// Starts fresh after the server forgot the session: `initialize` again
    /// without a session id, then `notifications/initialized` (item 50).
    async fn reinitialize(
        self: &Arc<Self>,
        expired: Option<HeaderValue>,
    ) -> Result<(), TransportError> {
        let _gate = self.reinit.lock().await;
        if self.session() != expired {
            return Ok(()); // someone else already did it
        }
        *lock(&self.session) = None;
        self.get_stream_started.store(false, Ordering::SeqCst);
        let params = lock(&self.init_params).clone();
        let init = Message::request(
            RequestId::Str("mcp-conn-reinitialize".into()),
            "initialize",
            params,
        );
        let endpoint = lock(&self.endpoint).clone();
        let resp = self
            .send(self.build(Method::POST, &endpoint, "", Some(init.to_vec()), false)?)
            .await?;
        if !resp.status().is_success() {
            return Err(TransportError::Http {
                status: resp.status().as_u16(),
                body: "re-initializing an expired session failed".into(),
                retry_after: None,
            });
        }
        *lock(&self.session) = resp.headers().get(SESSION_HEADER).cloned();
        // The answer is ours, not the engine's: read it and drop it.
        let is_sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(SSE));
        if is_sse {
            let mut parser = SseParser::new(self.max_message_size);
            let mut body = resp.into_body();
            'read: while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    parser.push(&data);
                }
                while let Ok(Some(event)) = parser.next_event() {
                    if !event.data.trim().is_empty() {
                        break 'read;
                    }
                }
            }
        } else {
            let _ = self.read_body(resp.into_body()).await;
        }
        let note = Message::notification("notifications/initialized", None);
        let resp = self
            .send(self.build(Method::POST, &endpoint, "", Some(note.to_vec()), true)?)
            .await?;
        let _ = self.read_body(resp.into_body()).await;
        self.open_get_stream().await;
        Ok(())
    }

    /// Opens the optional GET stream for server-initiated messages (item
    /// 53) and waits until the server has answered it, so that nothing the
    /// server sends there right after the handshake is missed; then reads it
    /// in a task.
    async fn open_get_stream(self: &Arc<Self>) {
        if self.legacy.load(Ordering::SeqCst)
            || !self.wants_get_stream.load(Ordering::SeqCst)
            || self.get_stream_started.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let base = lock(&self.endpoint).clone();
        let req = match self.build(Method::GET, &base, SSE, None, true) {
            Ok(req) => req,
            Err(e) => {
                tracing::warn!(error = %e, "the GET stream could not be opened");
                return;
            }
        };
        let opened = tokio::time::timeout(GET_STREAM_OPEN, self.send(req)).await;
        let first = match opened {
            Ok(Ok(resp)) => Some(resp),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "the GET stream could not be opened");
                return;
            }
            Err(_) => None, // slow to answer: the task tries again
        };
        let shared = self.clone();
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = shared.run_get_stream(first) => {}
            }
        });
    }

    async fn run_get_stream(&self, mut first: Option<hyper::Response<Incoming>>) {
        let mut cursor = StreamCursor::default();
        loop {
            if let Some(resp) = first.take() {
                if !self.get_stream_reply(resp, &mut cursor).await {
                    return;
                }
                continue;
            }
            let base = lock(&self.endpoint).clone();
            let mut req = match self.build(Method::GET, &base, SSE, None, true) {
                Ok(req) => req,
                Err(e) => {
                    self.fatal(e).await;
                    return;
                }
            };
            if let Some(last) = cursor
                .last_event_id
                .as_ref()
                .and_then(|l| HeaderValue::from_str(l).ok())
            {
                req.headers_mut()
                    .insert(HeaderName::from_static("last-event-id"), last);
            }
            let resp = match self.send(req).await {
                Ok(resp) => resp,
                Err(e) => {
                    // The server is unreachable: the link is lost, and the
                    // connection learns it without waiting for a request.
                    self.fatal(e).await;
                    return;
                }
            };
            if !self.get_stream_reply(resp, &mut cursor).await {
                return;
            }
        }
    }

    /// Reads one answer to a GET; false when the stream is off for good.
    async fn get_stream_reply(
        &self,
        resp: hyper::Response<Incoming>,
        cursor: &mut StreamCursor,
    ) -> bool {
        let status = resp.status();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            tracing::debug!("the server offers no GET stream (405)");
            return false;
        }
        if !status.is_success() {
            tracing::debug!(%status, "the GET stream was refused");
            return false;
        }
        let _ = self.pump(resp.into_body(), cursor, None).await;
        tokio::time::sleep(cursor.retry.unwrap_or(DEFAULT_RETRY)).await;
        true
    }

    /// Opens the legacy HTTP+SSE transport: GET the URL, wait for the
    /// `endpoint` event, POST there from now on (item 56).
    async fn open_legacy(self: &Arc<Self>) -> Result<(), TransportError> {
        let req = self.build(Method::GET, &self.base, SSE, None, false)?;
        let resp = self.send(req).await?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED {
            let www = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            return Err(TransportError::Unauthorized {
                www_authenticate: www,
            });
        }
        let is_sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(SSE));
        if !status.is_success() || !is_sse {
            return Err(TransportError::Http {
                status: status.as_u16(),
                body: "neither Streamable HTTP nor HTTP+SSE is served at this URL".into(),
                retry_after: None,
            });
        }
        let (found_tx, found_rx) = oneshot::channel::<String>();
        let shared = self.clone();
        let cancel = self.cancel.clone();
        let body = resp.into_body();
        self.tasks.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = shared.run_legacy_stream(body, found_tx) => {}
            }
        });
        let endpoint = tokio::time::timeout(Duration::from_secs(30), found_rx)
            .await
            .map_err(|_| TransportError::Timeout {
                what: "the HTTP+SSE endpoint event".into(),
                after: Duration::from_secs(30),
            })?
            .map_err(|_| {
                TransportError::Protocol(
                    "the HTTP+SSE stream ended before its endpoint event".into(),
                )
            })?;
        let resolved = self
            .base
            .join(&endpoint)
            .map_err(|e| TransportError::Protocol(format!("bad endpoint {endpoint:?}: {e}")))?;
        *lock(&self.endpoint) = resolved;
        self.legacy.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn run_legacy_stream(&self, body: Incoming, found: oneshot::Sender<String>) {
        let mut parser = SseParser::new(self.max_message_size);
        let mut found = Some(found);
        let mut body = body;
        loop {
            while let Ok(Some(event)) = parser.next_event() {
                if event.event == "endpoint" {
                    if let Some(tx) = found.take() {
                        let _ = tx.send(event.data.trim().to_owned());
                    }
                    continue;
                }
                if event.data.trim().is_empty() {
                    continue;
                }
                match parse_frame(event.data.as_bytes()) {
                    Ok(Frame::Single(m)) => self.push(m).await,
                    Ok(Frame::Batch(items)) => {
                        for m in items.into_iter().filter_map(Result::ok) {
                            self.push(m).await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "dropped an SSE event that is not JSON-RPC")
                    }
                }
            }
            match tokio::time::timeout(self.idle_stream_timeout, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        parser.push(&data);
                    }
                }
                Ok(Some(Err(_))) | Ok(None) => {
                    self.fatal(TransportError::Eof).await;
                    return;
                }
                Err(_) => {
                    self.fatal(TransportError::Timeout {
                        what: "the idle HTTP+SSE stream".into(),
                        after: self.idle_stream_timeout,
                    })
                    .await;
                    return;
                }
            }
        }
    }
}

#[derive(Default)]
struct StreamCursor {
    last_event_id: Option<String>,
    retry: Option<Duration>,
    endpoint: Option<String>,
}

struct HttpTx {
    shared: Arc<Shared>,
    closed: bool,
}

impl HttpTx {
    fn spawn(&self, msg: Message, permit: OwnedSemaphorePermit) {
        let shared = self.shared.clone();
        let link = self.shared.cancel.clone();
        // A request's exchange can also be dropped on its own, when the
        // engine cancels the request.
        let own = link.child_token();
        let request_id = match &msg {
            Message::Request(r) => {
                lock(&shared.in_flight).insert(r.id.clone(), own.clone());
                Some(r.id.clone())
            }
            _ => None,
        };
        self.shared.tasks.spawn(async move {
            let outcome = tokio::select! {
                () = own.cancelled() => Ok(()),
                outcome = shared.deliver(&msg) => outcome,
            };
            if let Some(id) = request_id {
                lock(&shared.in_flight).remove(&id);
            }
            if let Err(e) = outcome {
                if !link.is_cancelled() {
                    shared.fatal(e).await;
                }
            }
            drop(permit);
        });
    }
}

#[async_trait]
impl LinkTx for HttpTx {
    async fn send(&mut self, msg: &Message) -> Result<(), TransportError> {
        if self.closed {
            return Err(TransportError::Closed);
        }
        if let Message::Notification(n) = msg {
            if n.method == "notifications/cancelled" {
                let id = n
                    .params
                    .as_ref()
                    .and_then(|p| p.get("requestId"))
                    .and_then(|id| serde_json::from_value::<RequestId>(id.clone()).ok());
                if let Some(token) = id.and_then(|id| lock(&self.shared.in_flight).remove(&id)) {
                    token.cancel();
                }
            }
        }
        if let Message::Notification(n) = msg {
            if n.method == "notifications/initialized" {
                // Checklist item 15: `initialized` reaches the server before
                // any later request, and so does the GET stream it opens:
                // deliver it here, holding the writer until it is done.
                return self.shared.deliver(msg).await;
            }
        }
        let permit = self
            .shared
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| TransportError::Closed)?;
        self.spawn(msg.clone(), permit);
        Ok(())
    }

    async fn close(&mut self, grace: Duration) -> Result<(), TransportError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let shared = &self.shared;
        shared.cancel.cancel();
        shared.tasks.close();
        let _ = tokio::time::timeout(grace, shared.tasks.wait()).await;
        // Checklist item 55: end the session; 2xx, 404 and 405 are all fine.
        if shared.session().is_some() && !shared.legacy.load(Ordering::SeqCst) {
            let endpoint = lock(&shared.endpoint).clone();
            let req = shared.build(Method::DELETE, &endpoint, "", None, true)?;
            match tokio::time::timeout(grace, shared.send(req)).await {
                Ok(Ok(resp)) => tracing::debug!(status = %resp.status(), "session deleted"),
                Ok(Err(e)) => tracing::debug!(error = %e, "DELETE of the session failed"),
                Err(_) => tracing::debug!("DELETE of the session timed out"),
            }
        }
        Ok(())
    }
}

impl Drop for HttpTx {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

struct HttpRx {
    rx: mpsc::Receiver<Item>,
}

#[async_trait]
impl LinkRx for HttpRx {
    async fn recv(&mut self) -> Result<Option<Inbound>, TransportError> {
        match self.rx.recv().await {
            Some(Item::Message(m)) => Ok(Some(Inbound::Message(m))),
            Some(Item::Fatal(e)) => Err(e),
            None => Ok(None),
        }
    }
}
