//! An in-memory transport that lets a test play the server (feature
//! `test-util`).
//!
//! Two ways to use it:
//! - [`MockTransport::pair`]: every `connect()` hands a [`MockLink`] to the
//!   [`MockServer`] handle, and the test script reads requests and answers.
//! - [`MockTransport::serving`]: every `connect()` is answered by a
//!   [`FakeServer`] running in memory (tools `echo` and `add`).
//!
//! Incoming raw text goes through the same parser as a real transport, so
//! garbage can be injected with [`MockLink::send_raw`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::jsonrpc::{parse_frame, Frame, JsonRpcError, Message, Request, RequestId, Response};
use crate::protocol::LATEST_PROTOCOL_VERSION;
use crate::transport::{ConnectFailure, Inbound, Link, LinkRx, LinkTx, Transport, TransportError};

const LINK_BUFFER: usize = 4096;

/// What the next `connect()` does.
#[derive(Debug, Clone)]
pub enum ConnectOutcome {
    /// Opens a link.
    Accept,
    /// Fails with this error.
    Refuse(TransportError),
    /// Never completes.
    Hang,
}

/// What travels from the mock server to the client.
#[derive(Debug)]
enum ServerItem {
    Message(Message),
    Raw(String),
    Fail(TransportError),
    FailRequest(RequestId, TransportError),
}

#[derive(Debug)]
struct MockShared {
    connects: AtomicUsize,
    /// The number of `connect()` calls so far, for waiters.
    connects_seen: tokio::sync::watch::Sender<usize>,
    connect_times: Mutex<Vec<tokio::time::Instant>>,
    script: Mutex<VecDeque<ConnectOutcome>>,
    links: Option<mpsc::Sender<MockLink>>,
    fake: Option<FakeServer>,
    kill: Mutex<CancellationToken>,
}

/// An in-memory [`Transport`]. Cheap to clone; clones share the script.
#[derive(Debug, Clone)]
pub struct MockTransport {
    shared: Arc<MockShared>,
}

/// The test's side of a [`MockTransport::pair`]: receives each new link.
#[derive(Debug)]
pub struct MockServer {
    links: mpsc::Receiver<MockLink>,
    transport: MockTransport,
}

impl MockTransport {
    fn build(links: Option<mpsc::Sender<MockLink>>, fake: Option<FakeServer>) -> Self {
        MockTransport {
            shared: Arc::new(MockShared {
                connects: AtomicUsize::new(0),
                connects_seen: tokio::sync::watch::Sender::new(0),
                connect_times: Mutex::new(Vec::new()),
                script: Mutex::new(VecDeque::new()),
                links,
                fake,
                kill: Mutex::new(CancellationToken::new()),
            }),
        }
    }

    /// A transport whose links the test answers through the [`MockServer`].
    pub fn pair() -> (MockTransport, MockServer) {
        let (tx, rx) = mpsc::channel(64);
        let transport = Self::build(Some(tx), None);
        (
            transport.clone(),
            MockServer {
                links: rx,
                transport,
            },
        )
    }

    /// A transport whose every link is served by `server`.
    pub fn serving(server: FakeServer) -> MockTransport {
        Self::build(None, Some(server))
    }

    /// Queues what the next `connect()` calls do, in order; after the
    /// script runs out, connects are accepted.
    pub fn script_connects(&self, outcomes: impl IntoIterator<Item = ConnectOutcome>) {
        self.shared.script.lock().extend(outcomes);
    }

    /// How many times `connect()` was called.
    pub fn connect_count(&self) -> usize {
        self.shared.connects.load(Ordering::SeqCst)
    }

    /// Waits until `connect()` has been called at least `n` times (no
    /// polling: it wakes on each call). Bound it with a deadline in tests.
    pub async fn wait_for_connects(&self, n: usize) {
        let mut seen = self.shared.connects_seen.subscribe();
        // The sender lives in `self`, so the channel cannot close here.
        let _ = seen.wait_for(|count| *count >= n).await;
    }

    /// When each `connect()` was called (tokio time, so exact under
    /// `start_paused`).
    pub fn connect_times(&self) -> Vec<tokio::time::Instant> {
        self.shared.connect_times.lock().clone()
    }

    /// Ends every link served by a [`FakeServer`] now, as if the server
    /// process died (the client sees EOF).
    pub fn kill_links(&self) {
        let mut kill = self.shared.kill.lock();
        kill.cancel();
        *kill = CancellationToken::new();
    }
}

/// How long one awaited step of a test may take before [`within`] fails it.
/// Under paused time a wait that can never finish fails at once (the clock
/// jumps to the deadline); with real processes and sockets it is the upper
/// bound of a step that is expected to take milliseconds.
pub const DEADLINE: Duration = Duration::from_secs(100);

/// Awaits `fut`, failing the test (a panic naming `what`) if it takes longer
/// than [`DEADLINE`]. Every wait of a test goes through this or
/// [`within_for`]: a test never hangs.
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    within_for(DEADLINE, what, fut).await
}

/// [`within`] with another deadline.
///
/// # Panics
/// When `fut` takes longer than `deadline`.
pub async fn within_for<F: std::future::Future>(
    deadline: Duration,
    what: &str,
    fut: F,
) -> F::Output {
    match tokio::time::timeout(deadline, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what} did not happen within {deadline:?}"),
    }
}

/// Waits (within [`DEADLINE`]) until the connection's status is `want`.
///
/// # Panics
/// When it does not happen in time.
pub async fn wait_status(conn: &crate::Connection, want: crate::ConnectionStatus) {
    within(
        &format!("status {want}"),
        conn.wait_for_status(|s| s == want),
    )
    .await;
}

#[async_trait]
impl Transport for MockTransport {
    async fn connect(&self) -> Result<Link, TransportError> {
        let n = self.shared.connects.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared
            .connect_times
            .lock()
            .push(tokio::time::Instant::now());
        self.shared.connects_seen.send_replace(n);
        let outcome = self
            .shared
            .script
            .lock()
            .pop_front()
            .unwrap_or(ConnectOutcome::Accept);
        match outcome {
            ConnectOutcome::Accept => {}
            ConnectOutcome::Refuse(e) => return Err(e),
            ConnectOutcome::Hang => std::future::pending().await,
        }
        let (to_server, from_client) = mpsc::channel(LINK_BUFFER);
        let (to_client, from_server) = mpsc::channel(LINK_BUFFER);
        let link = MockLink {
            rx: from_client,
            last_text: String::new(),
            tx: to_client,
        };
        if let Some(fake) = &self.shared.fake {
            let kill = self.shared.kill.lock().clone();
            tokio::spawn(fake.clone().serve(link, kill));
        } else if let Some(links) = &self.shared.links {
            links
                .send(link)
                .await
                .map_err(|_| TransportError::connect(ConnectFailure::Refused, "memory", None))?;
        }
        Ok(Link::new(
            MockTx {
                tx: Some(to_server),
            },
            MockRx {
                rx: from_server,
                queued: VecDeque::new(),
            },
        ))
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

impl MockServer {
    /// Waits for the client's next `connect()` and returns its link.
    ///
    /// # Panics
    /// If the transport is gone.
    pub async fn accept(&mut self) -> MockLink {
        self.links.recv().await.expect("the mock transport is gone")
    }

    /// The transport this server answers for.
    pub fn transport(&self) -> &MockTransport {
        &self.transport
    }
}

struct MockTx {
    tx: Option<mpsc::Sender<(Message, String)>>,
}

/// `msg` as the server sees it: serialised and read back, as a real
/// transport would, so that the test sees exactly what goes on the wire.
fn on_the_wire(msg: &Message) -> Result<(Message, String), TransportError> {
    let text = String::from_utf8_lossy(&msg.to_vec()).into_owned();
    let msg = Message::from_slice(text.as_bytes())
        .map_err(|e| TransportError::Protocol(e.to_string()))?;
    Ok((msg, text))
}

#[async_trait]
impl LinkTx for MockTx {
    async fn send(&mut self, msg: &Message) -> Result<(), TransportError> {
        let tx = self.tx.as_ref().ok_or(TransportError::Closed)?;
        tx.send(on_the_wire(msg)?)
            .await
            .map_err(|_| TransportError::Eof)
    }

    fn try_send_now(&mut self, msg: &Message) -> bool {
        let Some(permit) = self.tx.as_ref().and_then(|tx| tx.try_reserve().ok()) else {
            return false;
        };
        match on_the_wire(msg) {
            Ok(sent) => {
                permit.send(sent);
                true
            }
            // Left to `send`, which reports it.
            Err(_) => false,
        }
    }

    async fn close(&mut self, _grace: Duration) -> Result<(), TransportError> {
        self.tx = None;
        Ok(())
    }
}

struct MockRx {
    rx: mpsc::Receiver<ServerItem>,
    queued: VecDeque<Message>,
}

#[async_trait]
impl LinkRx for MockRx {
    async fn recv(&mut self) -> Result<Option<Inbound>, TransportError> {
        loop {
            if let Some(msg) = self.queued.pop_front() {
                return Ok(Some(msg.into()));
            }
            match self.rx.recv().await {
                None => return Ok(None),
                Some(ServerItem::Message(m)) => return Ok(Some(m.into())),
                Some(ServerItem::FailRequest(id, error)) => {
                    return Ok(Some(Inbound::Failed { id, error }))
                }
                Some(ServerItem::Fail(e)) => return Err(e),
                Some(ServerItem::Raw(text)) => match parse_frame(text.as_bytes()) {
                    Ok(Frame::Single(m)) => return Ok(Some(m.into())),
                    Ok(Frame::Batch(items)) => {
                        self.queued.extend(items.into_iter().filter_map(Result::ok))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "mock: dropping a message that is not JSON-RPC")
                    }
                },
            }
        }
    }
}

/// The server's end of one mock link.
#[derive(Debug)]
pub struct MockLink {
    rx: mpsc::Receiver<(Message, String)>,
    /// The wire text of the message `recv` returned last.
    last_text: String,
    tx: mpsc::Sender<ServerItem>,
}

impl MockLink {
    /// The next message from the client; `None` once the client closed the link.
    pub async fn recv(&mut self) -> Option<Message> {
        let (msg, text) = self.rx.recv().await?;
        self.last_text = text;
        Some(msg)
    }

    /// The text, exactly as the client wrote it, of the message the last
    /// [`recv`](Self::recv) (or `expect_*`) returned.
    pub fn last_text(&self) -> &str {
        &self.last_text
    }

    /// The next message, which must be a request.
    ///
    /// # Panics
    /// If the link closes or the message is not a request.
    pub async fn expect_request(&mut self) -> Request {
        match self.recv().await {
            Some(Message::Request(r)) => r,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    /// The next message, which must be a request for `method`.
    ///
    /// # Panics
    /// If it is anything else.
    pub async fn expect_method(&mut self, method: &str) -> Request {
        let req = self.expect_request().await;
        assert_eq!(req.method, method, "unexpected request {req:?}");
        req
    }

    /// Answers the client's era probe (`server/discover`, sent first by a
    /// connection with the default [`crate::ProtocolPreference::Auto`]) the
    /// way a handshake-era server does (`-32601`), and returns the next
    /// request, which must be `initialize`.
    ///
    /// # Panics
    /// If the client sends anything else.
    pub async fn expect_initialize(&mut self) -> Request {
        let mut req = self.expect_request().await;
        if req.method == "server/discover" {
            self.respond_error(req.id, JsonRpcError::method_not_found("server/discover"))
                .await;
            req = self.expect_request().await;
        }
        assert_eq!(req.method, "initialize", "unexpected request {req:?}");
        req
    }

    /// Waits until the client closes the link, dropping what it sends.
    pub async fn closed(&mut self) {
        while self.rx.recv().await.is_some() {}
    }

    /// Sends a message to the client.
    pub async fn send(&self, msg: Message) {
        let _ = self.tx.send(ServerItem::Message(msg)).await;
    }

    /// Sends raw text, parsed on the client side like a line of stdio.
    pub async fn send_raw(&self, text: impl Into<String>) {
        let _ = self.tx.send(ServerItem::Raw(text.into())).await;
    }

    /// Answers request `id` with `result`.
    pub async fn respond(&self, id: RequestId, result: Value) {
        let resp =
            Response::result(id, &result).unwrap_or_else(|_| unreachable!("a Value serialises"));
        self.send(Message::Response(resp)).await;
    }

    /// Answers request `id` with an error.
    pub async fn respond_error(&self, id: RequestId, error: JsonRpcError) {
        self.send(Message::Response(Response::error(Some(id), error)))
            .await;
    }

    /// Sends a notification.
    pub async fn notify(&self, method: &str, params: Option<Value>) {
        self.send(Message::notification(method, params)).await;
    }

    /// Fails request `id` in the transport alone, as an HTTP transport does
    /// with an oversized or cut reply; the link lives on.
    pub async fn fail_request(&self, id: RequestId, error: TransportError) {
        let _ = self.tx.send(ServerItem::FailRequest(id, error)).await;
    }

    /// Ends the link with an error (the client's `recv` returns it).
    pub async fn fail(self, error: TransportError) {
        let _ = self.tx.send(ServerItem::Fail(error)).await;
    }

    /// Answers `initialize` with `version` and `capabilities` and waits for
    /// `notifications/initialized`. Returns the `initialize` request.
    ///
    /// # Panics
    /// If the client does anything else.
    pub async fn handshake_with(&mut self, version: &str, capabilities: Value) -> Request {
        let init = self.expect_initialize().await;
        self.respond(
            init.id.clone(),
            json!({
                "protocolVersion": version,
                "capabilities": capabilities,
                "serverInfo": {"name": "mock", "version": "1.0.0"},
            }),
        )
        .await;
        match self.recv().await {
            Some(Message::Notification(n)) if n.method == "notifications/initialized" => {}
            other => panic!("expected notifications/initialized, got {other:?}"),
        }
        init
    }

    /// [`MockLink::handshake_with`] the latest version and every capability.
    pub async fn handshake(&mut self) -> Request {
        self.handshake_with(LATEST_PROTOCOL_VERSION, FakeServer::default().capabilities)
            .await
    }
}

/// How a [`FakeServer`] treats `ping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PingMode {
    /// Answers `{}`.
    #[default]
    Answer,
    /// Answers `-32601` (an old server without ping).
    MethodNotFound,
    /// Never answers.
    Ignore,
}

/// A small in-memory MCP server: tools `echo` (returns its `text` argument)
/// and `add` (`a + b`), answered at once.
#[derive(Debug, Clone)]
pub struct FakeServer {
    /// The version it answers `initialize` with.
    pub protocol_version: String,
    /// The capabilities it declares.
    pub capabilities: Value,
    /// Its ping behaviour.
    pub ping: PingMode,
    /// Tools per `tools/list` page (0 = all on one page).
    pub page_size: usize,
    /// Tools to list instead of `echo` and `add` (calls still answer only
    /// those two).
    pub tools: Option<Vec<Value>>,
}

impl Default for FakeServer {
    fn default() -> Self {
        FakeServer {
            protocol_version: LATEST_PROTOCOL_VERSION.to_owned(),
            capabilities: json!({
                "tools": {"listChanged": true},
                "resources": {"subscribe": true, "listChanged": true},
                "prompts": {},
                "logging": {},
                "completions": {},
            }),
            ping: PingMode::Answer,
            page_size: 0,
            tools: None,
        }
    }
}

impl FakeServer {
    fn tools() -> Vec<Value> {
        vec![
            json!({"name": "echo", "description": "Returns its text",
                   "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}),
            json!({"name": "add", "description": "Adds two numbers",
                   "inputSchema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}),
        ]
    }

    /// Answers one request; `None` means no answer at all.
    pub fn answer(&self, req: &Request) -> Option<Result<Value, JsonRpcError>> {
        let params = req.params.clone().unwrap_or(Value::Null);
        Some(match req.method.as_str() {
            "initialize" => Ok(json!({
                "protocolVersion": self.protocol_version,
                "capabilities": self.capabilities,
                "serverInfo": {"name": "fake-server", "version": "1.0.0"},
            })),
            "ping" => match self.ping {
                PingMode::Answer => Ok(json!({})),
                PingMode::MethodNotFound => Err(JsonRpcError::method_not_found("ping")),
                PingMode::Ignore => return None,
            },
            "tools/list" => {
                let tools = self.tools.clone().unwrap_or_else(Self::tools);
                let size = if self.page_size == 0 {
                    tools.len()
                } else {
                    self.page_size
                };
                let start: usize = params["cursor"]
                    .as_str()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let end = (start + size).min(tools.len());
                let page = tools
                    .get(start..end)
                    .map(<[Value]>::to_vec)
                    .unwrap_or_default();
                let mut result = json!({ "tools": page });
                if end < tools.len() {
                    result["nextCursor"] = Value::from(end.to_string());
                }
                Ok(result)
            }
            "tools/call" => match params["name"].as_str() {
                Some("echo") => {
                    let text = params["arguments"]["text"].as_str().unwrap_or_default();
                    Ok(json!({"content": [{"type": "text", "text": text}]}))
                }
                Some("add") => {
                    let sum = params["arguments"]["a"].as_f64().unwrap_or(0.0)
                        + params["arguments"]["b"].as_f64().unwrap_or(0.0);
                    Ok(json!({"content": [{"type": "text", "text": sum.to_string()}]}))
                }
                other => Err(JsonRpcError::invalid_params(format!(
                    "unknown tool {other:?}"
                ))),
            },
            other => Err(JsonRpcError::method_not_found(other)),
        })
    }

    async fn serve(self, mut link: MockLink, kill: CancellationToken) {
        loop {
            let msg = tokio::select! {
                () = kill.cancelled() => return,
                msg = link.recv() => msg,
            };
            match msg {
                None => return,
                Some(Message::Request(req)) => match self.answer(&req) {
                    Some(Ok(result)) => link.respond(req.id, result).await,
                    Some(Err(e)) => link.respond_error(req.id, e).await,
                    None => {}
                },
                Some(_) => {}
            }
        }
    }
}
