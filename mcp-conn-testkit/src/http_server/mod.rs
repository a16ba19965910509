//! A scripted MCP server over HTTP, on `127.0.0.1`, for transport tests.
//!
//! It answers `initialize`, `ping`, `tools/list` and `tools/call` (`echo`,
//! `add`, `sleep {ms}`, `big {bytes}`, `ask_roots`: asks the client for its
//! roots on the reply stream first, `notify`: sends a log notification on the
//! reply stream first). Replies are JSON or SSE ([`Reply`]). Faults are queued
//! with [`TestHttpServer::push_fault`] and hit the next POSTed request.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as AutoBuilder;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

mod handlers;

use handlers::handle;

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
    /// SSE replies end this long after their response, with a comment (a
    /// server that writes the last chunk on its own, as rmcp does); a reply
    /// the client closed before is counted ([`TestHttpServer::late_ends`]).
    pub sse_end_delay: Option<Duration>,
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
            sse_end_delay: None,
        }
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The HTTP version it came with.
    pub version: http::Version,
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
    /// SSE replies with a late end: sent through, and closed by the client
    /// before their end.
    pub(crate) late_ends: AtomicU64,
    pub(crate) cut_replies: AtomicU64,
    /// Responses parked for a GET with `Last-Event-ID` (event id → data).
    parked: Mutex<HashMap<String, String>>,
    /// Open streams a message can be pushed to (GET streams, legacy streams).
    streams: Mutex<Vec<mpsc::Sender<Bytes>>>,
    /// Legacy sessions: `?session=` → their SSE stream.
    legacy_streams: Mutex<HashMap<String, mpsc::Sender<Bytes>>>,
    /// Answers the client POSTs to requests the server sent (id → waiter).
    waiting: Mutex<HashMap<String, oneshot::Sender<Value>>>,
}

/// A running test server. Dropping it stops it and closes its connections.
#[derive(Debug)]
pub struct TestHttpServer {
    addr: SocketAddr,
    https: bool,
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
        Self::listen(addr, behavior, None).await
    }

    /// Starts an `https` server on a free port of 127.0.0.1 with `tls`
    /// (see [`crate::tls::TestCa::server_config`]): HTTP/2 or HTTP/1.1,
    /// whichever the client speaks (ALPN is the configuration's).
    pub async fn start_tls(
        behavior: Behavior,
        tls: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<Self> {
        let addr = "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!());
        Self::listen(addr, behavior, Some(TlsAcceptor::from(tls))).await
    }

    async fn listen(
        addr: SocketAddr,
        behavior: Behavior,
        tls: Option<TlsAcceptor>,
    ) -> std::io::Result<Self> {
        let https = tls.is_some();
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        *state.behavior.lock() = behavior;
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
                        let tls = tls.clone();
                        connections.spawn(async move {
                            let service = service_fn(move |req| {
                                let st = st.clone();
                                async move { Ok::<_, Infallible>(handle(st, req).await) }
                            });
                            match tls {
                                None => {
                                    let _ = hyper::server::conn::http1::Builder::new()
                                        .serve_connection(TokioIo::new(stream), service)
                                        .await;
                                }
                                Some(tls) => {
                                    // A client that fails the handshake
                                    // (untrusted, no certificate) ends here.
                                    let Ok(stream) = tls.accept(stream).await else { return };
                                    let _ = AutoBuilder::new(TokioExecutor::new())
                                        .serve_connection(TokioIo::new(stream), service)
                                        .await;
                                }
                            }
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(TestHttpServer {
            addr,
            https,
            state,
            tasks,
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The MCP endpoint URL (`https` for a TLS server; its certificate
    /// must name `127.0.0.1`).
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}/mcp", self.addr)
    }

    /// Queues a fault for the next POSTed request (not notifications).
    pub fn push_fault(&self, fault: Fault) {
        self.state.faults.lock().push_back(fault);
    }

    /// Changes the behaviour.
    pub fn set_behavior(&self, f: impl FnOnce(&mut Behavior)) {
        f(&mut self.state.behavior.lock());
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.log.lock().clone()
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

    /// SSE replies with [`Behavior::sse_end_delay`]: how many were sent to
    /// their end, and how many the client closed before it.
    pub fn late_ends(&self) -> (u64, u64) {
        (
            self.state.late_ends.load(Ordering::SeqCst),
            self.state.cut_replies.load(Ordering::SeqCst),
        )
    }

    /// Forgets every session now.
    pub fn expire_sessions(&self) {
        self.state.sessions.lock().clear();
    }

    /// Sends a JSON-RPC message on every open GET (or legacy) stream;
    /// returns how many streams got it.
    pub fn push_message(&self, msg: &Value) -> usize {
        let event = Bytes::from(format!("event: message\ndata: {msg}\n\n"));
        let mut streams = self.state.streams.lock();
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
