//! [`Client`]: the handle callers use, and its typed MCP methods.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, oneshot, Notify};
use tokio::time::Instant;

use super::options::RequestOptions;
use super::pending::{ClientInner, PendingGuard, ProgressState, Queue, Reply, Slot};
use crate::error::Error;
use crate::jsonrpc::{Message, Request, RequestId, Response};
use crate::metrics::{Counters, Gauge};
use crate::notification::ServerNotification;
use crate::protocol::*;
use crate::transport::DirectExchange;

/// A handle to one live MCP session: cheap to clone, usable from many tasks at
/// once. Requests are multiplexed over the one link and answered in any order.
///
/// A `Client` belongs to one link. After a reconnect, get the new one from
/// [`crate::Connection::client`]; calls on an old one fail with
/// [`Error::ConnectionLost`] or [`Error::Closed`], never hang.
#[derive(Clone)]
pub struct Client {
    pub(super) inner: Arc<ClientInner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("connection", &self.inner.name)
            .field("protocol_version", &self.protocol_version())
            .finish_non_exhaustive()
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

    /// The protocol era this session speaks (`None` before its handshake).
    pub fn protocol_era(&self) -> Option<crate::ProtocolEra> {
        if self.inner.stateless.get().is_some() {
            Some(crate::ProtocolEra::Stateless)
        } else {
            self.server().map(|_| crate::ProtocolEra::Handshake)
        }
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

    /// Whether the last tool listing (of any session of this connection)
    /// annotated `tool` as read-only or idempotent.
    pub(crate) fn tool_is_repeatable(&self, tool: &str) -> bool {
        self.inner.tool_hints.repeatable(tool)
    }

    /// Whether the session is still live (its link has not ended).
    pub fn is_open(&self) -> bool {
        self.inner.terminal().is_none()
    }

    /// Subscribes to the server's notifications. The channel belongs to the
    /// connection, not to this session: it is the same one as
    /// [`crate::Connection::notifications`], so a receiver taken here keeps
    /// receiving after a reconnect (notifications of the new session).
    pub fn notifications(&self) -> broadcast::Receiver<ServerNotification> {
        self.inner.notifications.subscribe()
    }

    /// Sends a request and returns its raw result.
    ///
    /// On timeout, or when the returned future is dropped before the answer,
    /// the request is forgotten and `notifications/cancelled` goes to the
    /// server.
    pub async fn request_raw(
        &self,
        method: &str,
        params: Option<Value>,
        opts: &RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        let counters = &self.inner.counters;
        let timer = counters.telemetry.start(method);
        // The per-server limit: wait for a slot, within the request's own
        // timeout, instead of flooding a slow server.
        let _slot = match &counters.limit {
            Some(limit) => {
                let _queued = Gauge::up(&counters.queued);
                let timeout = opts.timeout.unwrap_or(self.inner.request_timeout);
                match tokio::time::timeout(timeout, limit.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => Some(permit),
                    Ok(Err(_)) => return Err(self.inner.closed_error()),
                    Err(_) => {
                        Counters::bump(&counters.requests_timed_out);
                        return timer.finish(Err(Error::Timeout {
                            connection: self.inner.name.clone(),
                            operation: format!("{method} (waiting for a slot under max_in_flight)"),
                            after: timeout,
                        }));
                    }
                }
            }
            None => None,
        };
        let _in_flight = Gauge::up(&counters.in_flight);
        let outcome = if self.is_stateless() {
            // Boxed: its rounds make a large future, and inline it would
            // make every request's future as large (a pool's probes copy
            // and allocate theirs thousands of times a second).
            Box::pin(self.send_with_rounds(method, params, opts)).await
        } else {
            self.send_request(method, params, opts).await
        };
        match &outcome {
            Ok(_) => {
                Counters::bump(&counters.requests_ok);
                *counters.last_ok.lock() = Some(Instant::now());
            }
            Err(e) if e.is_timeout() => Counters::bump(&counters.requests_timed_out),
            Err(_) => Counters::bump(&counters.requests_failed),
        }
        timer.finish(outcome)
    }

    /// The one place every request is built and sent: the id, the progress
    /// token, and (stateless era) the `_meta` of every request.
    pub(super) async fn send_request(
        &self,
        method: &str,
        params: Option<Value>,
        opts: &RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        self.send_request_as(method, params, None, opts, self.inner.stateless.get())
            .await
    }

    /// [`Client::send_request`] with the stateless `_meta` given (the era
    /// probe sends it before the session knows its era) and a server's
    /// `requestState` to echo, written raw.
    pub(super) async fn send_request_as(
        &self,
        method: &str,
        mut params: Option<Value>,
        request_state: Option<&RawValue>,
        opts: &RequestOptions,
        stateless: Option<&super::stateless::StatelessMeta>,
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
        let raw_meta = stateless.and_then(|meta| {
            let raw = meta.as_raw(&params, opts);
            if raw.is_none() {
                meta.apply(&mut params, opts);
            }
            raw
        });
        let (tx, mut rx) = oneshot::channel();
        // Whether no other request waits for an answer: then this one is
        // written at once if the link can (no hand-off to the link task);
        // with others in flight it is queued, to be written in a batch.
        let alone = {
            let mut p = inner.pending();
            if let Some(e) = &p.terminal {
                return Err(e.clone());
            }
            let alone = p.map.is_empty();
            p.map.insert(
                id.clone(),
                Slot {
                    reply: tx,
                    progress: progress.clone(),
                },
            );
            alone
        };
        let mut guard = PendingGuard {
            inner,
            id: id.clone(),
            // `initialize` is never cancelled.
            cancellable: method != "initialize",
            armed: true,
        };
        let mut request = Request::new(id, method, params);
        if let Some(meta) = raw_meta {
            request = request.with_raw_param("_meta", meta);
        }
        if let Some(state) = request_state {
            request = request.with_raw_param("requestState", state.to_owned());
        }
        let msg = Message::Request(request);
        // A transport may run the exchange here (HTTP): polled beside the
        // wait below, it may hand over the response itself.
        let mut exchange = match inner.send_request(msg, alone).await {
            Ok(exchange) => exchange,
            Err(()) => {
                guard.armed = false;
                inner.pending().map.remove(&guard.id);
                return Err(inner.closed_error());
            }
        };

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
                    return outcome(inner, method, reply.ok());
                }
                direct = drive(&mut exchange) => {
                    exchange = None;
                    // The response, unless the session ended meanwhile (its
                    // error is then in `rx`).
                    let slot = direct.and_then(|resp| {
                        let slot = inner.pending().map.remove(&guard.id)?;
                        drop(slot);
                        Some(Reply::from(resp.payload))
                    });
                    if let Some(reply) = slot {
                        guard.armed = false;
                        return outcome(inner, method, Some(reply));
                    }
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
        let note = Message::notification(method, params);
        self.inner
            .send(Queue::Out, note, true)
            .await
            .map_err(|()| self.inner.closed_error())
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

    /// Sends `ping` (handshake era) or `server/discover` (stateless era,
    /// which has no `ping`). A server that answers `-32601` is alive too;
    /// that is reported as `Ok`.
    pub async fn ping(&self) -> Result<(), Error> {
        self.ping_with(&RequestOptions::default()).await
    }

    /// `ping` with options (e.g. a health-check timeout).
    pub async fn ping_with(&self, opts: &RequestOptions) -> Result<(), Error> {
        let method = if self.is_stateless() {
            "server/discover"
        } else {
            "ping"
        };
        match self.request_raw(method, None, opts).await {
            Ok(_) => Ok(()),
            Err(Error::Rpc { error, .. })
                if error.code == crate::jsonrpc::codes::METHOD_NOT_FOUND =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Follows `nextCursor` to the end of a paginated list.
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
        Ok(self.list_tools_for_caching().await?.0)
    }

    /// [`list_tools`](Self::list_tools), with how long the server says the
    /// list may be cached (2026-07-28 `ttlMs`; the shortest over the pages;
    /// `None` when the server gave none).
    pub async fn list_tools_for_caching(&self) -> Result<(Vec<Tool>, Option<Duration>), Error> {
        self.require("tools/list", "tools", self.caps().tools.is_some())?;
        let mut ttl: Option<u64> = None;
        let mut tools = self
            .list_all("tools/list", |p: ListToolsResult| {
                if let Some(t) = p.ttl_ms {
                    ttl = Some(ttl.map_or(t, |old| old.min(t)));
                }
                (p.tools, p.next_cursor)
            })
            .await?;
        if self.is_stateless() {
            // A tool whose `x-mcp-header` annotations are invalid must not be
            // used (its headers cannot be built).
            tools.retain(|tool| match crate::era::tool_param_headers(&tool.input_schema) {
                Ok(_) => true,
                Err(why) => {
                    tracing::warn!(connection = %self.inner.name, tool = %tool.name, %why, "dropped a tool with invalid x-mcp-header annotations");
                    false
                }
            });
        }
        self.inner.tool_hints.learn(&tools);
        Ok((tools, ttl.map(Duration::from_millis)))
    }

    /// Calls a tool. `arguments` must be a JSON object, or `Null` for none;
    /// anything else is refused before sending with
    /// [`Error::InvalidArguments`]. A tool failure comes back as `Ok` with
    /// `is_error()` true.
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
        if !(arguments.is_object() || arguments.is_null()) {
            return Err(Error::InvalidArguments {
                connection: self.inner.name.clone(),
                method: "tools/call".into(),
                message: format!(
                    "the arguments of tool `{name}` must be a JSON object, not {}",
                    json_kind(&arguments)
                ),
            });
        }
        let mut params = Map::new();
        params.insert("name".into(), Value::from(name));
        if !arguments.is_null() {
            params.insert("arguments".into(), arguments);
        }
        let params = Value::Object(params);
        // Only the stateless era retries (below): only it keeps a copy.
        let retry = self.is_stateless().then(|| params.clone());
        match self.request("tools/call", Some(params), opts).await {
            // Stateless era: the server says a header does not match (our
            // idea of the tool's `x-mcp-header`s is stale): list the tools
            // again (the transport learns their schemas) and retry once.
            Err(Error::Rpc { error, .. })
                if retry.is_some() && error.code == crate::era::codes::HEADER_MISMATCH =>
            {
                tracing::info!(connection = %self.inner.name, tool = %name, "header mismatch (-32020): listing tools again and retrying once");
                self.list_tools().await?;
                self.request("tools/call", retry, opts).await
            }
            other => other,
        }
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

/// A request's outcome from its reply (`None`: the reply channel closed,
/// the session ended).
fn outcome(
    inner: &ClientInner,
    method: &str,
    reply: Option<Reply>,
) -> Result<Box<RawValue>, Error> {
    match reply {
        Some(Reply::Result(raw)) => Ok(raw),
        Some(Reply::Rpc(error)) => Err(Error::Rpc {
            connection: inner.name.clone(),
            method: method.to_owned(),
            error,
        }),
        Some(Reply::Failed(e)) => Err(e),
        Some(Reply::Transport(source)) => Err(Error::Transport {
            connection: inner.name.clone(),
            method: method.to_owned(),
            source,
        }),
        None => Err(inner.closed_error()),
    }
}

/// Runs a request's exchange, if its transport gave one; pending forever
/// when not (or once it resolved: the caller clears it).
async fn drive(exchange: &mut Option<DirectExchange>) -> Option<Response> {
    match exchange {
        Some(exchange) => exchange.await,
        None => std::future::pending().await,
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

/// The JSON type of `v`, for error messages.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
