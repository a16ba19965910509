//! [`Client`]: the handle callers use, and its typed MCP methods.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

use super::options::RequestOptions;
use super::pending::{ClientInner, Queue};
use crate::error::Error;
use crate::jsonrpc::Message;
use crate::notification::ServerNotification;
use crate::protocol::*;

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
        !self.inner.ended.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Subscribes to the server's notifications. The channel belongs to the
    /// connection, not to this session: it is the same one as
    /// [`crate::Connection::notifications`], so a receiver taken here keeps
    /// receiving after a reconnect (notifications of the new session).
    pub fn notifications(&self) -> broadcast::Receiver<ServerNotification> {
        self.inner.notifications.subscribe()
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
