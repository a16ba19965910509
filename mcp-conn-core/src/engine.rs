//! The client engine: many requests in flight over one link, routed by id.
//!
//! A [`Session`] owns two tasks per link. The writer drains a bounded queue of
//! outgoing messages and hands everything queued to the link in one batch. The
//! reader routes what arrives: responses to their pending request, server
//! requests to the handlers, notifications to subscribers. When the link ends,
//! the reader fails every pending request at once with one typed error.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, mpsc, oneshot, Notify};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::Error;
use crate::handler::ClientHandlers;
use crate::jsonrpc::{
    JsonRpcError, Message, Notification, Request, RequestId, Response, ResponsePayload,
};
use crate::metrics::Counters;
use crate::notification::ServerNotification;
use crate::protocol::*;
use crate::transport::{Inbound, Link, LinkRx, LinkTx, TransportError};

/// How many messages the writer hands to the link at most in one batch.
const MAX_BATCH: usize = 128;

/// Replies to the server (to its `ping`s and requests) queued for the writer.
/// The reader never waits for room here: when it is full, a reply the reader
/// makes is dropped with a warning (the server stops reading what we write,
/// so it would not see it anyway); handler tasks wait for room.
const REPLY_QUEUE: usize = 256;

/// Server requests over `max_concurrent_server_requests` wait here for a
/// free handler slot; past this many, they are answered with an error.
const SERVER_REQUEST_BACKLOG: usize = 256;

/// Locks a mutex, ignoring poisoning: every critical section here leaves the
/// data consistent, and a panic elsewhere must not take the engine down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A progress report for a request (`notifications/progress`).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Progress so far (increases with every report).
    pub progress: f64,
    /// The total, if known.
    pub total: Option<f64>,
    /// A human-readable message (2025-03-26+).
    pub message: Option<String>,
}

/// A progress callback. It runs on the engine's reader task: keep it short.
pub type ProgressCallback = Arc<dyn Fn(Progress) + Send + Sync>;

/// Per-request options.
///
/// ```
/// # use std::time::Duration;
/// # use mcp_conn_core::RequestOptions;
/// let opts = RequestOptions::new()
///     .timeout(Duration::from_secs(5))
///     .on_progress(|p| println!("{}/{:?}", p.progress, p.total))
///     .reset_timeout_on_progress(Duration::from_secs(60));
/// ```
#[derive(Clone, Default)]
pub struct RequestOptions {
    /// The timeout; `None` uses the connection's `request_timeout`.
    pub timeout: Option<Duration>,
    /// Called for each progress notification of this request. Setting it puts
    /// a `progressToken` in `params._meta`.
    pub on_progress: Option<ProgressCallback>,
    /// When set, every progress notification restarts the timeout, but the
    /// request fails at this hard maximum after it was sent.
    pub max_total_timeout: Option<Duration>,
}

impl fmt::Debug for RequestOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestOptions")
            .field("timeout", &self.timeout)
            .field("on_progress", &self.on_progress.is_some())
            .field("max_total_timeout", &self.max_total_timeout)
            .finish()
    }
}

impl RequestOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets a progress callback.
    #[must_use]
    pub fn on_progress(mut self, f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }

    /// Restarts the timeout on every progress report, up to `max_total`.
    #[must_use]
    pub fn reset_timeout_on_progress(mut self, max_total: Duration) -> Self {
        self.max_total_timeout = Some(max_total);
        self
    }
}

/// What the reader hands a waiting caller.
enum Reply {
    Result(Box<RawValue>),
    Rpc(JsonRpcError),
    Failed(Error),
    /// The transport failed this request alone (see [`Inbound::Failed`]).
    Transport(TransportError),
}

struct Slot {
    reply: oneshot::Sender<Reply>,
    progress: Option<Arc<ProgressState>>,
}

struct ProgressState {
    callback: ProgressCallback,
    seen: Notify,
}

#[derive(Default)]
struct Pending {
    map: HashMap<RequestId, Slot>,
    /// Set once, when the session ends: every later request fails with it.
    terminal: Option<Error>,
}

/// Settings of one session, given by the connection.
#[derive(Clone)]
pub(crate) struct EngineConfig {
    pub(crate) name: Arc<str>,
    pub(crate) request_timeout: Duration,
    pub(crate) handlers: ClientHandlers,
    pub(crate) notifications: broadcast::Sender<ServerNotification>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) queue_capacity: usize,
    pub(crate) max_server_requests: usize,
    pub(crate) close_grace: Duration,
    /// Called once, when the link is first found lost (before any pending
    /// request hears of it), so the connection's status changes first.
    pub(crate) on_link_lost: Option<LinkLostHook>,
}

/// See [`EngineConfig::on_link_lost`].
pub(crate) type LinkLostHook = Arc<dyn Fn(&Error) + Send + Sync>;

struct ClientInner {
    name: Arc<str>,
    out: mpsc::Sender<Message>,
    /// Replies to server requests: a queue of their own, drained first, so
    /// that neither the reader nor the server waits behind our requests.
    replies: mpsc::Sender<Message>,
    pending: Mutex<Pending>,
    next_id: AtomicI64,
    request_timeout: Duration,
    server: OnceLock<InitializeResult>,
    notifications: broadcast::Sender<ServerNotification>,
    counters: Arc<Counters>,
    on_link_lost: Option<LinkLostHook>,
}

/// A handle to one live MCP session: cheap to clone, usable from many tasks at
/// once. Requests are multiplexed over the one link and answered in any order.
///
/// A `Client` belongs to one link. After a reconnect, get the new one from
/// [`crate::Connection::client`]; calls on an old one fail with
/// [`Error::ConnectionLost`] or [`Error::Closed`], never hang.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("connection", &self.inner.name)
            .field("protocol_version", &self.protocol_version())
            .finish_non_exhaustive()
    }
}

impl ClientInner {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        lock(&self.pending)
    }

    /// Ends the session for callers: sets the terminal error (first one wins)
    /// and fails every pending request with it.
    fn fail_all(&self, error: Error) {
        let (drained, error, newly_lost) = {
            let mut p = self.pending();
            let newly_lost = p.terminal.is_none() && matches!(error, Error::ConnectionLost { .. });
            let error = p.terminal.get_or_insert(error).clone();
            let drained: Vec<Slot> = p.map.drain().map(|(_, slot)| slot).collect();
            (drained, error, newly_lost)
        };
        if newly_lost {
            if let Some(hook) = &self.on_link_lost {
                hook(&error);
            }
        }
        for slot in drained {
            let _ = slot.reply.send(Reply::Failed(error.clone()));
        }
    }

    fn terminal(&self) -> Option<Error> {
        self.pending().terminal.clone()
    }

    fn closed_error(&self) -> Error {
        self.terminal().unwrap_or_else(|| Error::Closed {
            connection: self.name.clone(),
        })
    }

    /// Queues `notifications/cancelled` without waiting (used from `Drop`).
    fn send_cancel(&self, id: &RequestId, reason: &str) {
        let note = Message::notification(
            "notifications/cancelled",
            Some(json!({"requestId": id, "reason": reason})),
        );
        if self.out.try_send(note).is_err() {
            tracing::debug!(connection = %self.name, %id, "could not queue notifications/cancelled");
        }
    }
}

/// Removes a request's slot when its caller stops waiting (timeout or drop)
/// and tells the server, unless the answer already came.
struct PendingGuard<'a> {
    inner: &'a ClientInner,
    id: RequestId,
    cancellable: bool,
    armed: bool,
}

impl PendingGuard<'_> {
    fn abandon(&mut self, reason: &str) {
        if !self.armed {
            return;
        }
        self.armed = false;
        let was_pending = self.inner.pending().map.remove(&self.id).is_some();
        if was_pending && self.cancellable {
            self.inner.send_cancel(&self.id, reason);
        }
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.abandon("the caller stopped waiting");
    }
}

impl Client {
    /// The connection's name.
    pub fn connection_name(&self) -> &str {
        &self.inner.name
    }

    /// The server's `initialize` result: version, capabilities, info.
    pub fn server(&self) -> Option<&InitializeResult> {
        self.inner.server.get()
    }

    /// The protocol version this session runs under.
    pub fn protocol_version(&self) -> Option<&str> {
        self.server().map(|s| s.protocol_version.as_str())
    }

    /// The server's capabilities.
    pub fn server_capabilities(&self) -> Option<&ServerCapabilities> {
        self.server().map(|s| &s.capabilities)
    }

    /// The server's name and version.
    pub fn server_info(&self) -> Option<&Implementation> {
        self.server().map(|s| &s.server_info)
    }

    /// The server's usage instructions, if it gave any.
    pub fn instructions(&self) -> Option<&str> {
        self.server().and_then(|s| s.instructions.as_deref())
    }

    /// Whether `other` is a handle to the same session.
    pub(crate) fn same_session(&self, other: &Client) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Whether the session is still live (its link has not ended).
    pub fn is_open(&self) -> bool {
        self.inner.terminal().is_none()
    }

    /// Subscribes to the server's notifications on this session.
    pub fn notifications(&self) -> broadcast::Receiver<ServerNotification> {
        self.inner.notifications.subscribe()
    }

    /// Sends a request and returns its raw result.
    ///
    /// On timeout, or when the returned future is dropped before the answer,
    /// the request is forgotten and `notifications/cancelled` goes to the
    /// server (checklist item 22).
    pub async fn request_raw(
        &self,
        method: &str,
        params: Option<Value>,
        opts: &RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        let counters = &self.inner.counters;
        let outcome = self.send_request(method, params, opts).await;
        match &outcome {
            Ok(_) => Counters::bump(&counters.requests_ok),
            Err(e) if e.is_timeout() => Counters::bump(&counters.requests_timed_out),
            Err(_) => Counters::bump(&counters.requests_failed),
        }
        outcome
    }

    async fn send_request(
        &self,
        method: &str,
        mut params: Option<Value>,
        opts: &RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        let inner = &*self.inner;
        let n = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let id = RequestId::Int(n);
        let progress = opts.on_progress.clone().map(|callback| {
            set_progress_token(&mut params, n);
            Arc::new(ProgressState {
                callback,
                seen: Notify::new(),
            })
        });
        let (tx, mut rx) = oneshot::channel();
        {
            let mut p = inner.pending();
            if let Some(e) = &p.terminal {
                return Err(e.clone());
            }
            p.map.insert(
                id.clone(),
                Slot {
                    reply: tx,
                    progress: progress.clone(),
                },
            );
        }
        let mut guard = PendingGuard {
            inner,
            id: id.clone(),
            // Checklist item 13: `initialize` is never cancelled.
            cancellable: method != "initialize",
            armed: true,
        };
        let msg = Message::Request(Request {
            id,
            method: method.to_owned(),
            params,
        });
        if inner.out.send(msg).await.is_err() {
            guard.armed = false;
            inner.pending().map.remove(&guard.id);
            return Err(inner.closed_error());
        }

        let timeout = opts.timeout.unwrap_or(inner.request_timeout);
        let started = Instant::now();
        let hard_deadline = opts.max_total_timeout.map(|max| started + max);
        let idle_deadline = |now: Instant| match hard_deadline {
            Some(hard) => (now + timeout).min(hard),
            None => now + timeout,
        };
        let sleep = tokio::time::sleep_until(idle_deadline(started));
        tokio::pin!(sleep);
        let reset_on_progress = progress.is_some() && hard_deadline.is_some();
        loop {
            let progress_seen = async {
                match &progress {
                    Some(p) if reset_on_progress => p.seen.notified().await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                reply = &mut rx => {
                    guard.armed = false;
                    return match reply {
                        Ok(Reply::Result(raw)) => Ok(raw),
                        Ok(Reply::Rpc(error)) => Err(Error::Rpc {
                            connection: inner.name.clone(),
                            method: method.to_owned(),
                            error,
                        }),
                        Ok(Reply::Failed(e)) => Err(e),
                        Ok(Reply::Transport(source)) => Err(Error::Transport {
                            connection: inner.name.clone(),
                            method: method.to_owned(),
                            source,
                        }),
                        Err(_) => Err(inner.closed_error()),
                    };
                }
                () = &mut sleep => {
                    guard.abandon("timeout");
                    return Err(Error::Timeout {
                        connection: inner.name.clone(),
                        operation: method.to_owned(),
                        after: started.elapsed(),
                    });
                }
                () = progress_seen => {
                    sleep.as_mut().reset(idle_deadline(Instant::now()));
                }
            }
        }
    }

    /// Sends a request and parses its result as `R`.
    pub async fn request<R: DeserializeOwned>(
        &self,
        method: &str,
        params: Option<Value>,
        opts: &RequestOptions,
    ) -> Result<R, Error> {
        let raw = self.request_raw(method, params, opts).await?;
        serde_json::from_str(raw.get()).map_err(|e| Error::Protocol {
            connection: self.inner.name.clone(),
            message: format!("`{method}` returned an unexpected result: {e}"),
        })
    }

    /// Sends a notification.
    pub async fn notify(&self, method: &str, params: Option<Value>) -> Result<(), Error> {
        if let Some(e) = self.inner.terminal() {
            return Err(e);
        }
        self.inner
            .out
            .send(Message::notification(method, params))
            .await
            .map_err(|_| self.inner.closed_error())
    }

    fn require(&self, method: &str, capability: &'static str, declared: bool) -> Result<(), Error> {
        if declared {
            Ok(())
        } else {
            Err(Error::CapabilityNotSupported {
                connection: self.inner.name.clone(),
                method: method.to_owned(),
                capability,
            })
        }
    }

    fn caps(&self) -> &ServerCapabilities {
        static NONE: OnceLock<ServerCapabilities> = OnceLock::new();
        self.server_capabilities()
            .unwrap_or_else(|| NONE.get_or_init(ServerCapabilities::default))
    }

    /// Sends `ping`. A server that answers `-32601` is alive too; that is
    /// reported as `Ok`.
    pub async fn ping(&self) -> Result<(), Error> {
        self.ping_with(&RequestOptions::default()).await
    }

    /// `ping` with options (e.g. a health-check timeout).
    pub async fn ping_with(&self, opts: &RequestOptions) -> Result<(), Error> {
        match self.request_raw("ping", None, opts).await {
            Ok(_) => Ok(()),
            Err(Error::Rpc { error, .. })
                if error.code == crate::jsonrpc::codes::METHOD_NOT_FOUND =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Follows `nextCursor` to the end of a paginated list (checklist item 28).
    async fn list_all<P, T>(
        &self,
        method: &str,
        mut items: impl FnMut(P) -> (Vec<T>, Option<String>),
    ) -> Result<Vec<T>, Error>
    where
        P: DeserializeOwned,
    {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        loop {
            let params = cursor.as_ref().map(|c| json!({ "cursor": c }));
            let page: P = self
                .request(method, params, &RequestOptions::default())
                .await?;
            let (mut page_items, next) = items(page);
            all.append(&mut page_items);
            match next {
                Some(next) if !seen.insert(next.clone()) => {
                    return Err(Error::Protocol {
                        connection: self.inner.name.clone(),
                        message: format!("`{method}` returned the cursor {next:?} twice"),
                    })
                }
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Lists every tool, following pagination to the end.
    pub async fn list_tools(&self) -> Result<Vec<Tool>, Error> {
        self.require("tools/list", "tools", self.caps().tools.is_some())?;
        self.list_all("tools/list", |p: ListToolsResult| (p.tools, p.next_cursor))
            .await
    }

    /// Calls a tool. `arguments` should be a JSON object (or `Null` for none).
    /// A tool failure comes back as `Ok` with `is_error()` true.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<CallToolResult, Error> {
        self.call_tool_with(name, arguments, &RequestOptions::default())
            .await
    }

    /// Calls a tool with per-call options (timeout, progress).
    pub async fn call_tool_with(
        &self,
        name: &str,
        arguments: Value,
        opts: &RequestOptions,
    ) -> Result<CallToolResult, Error> {
        self.require("tools/call", "tools", self.caps().tools.is_some())?;
        let mut params = Map::new();
        params.insert("name".into(), Value::from(name));
        if !arguments.is_null() {
            params.insert("arguments".into(), arguments);
        }
        self.request("tools/call", Some(Value::Object(params)), opts)
            .await
    }

    /// Lists every resource, following pagination to the end.
    pub async fn list_resources(&self) -> Result<Vec<Resource>, Error> {
        self.require(
            "resources/list",
            "resources",
            self.caps().resources.is_some(),
        )?;
        self.list_all("resources/list", |p: ListResourcesResult| {
            (p.resources, p.next_cursor)
        })
        .await
    }

    /// Lists every resource template, following pagination to the end.
    pub async fn list_resource_templates(&self) -> Result<Vec<ResourceTemplate>, Error> {
        self.require(
            "resources/templates/list",
            "resources",
            self.caps().resources.is_some(),
        )?;
        self.list_all(
            "resources/templates/list",
            |p: ListResourceTemplatesResult| (p.resource_templates, p.next_cursor),
        )
        .await
    }

    /// Reads a resource.
    pub async fn read_resource(&self, uri: &str) -> Result<ReadResourceResult, Error> {
        self.require(
            "resources/read",
            "resources",
            self.caps().resources.is_some(),
        )?;
        self.request(
            "resources/read",
            Some(json!({ "uri": uri })),
            &RequestOptions::default(),
        )
        .await
    }

    /// Subscribes to updates of a resource (needs `resources.subscribe`).
    pub async fn subscribe_resource(&self, uri: &str) -> Result<(), Error> {
        let declared = self.caps().resources.as_ref().and_then(|r| r.subscribe) == Some(true);
        self.require("resources/subscribe", "resources.subscribe", declared)?;
        self.request::<Value>(
            "resources/subscribe",
            Some(json!({ "uri": uri })),
            &RequestOptions::default(),
        )
        .await
        .map(drop)
    }

    /// Ends a subscription made with [`Client::subscribe_resource`].
    pub async fn unsubscribe_resource(&self, uri: &str) -> Result<(), Error> {
        let declared = self.caps().resources.as_ref().and_then(|r| r.subscribe) == Some(true);
        self.require("resources/unsubscribe", "resources.subscribe", declared)?;
        self.request::<Value>(
            "resources/unsubscribe",
            Some(json!({ "uri": uri })),
            &RequestOptions::default(),
        )
        .await
        .map(drop)
    }

    /// Lists every prompt, following pagination to the end.
    pub async fn list_prompts(&self) -> Result<Vec<Prompt>, Error> {
        self.require("prompts/list", "prompts", self.caps().prompts.is_some())?;
        self.list_all("prompts/list", |p: ListPromptsResult| {
            (p.prompts, p.next_cursor)
        })
        .await
    }

    /// Gets a prompt, filled with `arguments`.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: impl IntoIterator<Item = (String, String)>,
    ) -> Result<GetPromptResult, Error> {
        self.require("prompts/get", "prompts", self.caps().prompts.is_some())?;
        let args: Map<String, Value> = arguments
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect();
        self.request(
            "prompts/get",
            Some(json!({ "name": name, "arguments": args })),
            &RequestOptions::default(),
        )
        .await
    }

    /// Sets the server's log level (needs the `logging` capability).
    pub async fn set_logging_level(&self, level: LoggingLevel) -> Result<(), Error> {
        self.require("logging/setLevel", "logging", self.caps().logging.is_some())?;
        self.request::<Value>(
            "logging/setLevel",
            Some(json!({ "level": level })),
            &RequestOptions::default(),
        )
        .await
        .map(drop)
    }

    /// Asks for completions of an argument (needs `completions`).
    pub async fn complete(
        &self,
        reference: CompletionReference,
        argument_name: &str,
        argument_value: &str,
    ) -> Result<CompleteResult, Error> {
        self.require(
            "completion/complete",
            "completions",
            self.caps().completions.is_some(),
        )?;
        self.request(
            "completion/complete",
            Some(json!({
                "ref": reference,
                "argument": { "name": argument_name, "value": argument_value },
            })),
            &RequestOptions::default(),
        )
        .await
    }
}

fn set_progress_token(params: &mut Option<Value>, token: i64) {
    let obj = params.get_or_insert_with(|| Value::Object(Map::new()));
    if !obj.is_object() {
        return;
    }
    let meta = obj.as_object_mut().map(|o| {
        o.entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()))
    });
    if let Some(Value::Object(meta)) = meta {
        meta.insert("progressToken".into(), Value::from(token));
    }
}

/// How the reader task ended.
#[derive(Debug, Clone)]
pub(crate) enum ReaderExit {
    /// The link broke or ended; the reason is what callers saw.
    Lost(TransportError),
    /// The session was stopped on purpose.
    Stopped,
}

/// One link's engine: the client handle plus the tasks that drive the link.
/// Dropping it stops the tasks (the writer closes the link gracefully first).
pub(crate) struct Session {
    pub(crate) client: Client,
    reader: Option<JoinHandle<ReaderExit>>,
    writer: Option<JoinHandle<()>>,
    stop_writer: CancellationToken,
    stop_reader: CancellationToken,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Starts the engine over `link`.
    pub(crate) fn start(link: Link, config: &EngineConfig) -> Session {
        let (out_tx, out_rx) = mpsc::channel(config.queue_capacity.max(1));
        let (replies_tx, replies_rx) = mpsc::channel(REPLY_QUEUE);
        let inner = Arc::new(ClientInner {
            name: config.name.clone(),
            out: out_tx,
            replies: replies_tx,
            pending: Mutex::new(Pending::default()),
            next_id: AtomicI64::new(0),
            request_timeout: config.request_timeout,
            server: OnceLock::new(),
            notifications: config.notifications.clone(),
            counters: config.counters.clone(),
            on_link_lost: config.on_link_lost.clone(),
        });
        let stop_writer = CancellationToken::new();
        let stop_reader = CancellationToken::new();
        let span = tracing::Span::current();
        let writer = tokio::spawn(
            write_loop(
                link.tx,
                Outgoing {
                    requests: out_rx,
                    replies: replies_rx,
                },
                inner.clone(),
                stop_writer.clone(),
                stop_reader.clone(),
                config.close_grace,
            )
            .instrument(span.clone()),
        );
        let reader = tokio::spawn(
            Reader {
                inner: inner.clone(),
                handlers: config.handlers.clone(),
                max_server_requests: config.max_server_requests.max(1),
                running: JoinSet::new(),
                backlog: VecDeque::new(),
                by_request: HashMap::new(),
                by_task: HashMap::new(),
            }
            .run(link.rx, stop_reader.clone())
            .instrument(span),
        );
        Session {
            client: Client { inner },
            reader: Some(reader),
            writer: Some(writer),
            stop_writer,
            stop_reader,
        }
    }

    /// Records the server's `initialize` result on the client.
    pub(crate) fn set_server(&self, result: InitializeResult) {
        let _ = self.client.inner.server.set(result);
    }

    /// Resolves when the link ends by itself. Cancel-safe; must not be polled
    /// again after it resolved.
    pub(crate) async fn closed(&mut self) -> ReaderExit {
        match self.reader.as_mut() {
            Some(handle) => {
                let exit = match handle.await {
                    Ok(exit) => exit,
                    Err(e) => ReaderExit::Lost(TransportError::Protocol(format!(
                        "reader task failed: {e}"
                    ))),
                };
                self.reader = None;
                exit
            }
            None => std::future::pending().await,
        }
    }

    /// Takes the session out of service at once: from now on every request
    /// fails with `error` (unless the link was already lost), and the writer
    /// starts closing the link. [`Session::shutdown`] then waits for it.
    pub(crate) fn begin_shutdown(&self, error: Error) {
        self.client.inner.fail_all(error);
        self.stop_writer.cancel();
    }

    /// Stops the session: fails what is pending with `error`, closes the link
    /// gracefully (the writer runs the transport's close), then waits for
    /// both tasks.
    pub(crate) async fn shutdown(mut self, error: Error) {
        self.client.inner.fail_all(error);
        self.stop_writer.cancel();
        if let Some(writer) = self.writer.take() {
            let _ = writer.await;
        }
        self.stop_reader.cancel();
        if let Some(reader) = self.reader.take() {
            let _ = reader.await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Not shut down explicitly (e.g. a connect attempt that timed out):
        // the writer still closes the link, then stops the reader.
        self.stop_writer.cancel();
    }
}

/// What the writer drains: replies to the server first, then our messages.
struct Outgoing {
    requests: mpsc::Receiver<Message>,
    replies: mpsc::Receiver<Message>,
}

impl Outgoing {
    async fn recv(&mut self) -> Option<Message> {
        tokio::select! {
            biased;
            Some(msg) = self.replies.recv() => Some(msg),
            msg = self.requests.recv() => msg,
        }
    }

    fn try_recv(&mut self) -> Option<Message> {
        self.replies
            .try_recv()
            .or_else(|_| self.requests.try_recv())
            .ok()
    }
}

async fn write_loop(
    mut tx: Box<dyn LinkTx>,
    mut out: Outgoing,
    inner: Arc<ClientInner>,
    stop: CancellationToken,
    stop_reader: CancellationToken,
    grace: Duration,
) {
    let mut batch: Vec<Message> = Vec::with_capacity(16);
    loop {
        let first = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            msg = out.recv() => match msg {
                Some(msg) => msg,
                None => break,
            },
        };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match out.try_recv() {
                Some(msg) => batch.push(msg),
                None => break,
            }
        }
        let sent = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            sent = tx.send_batch(&batch) => sent,
        };
        batch.clear();
        if let Err(e) = sent {
            tracing::debug!(connection = %inner.name, error = %e, "write failed; the link is lost");
            inner.fail_all(Error::ConnectionLost {
                connection: inner.name.clone(),
                reason: e,
            });
            stop_reader.cancel();
            break;
        }
    }
    drop(out);
    if let Err(e) = tx.close(grace).await {
        tracing::debug!(connection = %inner.name, error = %e, "closing the link failed");
    }
    stop_reader.cancel();
}

struct Reader {
    inner: Arc<ClientInner>,
    handlers: ClientHandlers,
    max_server_requests: usize,
    running: JoinSet<()>,
    /// Server requests waiting for a free handler slot (bounded).
    backlog: VecDeque<Request>,
    by_request: HashMap<RequestId, AbortHandle>,
    by_task: HashMap<tokio::task::Id, RequestId>,
}

impl Reader {
    async fn run(mut self, mut rx: Box<dyn LinkRx>, stop: CancellationToken) -> ReaderExit {
        let exit = loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break None,
                Some(done) = self.running.join_next_with_id(), if !self.running.is_empty() => {
                    self.reap(done);
                }
                msg = rx.recv() => match msg {
                    Ok(Some(Inbound::Message(msg))) => self.route(msg),
                    Ok(Some(Inbound::Failed { id, error })) => self.on_failed(id, error),
                    Ok(None) => break Some(TransportError::Eof),
                    Err(e) => break Some(e),
                },
            }
        };
        self.running.abort_all();
        let name = self.inner.name.clone();
        match exit {
            Some(reason) => {
                tracing::debug!(connection = %name, %reason, "link ended");
                self.inner.fail_all(Error::ConnectionLost {
                    connection: name,
                    reason,
                });
            }
            None => self.inner.fail_all(Error::Closed { connection: name }),
        }
        match self.inner.terminal() {
            Some(Error::ConnectionLost { reason, .. }) => ReaderExit::Lost(reason),
            _ => ReaderExit::Stopped,
        }
    }

    fn route(&mut self, msg: Message) {
        match msg {
            Message::Response(resp) => self.on_response(resp),
            Message::Request(req) => self.on_request(req),
            Message::Notification(n) => self.on_notification(n),
        }
    }

    /// The transport failed one request: only its caller hears of it.
    fn on_failed(&mut self, id: RequestId, error: TransportError) {
        tracing::warn!(connection = %self.inner.name, %id, %error, "the transport failed a request");
        if let Some(slot) = self.inner.pending().map.remove(&id) {
            let _ = slot.reply.send(Reply::Transport(error));
        }
    }

    /// Queues a reply to the server without waiting: the reader must keep
    /// routing responses whatever the writer is doing.
    fn reply_now(&self, reply: Message) {
        if let Err(e) = self.inner.replies.try_send(reply) {
            tracing::warn!(connection = %self.inner.name, error = %e, "reply queue full: dropped a reply to the server");
        }
    }

    fn on_response(&mut self, resp: Response) {
        let Some(id) = resp.id else {
            // Checklist item 6: an error without an id fails nothing pending.
            Counters::bump(&self.inner.counters.invalid_messages);
            if let ResponsePayload::Error(e) = &resp.payload {
                tracing::warn!(connection = %self.inner.name, error = %e, "server sent an error without an id");
            }
            return;
        };
        let slot = self.inner.pending().map.remove(&id);
        match slot {
            Some(slot) => {
                let reply = match resp.payload {
                    ResponsePayload::Result(raw) => Reply::Result(raw),
                    ResponsePayload::Error(e) => Reply::Rpc(e),
                };
                let _ = slot.reply.send(reply);
            }
            None => {
                // Checklist items 2 and 24: unknown or late answers are dropped.
                Counters::bump(&self.inner.counters.unmatched_responses);
                tracing::debug!(connection = %self.inner.name, %id, "response matches no pending request");
            }
        }
    }

    fn on_request(&mut self, req: Request) {
        if req.method == "ping" {
            // Checklist item 20: answered at once, even before `initialized`.
            self.reply_now(Message::Response(Response {
                id: Some(req.id),
                payload: ResponsePayload::Result(empty_object()),
            }));
            return;
        }
        if self.running.len() >= self.max_server_requests {
            if self.backlog.len() >= SERVER_REQUEST_BACKLOG {
                tracing::warn!(connection = %self.inner.name, id = %req.id, method = %req.method, "too many server requests waiting: refused");
                self.reply_now(Message::Response(Response::error(
                    Some(req.id),
                    JsonRpcError::internal("the client is busy: too many requests in progress"),
                )));
            } else {
                self.backlog.push_back(req);
            }
            return;
        }
        self.spawn_handler(req);
    }

    /// Runs a server request's handler in a slot of `running`.
    fn spawn_handler(&mut self, req: Request) {
        let handlers = self.handlers.clone();
        let inner = self.inner.clone();
        let id = req.id.clone();
        let handle = self.running.spawn(async move {
            let outcome = handlers.handle(&req.method, req.params).await;
            let payload = match outcome.map(|v| serde_json::value::to_raw_value(&v)) {
                Ok(Ok(raw)) => ResponsePayload::Result(raw),
                Ok(Err(e)) => ResponsePayload::Error(JsonRpcError::internal(e.to_string())),
                Err(e) => ResponsePayload::Error(e),
            };
            // A handler task (not the reader) may wait for room.
            let _ = inner
                .replies
                .send(Message::Response(Response {
                    id: Some(req.id),
                    payload,
                }))
                .await;
        });
        self.by_task.insert(handle.id(), id.clone());
        self.by_request.insert(id, handle);
    }

    /// A handler finished; a panicked one still owes the server an answer
    /// (checklist item 5: -32603).
    fn reap(&mut self, done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let (task, panicked) = match &done {
            Ok((task, ())) => (*task, false),
            Err(e) => (e.id(), e.is_panic()),
        };
        if let Some(id) = self.by_task.remove(&task) {
            self.by_request.remove(&id);
            if panicked {
                self.reply_now(Message::Response(Response::error(
                    Some(id),
                    JsonRpcError::internal("the client's handler failed"),
                )));
            }
        }
        // A slot is free: the oldest waiting server request takes it.
        while self.running.len() < self.max_server_requests {
            match self.backlog.pop_front() {
                Some(req) => self.spawn_handler(req),
                None => break,
            }
        }
    }

    fn on_notification(&mut self, n: Notification) {
        match n.method.as_str() {
            "notifications/progress" => self.on_progress(n.params.as_ref()),
            "notifications/tools/list_changed" => {
                Counters::bump(&self.inner.counters.tools_list_changed);
                let _ = self
                    .inner
                    .notifications
                    .send(ServerNotification::from_notification(n));
            }
            "notifications/cancelled" => {
                // Checklist item 26: abort that handler; it sends no response.
                let id = n
                    .params
                    .as_ref()
                    .and_then(|p| p.get("requestId"))
                    .and_then(|id| serde_json::from_value::<RequestId>(id.clone()).ok());
                if let Some(id) = id {
                    if let Some(handle) = self.by_request.remove(&id) {
                        self.by_task.remove(&handle.id());
                        handle.abort();
                    } else {
                        // Still waiting for a slot: drop it unanswered.
                        self.backlog.retain(|r| r.id != id);
                    }
                }
                let _ = self
                    .inner
                    .notifications
                    .send(ServerNotification::from_notification(n));
            }
            _ => {
                let _ = self
                    .inner
                    .notifications
                    .send(ServerNotification::from_notification(n));
            }
        }
    }

    /// Checklist item 27: progress goes to its request's callback; progress
    /// for unknown tokens is dropped.
    fn on_progress(&self, params: Option<&Value>) {
        let Some(params) = params else { return };
        let Some(token) = params
            .get("progressToken")
            .and_then(|t| serde_json::from_value::<RequestId>(t.clone()).ok())
        else {
            return;
        };
        let Some(progress) = params.get("progress").and_then(Value::as_f64) else {
            return;
        };
        let state = self
            .inner
            .pending()
            .map
            .get(&token)
            .and_then(|slot| slot.progress.clone());
        if let Some(state) = state {
            (state.callback)(Progress {
                progress,
                total: params.get("total").and_then(Value::as_f64),
                message: params
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
            state.seen.notify_one();
        }
    }
}

fn empty_object() -> Box<RawValue> {
    // "{}" is valid JSON.
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| unreachable!("{{}} is valid JSON"))
}

/// Runs the `initialize` handshake on a fresh session (checklist items 10-16).
pub(crate) async fn initialize(
    session: &Session,
    client_info: &Implementation,
    capabilities: ClientCapabilities,
    timeout: Duration,
) -> Result<InitializeResult, Error> {
    let client = &session.client;
    let params = InitializeParams {
        protocol_version: LATEST_PROTOCOL_VERSION.to_owned(),
        capabilities,
        client_info: client_info.clone(),
    };
    let params = serde_json::to_value(params).map_err(|e| Error::Protocol {
        connection: client.inner.name.clone(),
        message: e.to_string(),
    })?;
    // Not through `request`: the handshake is part of connecting and is not
    // counted in the request metrics (its failures count as connect errors).
    let raw = client
        .send_request(
            "initialize",
            Some(params),
            &RequestOptions::new().timeout(timeout),
        )
        .await?;
    let result: InitializeResult =
        serde_json::from_str(raw.get()).map_err(|e| Error::Protocol {
            connection: client.inner.name.clone(),
            message: format!("`initialize` returned an unexpected result: {e}"),
        })?;
    if !SUPPORTED_PROTOCOL_VERSIONS.contains(&result.protocol_version.as_str()) {
        // Checklist item 14: no `notifications/initialized` for a version we
        // cannot speak.
        return Err(Error::UnsupportedVersion {
            connection: client.inner.name.clone(),
            offered: result.protocol_version,
        });
    }
    session.set_server(result.clone());
    client.notify("notifications/initialized", None).await?;
    Ok(result)
}
