//! A scripted MCP server over HTTP, on `127.0.0.1`, for transport tests.
//!
//! It answers `initialize`, `ping`, `tools/list` and `tools/call` (`echo`,
//! `add`, `sleep {ms}`, `big {bytes}`, `ask_roots`: asks the client for its
//! roots on the reply stream first, `notify`: sends a log notification on the
//! reply stream first). Replies are JSON or SSE ([`Reply`]). Faults are queued
//! with [`TestHttpServer::push_fault`] and hit the next POSTed request.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

type Body = BoxBody<Bytes, Infallible>;

/// How a request's reply is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// `application/json`.
    Json,
    /// `text/event-stream`: a priming event, then the response, then the end.
    Sse,
}

/// A fault for the next POSTed request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (and `WWW-Authenticate` for 401).
    Status(u16),
    /// Never answer.
    Stall,
    /// Start an SSE reply, then cut the stream in the middle of the event.
    CutMidEvent,
    /// Send a priming event (`id`, `retry: ms`), close the stream, and give
    /// the response to a GET with `Last-Event-ID`.
    PrimeAndClose {
        /// The `retry` value, in milliseconds.
        retry_ms: u64,
    },
    /// Forget every session first (so a request with one gets 404).
    ExpireSessions,
    /// Answer with this status and, if given, this `Retry-After` value.
    Busy {
        /// 429 or 503, typically.
        status: u16,
        /// The `Retry-After` header as sent.
        retry_after: Option<String>,
    },
    /// Answer `200 text/html` (a login page, a proxy's error page).
    Html,
    /// Answer `200 application/json` with JSON that is not JSON-RPC.
    NotJsonRpc,
    /// Answer `307 Temporary Redirect` to this location.
    Redirect {
        /// The `Location` header.
        location: String,
    },
}

/// The server's settings.
#[derive(Debug, Clone)]
pub struct Behavior {
    /// JSON or SSE replies.
    pub reply: Reply,
    /// Whether to assign `Mcp-Session-Id`.
    pub sessions: bool,
    /// Whether GET opens a stream (else 405).
    pub get_stream: bool,
    /// Speak only the 2024-11-05 HTTP+SSE transport.
    pub legacy: bool,
    /// The status DELETE answers.
    pub delete_status: u16,
    /// Answer `initialize` with this version instead of the requested one.
    pub protocol_version: Option<String>,
    /// Answer every request with this status (401 comes with `WWW-Authenticate`).
    pub status_all: Option<u16>,
    /// The status POSTed notifications and responses get.
    pub notification_status: u16,
    /// Never answer POSTed notifications.
    pub stall_notifications: bool,
    /// Declare only `tools: {}` (nothing the server would send unasked).
    pub quiet: bool,
    /// Requests without `Authorization: Bearer <this>` get 401.
    pub require_token: Option<String>,
    /// `tools/call` without `Authorization: Bearer <this>` gets 403
    /// `insufficient_scope` (scope `tools:call`).
    pub scoped_token: Option<String>,
    /// The legacy transport names this endpoint instead of its own
    /// `/messages?session=…`.
    pub legacy_endpoint: Option<String>,
    /// GET (the stream) is answered with this status and `Retry-After`.
    pub get_busy: Option<(u16, Option<String>)>,
    /// Speak the stateless era with these versions (see `http_stateless`);
    /// GET gets 405. Turn `sessions` off with it.
    pub stateless: Option<Vec<String>>,
    /// Answer `server/discover` with this status and JSON body (`$ID` is
    /// replaced by the request's id), as deployed servers answer the era
    /// probe.
    pub discover_reply: Option<(u16, String)>,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            reply: Reply::Json,
            sessions: true,
            get_stream: false,
            legacy: false,
            delete_status: 200,
            protocol_version: None,
            status_all: None,
            notification_status: 202,
            require_token: None,
            scoped_token: None,
            stall_notifications: false,
            quiet: false,
            legacy_endpoint: None,
            get_busy: None,
            stateless: None,
            discover_reply: None,
        }
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The HTTP method.
    pub method: Method,
    /// The path and query.
    pub path: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// When it arrived.
    pub at: Instant,
}

impl Recorded {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The JSON-RPC method of the body, if any.
    pub fn rpc_method(&self) -> Option<&str> {
        self.body.as_ref()?.get("method")?.as_str()
    }
}

#[derive(Default)]
struct State {
    behavior: Mutex<Behavior>,
    faults: Mutex<VecDeque<Fault>>,
    log: Mutex<Vec<Recorded>>,
    sessions: Mutex<Vec<String>>,
    counter: AtomicU64,
    connections: AtomicU64,
    /// Responses parked for a GET with `Last-Event-ID` (event id → data).
    parked: Mutex<HashMap<String, String>>,
    /// Open streams a message can be pushed to (GET streams, legacy streams).
    streams: Mutex<Vec<mpsc::Sender<Bytes>>>,
    /// Legacy sessions: `?session=` → their SSE stream.
    legacy_streams: Mutex<HashMap<String, mpsc::Sender<Bytes>>>,
    /// Answers the client POSTs to requests the server sent (id → waiter).
    waiting: Mutex<HashMap<String, oneshot::Sender<Value>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running test server. Dropping it stops it and closes its connections.
#[derive(Debug)]
pub struct TestHttpServer {
    addr: SocketAddr,
    state: Arc<State>,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

impl TestHttpServer {
    /// Starts a server on a free port of 127.0.0.1.
    pub async fn start(behavior: Behavior) -> std::io::Result<Self> {
        Self::start_on(
            "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            behavior,
        )
        .await
    }

    /// Starts a server on `addr` (e.g. the address of one that was stopped).
    pub async fn start_on(addr: SocketAddr, behavior: Behavior) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        *lock(&state.behavior) = behavior;
        let mut tasks = JoinSet::new();
        let st = state.clone();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        st.connections.fetch_add(1, Ordering::SeqCst);
                        let st = st.clone();
                        connections.spawn(async move {
                            let service = service_fn(move |req| {
                                let st = st.clone();
                                async move { Ok::<_, Infallible>(handle(st, req).await) }
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
        Ok(TestHttpServer { addr, state, tasks })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The MCP endpoint URL.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Queues a fault for the next POSTed request (not notifications).
    pub fn push_fault(&self, fault: Fault) {
        lock(&self.state.faults).push_back(fault);
    }

    /// Changes the behaviour.
    pub fn set_behavior(&self, f: impl FnOnce(&mut Behavior)) {
        f(&mut lock(&self.state.behavior));
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.log).clone()
    }

    /// Requests whose JSON-RPC method is `method`.
    pub fn requests_for(&self, method: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.rpc_method() == Some(method))
            .collect()
    }

    /// How many TCP connections were accepted.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Forgets every session now.
    pub fn expire_sessions(&self) {
        lock(&self.state.sessions).clear();
    }

    /// Sends a JSON-RPC message on every open GET (or legacy) stream;
    /// returns how many streams got it.
    pub fn push_message(&self, msg: &Value) -> usize {
        let event = Bytes::from(format!("event: message\ndata: {msg}\n\n"));
        let mut streams = lock(&self.state.streams);
        streams.retain(|s| !s.is_closed());
        streams
            .iter()
            .filter(|s| s.try_send(event.clone()).is_ok())
            .count()
    }

    /// Stops accepting and closes every connection.
    pub fn stop(mut self) {
        self.tasks.abort_all();
    }
}

/// A streaming body fed by a channel; it ends when the sender is dropped.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

fn full(status: u16, content_type: Option<&str>, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(ct) = content_type {
        if let Ok(v) = ct.parse() {
            resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
    }
    resp
}

fn stream(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let mut resp = Response::new(BodyExt::boxed(ChannelBody { rx }));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    resp
}

fn rpc_result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn text(t: &str) -> Value {
    json!({"content": [{"type": "text", "text": t}]})
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let json: Option<Value> = serde_json::from_slice(&bytes).ok();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    lock(&st.log).push(Recorded {
        method: parts.method.clone(),
        path: path.clone(),
        headers: parts.headers.clone(),
        body: json.clone(),
        at: Instant::now(),
    });
    let behavior = lock(&st.behavior).clone();
    if behavior.legacy {
        return legacy(&st, &behavior, &parts.method, &path, json).await;
    }
    match parts.method {
        Method::POST => post(&st, &behavior, &parts.headers, json).await,
        Method::GET => get(&st, &behavior, &parts.headers),
        Method::DELETE => full(behavior.delete_status, None, ""),
        _ => full(405, None, ""),
    }
}

fn session_ok(st: &State, behavior: &Behavior, headers: &HeaderMap) -> bool {
    if !behavior.sessions {
        return true;
    }
    let given = headers.get("mcp-session-id").and_then(|v| v.to_str().ok());
    given.is_some_and(|g| lock(&st.sessions).iter().any(|s| s == g))
}

async fn post(
    st: &Arc<State>,
    behavior: &Behavior,
    headers: &HeaderMap,
    json: Option<Value>,
) -> Response<Body> {
    let Some(msg) = json else {
        return full(400, None, "not json");
    };
    let method = msg
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let id = msg.get("id").cloned();
    if method.is_empty() {
        // The client's answer to a request of ours.
        if let Some(key) = id.as_ref().map(Value::to_string) {
            if let Some(waiter) = lock(&st.waiting).remove(&key) {
                let _ = waiter.send(msg);
            }
        }
        return full(202, None, "");
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Some(token) = &behavior.require_token {
        if auth != format!("Bearer {token}") {
            let mut r = full(401, None, "unauthorized");
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static(r#"Bearer error="invalid_token", resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource""#),
            );
            return r;
        }
    }
    if let Some(token) = &behavior.scoped_token {
        if method == "tools/call" && auth != format!("Bearer {token}") {
            let mut r = full(403, None, "forbidden");
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static(
                    r#"Bearer error="insufficient_scope", scope="tools:call""#,
                ),
            );
            return r;
        }
    }
    // Scripted faults are for the requests after the era probe (which a
    // handshake-era server refuses below, as an unknown session).
    if let (Some((status, body)), "server/discover") = (&behavior.discover_reply, method.as_str()) {
        let id = id
            .as_ref()
            .map_or_else(|| "null".to_owned(), Value::to_string);
        return full(*status, Some("application/json"), body.replace("$ID", &id));
    }
    if let Some(versions) = &behavior.stateless {
        if let Some((status, body)) =
            crate::http_stateless::answer(versions, headers, &msg, &method)
        {
            return full(status, Some("application/json"), body.to_string());
        }
    }
    let mut fault = if id.is_some() && method != "server/discover" {
        lock(&st.faults).pop_front()
    } else {
        None
    };
    if let Some(code) = behavior.status_all {
        fault = Some(Fault::Status(code));
    }
    if let Some(Fault::ExpireSessions) = fault {
        lock(&st.sessions).clear();
    }
    if method != "initialize" && !session_ok(st, behavior, headers) {
        let has = headers.contains_key("mcp-session-id");
        return full(if has { 404 } else { 400 }, None, "unknown session");
    }
    let Some(id) = id else {
        if behavior.stall_notifications {
            std::future::pending::<()>().await;
        }
        return full(behavior.notification_status, None, "");
    };
    match &fault {
        Some(Fault::Status(401)) => {
            let mut r = full(401, None, "unauthorized");
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static(r#"Bearer resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource", scope="tools""#),
            );
            return r;
        }
        Some(Fault::Status(code)) => return full(*code, None, format!("injected {code}")),
        Some(Fault::Busy {
            status,
            retry_after,
        }) => {
            let mut r = full(*status, None, "busy");
            if let Some(v) = retry_after.as_deref().and_then(|v| v.parse().ok()) {
                r.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
            return r;
        }
        Some(Fault::Html) => {
            return full(
                200,
                Some("text/html; charset=utf-8"),
                format!("<html><body>{}</body></html>", "please log in ".repeat(100)),
            )
        }
        Some(Fault::NotJsonRpc) => {
            return full(200, Some("application/json"), r#"{"hello": "world"}"#)
        }
        Some(Fault::Redirect { location }) => {
            let mut r = full(307, None, "");
            if let Ok(v) = location.parse() {
                r.headers_mut().insert(http::header::LOCATION, v);
            }
            return r;
        }
        Some(Fault::Stall) => {
            std::future::pending::<()>().await;
        }
        _ => {}
    }
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    let mut new_session = None;
    let result = match method.as_str() {
        "initialize" => {
            if behavior.sessions {
                let s = format!("sess-{}", st.counter.fetch_add(1, Ordering::SeqCst));
                lock(&st.sessions).push(s.clone());
                new_session = Some(s);
            }
            let version = behavior
                .protocol_version
                .clone()
                .unwrap_or_else(|| params["protocolVersion"].as_str().unwrap_or("2025-11-25").to_owned());
            let capabilities = if behavior.quiet { json!({"tools": {}}) } else { json!({"tools": {}, "logging": {}}) };
            json!({"protocolVersion": version, "capabilities": capabilities,
                   "serverInfo": {"name": "test-http-server", "version": "1.0.0"}})
        }
        "ping" => json!({}),
        "tools/list" => json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}, {"name": "add", "inputSchema": {"type": "object"}}]}),
        "tools/call" => {
            let args = &params["arguments"];
            match params["name"].as_str().unwrap_or_default() {
                "echo" => text(args["text"].as_str().unwrap_or_default()),
                "add" => text(&(args["a"].as_f64().unwrap_or(0.0) + args["b"].as_f64().unwrap_or(0.0)).to_string()),
                "sleep" => {
                    tokio::time::sleep(Duration::from_millis(args["ms"].as_u64().unwrap_or(0))).await;
                    text("slept")
                }
                "big" => text(&"x".repeat(usize::try_from(args["bytes"].as_u64().unwrap_or(0)).unwrap_or(0))),
                "ask_roots" | "notify" => return interactive(st, &id, params["name"].as_str().unwrap_or_default()).await,
                other => {
                    return full(200, Some("application/json"),
                        json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": format!("unknown tool {other}")}}).to_string())
                }
            }
        }
        other => {
            return full(200, Some("application/json"),
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": format!("no method {other}")}}).to_string())
        }
    };
    let response = rpc_result(&id, result);
    let mut resp = match (&fault, behavior.reply) {
        (Some(Fault::CutMidEvent), _) => {
            let (tx, rx) = mpsc::channel(4);
            let data = response.to_string();
            let half = data[..data.len() / 2].to_owned();
            tokio::spawn(async move {
                let _ = tx.send(Bytes::from(format!("data: {half}"))).await;
            });
            stream(rx)
        }
        (Some(Fault::PrimeAndClose { retry_ms }), _) => {
            let n = st.counter.fetch_add(1, Ordering::SeqCst);
            let event_id = format!("ev-{n}");
            lock(&st.parked).insert(event_id.clone(), response.to_string());
            let (tx, rx) = mpsc::channel(4);
            let retry = *retry_ms;
            tokio::spawn(async move {
                let _ = tx
                    .send(Bytes::from(format!(
                        "id: {event_id}\nretry: {retry}\ndata: \n\n"
                    )))
                    .await;
            });
            stream(rx)
        }
        (_, Reply::Json) => full(200, Some("application/json"), response.to_string()),
        (_, Reply::Sse) => {
            let (tx, rx) = mpsc::channel(4);
            let n = st.counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let _ = tx
                    .send(Bytes::from(format!("id: p-{n}\ndata: \n\n: a comment\n\n")))
                    .await;
                let _ = tx
                    .send(Bytes::from(format!(
                        "id: r-{n}\nevent: message\ndata: {response}\n\n"
                    )))
                    .await;
            });
            stream(rx)
        }
    };
    if let Some(s) = new_session.and_then(|s| s.parse().ok()) {
        resp.headers_mut().insert("mcp-session-id", s);
    }
    resp
}

/// A reply stream on which the server talks first: a roots request (and
/// waits for the client's POSTed answer) or a log notification.
async fn interactive(st: &Arc<State>, id: &Value, tool: &str) -> Response<Body> {
    let (tx, rx) = mpsc::channel(8);
    let st = st.clone();
    let id = id.clone();
    let tool = tool.to_owned();
    tokio::spawn(async move {
        let result = if tool == "ask_roots" {
            let ask_id = json!("srv-roots-1");
            let (answer_tx, answer_rx) = oneshot::channel();
            lock(&st.waiting).insert(ask_id.to_string(), answer_tx);
            let ask = json!({"jsonrpc": "2.0", "id": ask_id, "method": "roots/list"});
            let _ = tx.send(Bytes::from(format!("data: {ask}\n\n"))).await;
            match answer_rx.await {
                Ok(answer) => text(&answer.to_string()),
                Err(_) => text("no answer"),
            }
        } else {
            let note = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "working"}});
            let _ = tx.send(Bytes::from(format!("data: {note}\n\n"))).await;
            text("notified")
        };
        let _ = tx
            .send(Bytes::from(format!(
                "data: {}\n\n",
                rpc_result(&id, result)
            )))
            .await;
    });
    stream(rx)
}

fn get(st: &Arc<State>, behavior: &Behavior, headers: &HeaderMap) -> Response<Body> {
    if behavior.stateless.is_some() {
        return full(405, None, "");
    }
    if let Some(last) = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    {
        if let Some(data) = lock(&st.parked).remove(&last) {
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(async move {
                let _ = tx
                    .send(Bytes::from(format!("id: {last}-resumed\ndata: {data}\n\n")))
                    .await;
            });
            return stream(rx);
        }
    }
    if let Some((status, retry_after)) = &behavior.get_busy {
        let mut r = full(*status, None, "busy");
        if let Some(v) = retry_after.as_deref().and_then(|v| v.parse().ok()) {
            r.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        return r;
    }
    if !behavior.get_stream {
        return full(405, None, "");
    }
    if !session_ok(st, behavior, headers) {
        return full(404, None, "unknown session");
    }
    let (tx, rx) = mpsc::channel(64);
    lock(&st.streams).push(tx);
    stream(rx)
}

/// The 2024-11-05 transport: GET opens the stream and names the endpoint;
/// POSTs to the endpoint get 202 and their answers on the stream.
async fn legacy(
    st: &Arc<State>,
    behavior: &Behavior,
    method: &Method,
    path: &str,
    json: Option<Value>,
) -> Response<Body> {
    match *method {
        Method::GET => {
            let sid = format!("legacy-{}", st.counter.fetch_add(1, Ordering::SeqCst));
            let (tx, rx) = mpsc::channel(64);
            let endpoint = behavior
                .legacy_endpoint
                .clone()
                .unwrap_or_else(|| format!("/messages?session={sid}"));
            let _ = tx.try_send(Bytes::from(format!(
                "event: endpoint\ndata: {endpoint}\n\n"
            )));
            lock(&st.legacy_streams).insert(sid, tx.clone());
            lock(&st.streams).push(tx);
            stream(rx)
        }
        Method::POST if path.starts_with("/messages?session=") => {
            let sid = path.trim_start_matches("/messages?session=").to_owned();
            let Some(tx) = lock(&st.legacy_streams).get(&sid).cloned() else {
                return full(404, None, "no such session");
            };
            let Some(msg) = json else {
                return full(400, None, "");
            };
            if let (Some(id), Some(method)) =
                (msg.get("id"), msg.get("method").and_then(Value::as_str))
            {
                let result = match method {
                    "initialize" => {
                        json!({"protocolVersion": "2024-11-05", "capabilities": {"tools": {}},
                                           "serverInfo": {"name": "legacy-server", "version": "0.1"}})
                    }
                    "tools/call" => text(
                        msg["params"]["arguments"]["text"]
                            .as_str()
                            .unwrap_or_default(),
                    ),
                    _ => json!({}),
                };
                let event = format!("event: message\ndata: {}\n\n", rpc_result(id, result));
                let _ = tx.send(Bytes::from(event)).await;
            }
            full(202, None, "")
        }
        _ => full(405, None, "Streamable HTTP is not supported here"),
    }
}
