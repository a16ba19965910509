//! [`ConnectionPool`]: named connections behind one monitor.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;
use mcp_conn_core::protocol::CallToolResult;
use mcp_conn_core::{
    Client, Connection, ConnectionConfig, ConnectionInfo, ConnectionStatus, RequestOptions,
    ServerNotification, Transport,
};
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, ToolCatalog};
use crate::config::{parse_config, read_config_file, ServerConfig};
use crate::error::Error;
use crate::event::{PoolEvent, PoolHealth};
use crate::monitor::{self, MonitorCmd};
use crate::settings::PoolConfig;

struct MonitorHandle {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// Where the monitor's commands go, while it runs. Shared with every
/// connection's status listener, which asks for a tool recheck after a
/// (re)connect; the listener never holds the pool itself.
type MonitorSlot = Arc<Mutex<Option<mpsc::UnboundedSender<MonitorCmd>>>>;

pub(crate) struct PoolInner {
    pub(crate) config: PoolConfig,
    conns: RwLock<BTreeMap<String, Arc<Connection>>>,
    pub(crate) events: broadcast::Sender<PoolEvent>,
    monitor: Mutex<Option<MonitorHandle>>,
    monitor_tx: MonitorSlot,
    /// The servers added from a config, as written there: what
    /// `apply_config_str` compares a new config with.
    pub(crate) from_config: Mutex<BTreeMap<String, ServerConfig>>,
    /// One config applied at a time.
    pub(crate) applying: tokio::sync::Mutex<()>,
    /// The OAuth providers of the servers whose entry has `auth`.
    #[cfg(feature = "oauth")]
    pub(crate) oauth: Mutex<BTreeMap<String, mcp_transport_http::oauth::OAuthProvider>>,
    pub(crate) catalog: Arc<Catalog>,
}

impl PoolInner {
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Connection>> {
        self.conns.read().get(name).cloned()
    }

    fn all(&self) -> Vec<(String, Arc<Connection>)> {
        self.conns
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn tell_monitor(&self, cmd: MonitorCmd) {
        if let Some(tx) = self.monitor_tx.lock().as_ref() {
            let _ = tx.send(cmd);
        }
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        if let Some(m) = self.monitor.get_mut().take() {
            m.cancel.cancel();
        }
    }
}

/// A keyed pool of named MCP connections with one shared health monitor.
///
/// ```
/// # use mcp_conn_core::testing::{FakeServer, MockTransport};
/// use mcp_conn_pool::ConnectionPool;
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), mcp_conn_pool::Error> {
/// let pool = ConnectionPool::new();
/// pool.insert("alpha", MockTransport::serving(FakeServer::default()))?;
/// pool.insert("beta", MockTransport::serving(FakeServer::default()))?;
/// for (name, outcome) in pool.connect_all().await {
///     println!("{name}: {}", if outcome.is_ok() { "connected" } else { "failed" });
/// }
/// pool.start_monitoring(); // one task for the whole pool
/// let catalog = pool.list_tools().await;
/// assert!(catalog.tools.iter().any(|t| t.qualified_name == "beta__add"));
/// let sum = pool.call_tool("beta__add", json!({"a": 1, "b": 2})).await?;
/// assert_eq!(sum.text(), "3");
/// pool.shutdown().await;
/// # Ok(())
/// # }
/// ```
///
/// A `ConnectionPool` is a cheap handle (an `Arc` inside), like the pools of
/// deadpool and bb8: clone it into every task that needs it. The pool
/// shuts its monitor down when the last handle is dropped.
#[derive(Clone)]
pub struct ConnectionPool {
    pub(crate) inner: Arc<PoolInner>,
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool")
            .field("servers", &self.names())
            .finish_non_exhaustive()
    }
}

impl Default for ConnectionPool {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectionPool {
    /// An empty pool with the default [`PoolConfig`]. Needs no runtime.
    pub fn new() -> Self {
        Self::with_config(PoolConfig::default())
    }

    /// An empty pool.
    pub fn with_config(config: PoolConfig) -> Self {
        let (events, _) = broadcast::channel(config.event_buffer.max(1));
        ConnectionPool {
            inner: Arc::new(PoolInner {
                catalog: Arc::new(Catalog::new(config.tool_separator.clone())),
                config,
                conns: RwLock::new(BTreeMap::new()),
                events,
                monitor: Mutex::new(None),
                monitor_tx: Arc::new(Mutex::new(None)),
                from_config: Mutex::new(BTreeMap::new()),
                applying: tokio::sync::Mutex::new(()),
                #[cfg(feature = "oauth")]
                oauth: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// The pool's settings.
    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// Adds a server with the pool's default connection settings. It is not
    /// connected until [`ConnectionPool::client`] or `connect_all`.
    pub fn insert(
        &self,
        name: impl Into<String>,
        transport: impl Transport,
    ) -> Result<Arc<Connection>, Error> {
        let config = self.inner.config.default_connection.clone();
        self.insert_with_config(name, transport, config)
    }

    /// Adds a server with its own connection settings. Invalid settings
    /// ([`ConnectionConfig::validate`]) are refused here, with
    /// [`mcp_conn_core::Error::InvalidConfig`].
    pub fn insert_with_config(
        &self,
        name: impl Into<String>,
        transport: impl Transport,
        mut config: ConnectionConfig,
    ) -> Result<Arc<Connection>, Error> {
        let name = name.into();
        if let Err(source) = config.validate() {
            return Err(mcp_conn_core::Error::InvalidConfig {
                connection: Arc::from(name.as_str()),
                source,
            }
            .into());
        }
        let events = self.inner.events.clone();
        let monitor = self.inner.monitor_tx.clone();
        let user_listener = config.status_listener.take();
        config.status_listener = Some(Arc::new(move |name: &str, from, to| {
            if let Some(listener) = &user_listener {
                listener(name, from, to);
            }
            let _ = events.send(PoolEvent::StatusChanged {
                name: name.to_owned(),
                from,
                to,
            });
            if to == ConnectionStatus::Connected {
                // A new session may offer other tools: the monitor (if it
                // runs) compares them with the cached list.
                if let Some(tx) = monitor.lock().as_ref() {
                    let _ = tx.send(MonitorCmd::Recheck(name.to_owned(), None));
                }
            }
        }));
        // A `tools/list_changed` asks the monitor (if it runs) for a recheck.
        // At most one such request per server waits in the monitor's queue:
        // a server sending them in a loop cannot grow it.
        let monitor = self.inner.monitor_tx.clone();
        let user_listener = config.notification_listener.take();
        let queued = Arc::new(AtomicBool::new(false));
        config.notification_listener = Some(Arc::new(move |name: &str, note| {
            if let Some(listener) = &user_listener {
                listener(name, note);
            }
            if *note == ServerNotification::ToolsListChanged && !queued.swap(true, Ordering::AcqRel)
            {
                match monitor.lock().as_ref() {
                    Some(tx) => {
                        let flag = Some(queued.clone());
                        if tx.send(MonitorCmd::Recheck(name.to_owned(), flag)).is_err() {
                            queued.store(false, Ordering::Release);
                        }
                    }
                    None => queued.store(false, Ordering::Release),
                }
            }
        }));
        let interval = config.health_check_interval;
        let conn = Arc::new(Connection::with_config(name.clone(), transport, config));
        {
            let mut conns = self.inner.conns.write();
            if conns.contains_key(&name) {
                return Err(Error::DuplicateName { name });
            }
            conns.insert(name.clone(), conn.clone());
        }
        self.inner
            .tell_monitor(MonitorCmd::Add(name.clone(), interval));
        let _ = self.inner.events.send(PoolEvent::Added { name });
        Ok(conn)
    }

    /// Removes a server and disconnects it.
    pub async fn remove(&self, name: &str) -> Result<(), Error> {
        let conn = self
            .inner
            .conns
            .write()
            .remove(name)
            .ok_or_else(|| Error::UnknownServer {
                name: name.to_owned(),
            })?;
        self.inner.tell_monitor(MonitorCmd::Remove(name.to_owned()));
        self.inner.catalog.forget(name);
        self.inner.from_config.lock().remove(name);
        #[cfg(feature = "oauth")]
        self.inner.oauth.lock().remove(name);
        conn.disconnect().await;
        let _ = self.inner.events.send(PoolEvent::Removed {
            name: name.to_owned(),
        });
        Ok(())
    }

    /// The connection of a server.
    pub fn get(&self, name: &str) -> Option<Arc<Connection>> {
        self.inner.get(name)
    }

    /// A live client of a server, connecting it first if it is not.
    ///
    /// This is a call path, so it never defeats the reconnect backoff (see
    /// [`Connection::ensure_connected`]): a connected server answers at once
    /// without a round trip to its supervisor; a server waiting out a
    /// backoff fails at once with [`mcp_conn_core::Error::Backoff`] (or waits
    /// for the scheduled attempt with `DuringBackoff::Wait`); a server in
    /// `Error` is retried at most every `max_reconnect_delay`. It never
    /// resets a server's attempt budget: [`Connection::connect`] and
    /// [`ConnectionPool::connect_all`] do.
    pub async fn client(&self, name: &str) -> Result<Client, Error> {
        let conn = self.get(name).ok_or_else(|| Error::UnknownServer {
            name: name.to_owned(),
        })?;
        Ok(conn.ensure_connected().await?)
    }

    /// The servers' names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.inner.conns.read().keys().cloned().collect()
    }

    /// How many servers.
    pub fn len(&self) -> usize {
        self.inner.conns.read().len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connects every server, `max_concurrent_connects` at a time; one slow
    /// or broken server only holds its own slot. Returns each outcome. This
    /// is the user's explicit connect ([`Connection::connect`]): a server in
    /// `Error` starts afresh.
    pub async fn connect_all(&self) -> BTreeMap<String, Result<Client, mcp_conn_core::Error>> {
        let all = self.inner.all();
        futures_util::stream::iter(all)
            .map(|(name, conn)| async move { (name, conn.connect().await) })
            .buffer_unordered(self.inner.config.max_concurrent_connects.max(1))
            .collect()
            .await
    }

    /// Starts the pool's one monitor task (idempotent). Each server is probed
    /// every `health_check_interval` of its own settings, with jitter.
    ///
    /// # Panics
    /// Outside a Tokio runtime (it spawns the monitor task).
    pub fn start_monitoring(&self) {
        let mut slot = self.inner.monitor.lock();
        if slot.as_ref().is_some_and(|m| !m.task.is_finished()) {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        for (name, conn) in self.inner.all() {
            let _ = tx.send(MonitorCmd::Add(name, conn.config().health_check_interval));
        }
        *self.inner.monitor_tx.lock() = Some(tx);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(monitor::run(
            Arc::downgrade(&self.inner),
            rx,
            cancel.clone(),
            self.inner.config.max_concurrent_probes,
            self.inner.config.probe_jitter,
        ));
        *slot = Some(MonitorHandle { cancel, task });
    }

    /// Stops the monitor and waits for it to end.
    pub async fn stop_monitoring(&self) {
        let handle = self.inner.monitor.lock().take();
        *self.inner.monitor_tx.lock() = None;
        if let Some(m) = handle {
            m.cancel.cancel();
            let _ = m.task.await;
        }
    }

    /// Whether the monitor runs.
    pub fn is_monitoring(&self) -> bool {
        self.inner
            .monitor
            .lock()
            .as_ref()
            .is_some_and(|m| !m.task.is_finished())
    }

    /// Every connection's snapshot, and totals.
    pub fn health_report(&self) -> PoolHealth {
        let connections: Vec<ConnectionInfo> =
            self.inner.all().iter().map(|(_, c)| c.info()).collect();
        let connected = connections
            .iter()
            .filter(|i| i.status == ConnectionStatus::Connected)
            .count();
        let healthy = connections
            .iter()
            .filter(|i| {
                i.status == ConnectionStatus::Connected
                    && i.health_score >= self.inner.config.healthy_threshold
            })
            .count();
        let in_error = connections
            .iter()
            .filter(|i| i.status == ConnectionStatus::Error)
            .count();
        PoolHealth {
            total: connections.len(),
            connections,
            connected,
            healthy,
            in_error,
        }
    }

    /// Pool events: status changes, probe results, servers added and
    /// removed. A subscriber that falls behind loses the oldest events
    /// (`RecvError::Lagged`); it never slows the pool.
    pub fn subscribe(&self) -> broadcast::Receiver<PoolEvent> {
        self.inner.events.subscribe()
    }

    /// Stops the monitor and disconnects every server at once, waiting at
    /// most `shutdown_timeout`.
    pub async fn shutdown(&self) {
        self.stop_monitoring().await;
        let all = self.inner.all();
        let disconnects = futures_util::future::join_all(all.iter().map(|(_, c)| c.disconnect()));
        if tokio::time::timeout(self.inner.config.shutdown_timeout, disconnects)
            .await
            .is_err()
        {
            tracing::warn!("pool shutdown timed out; the rest close in the background");
        }
    }

    /// Every connected server's tools under qualified names
    /// (`server` + separator + `tool`). Each server's list is cached, and
    /// fetched again after that server sends `notifications/tools/list_changed`
    /// or reconnects.
    pub async fn list_tools(&self) -> ToolCatalog {
        let connected: Vec<_> = self
            .inner
            .all()
            .into_iter()
            .filter(|(_, c)| c.status() == ConnectionStatus::Connected)
            .collect();
        let (catalog, diffs) = self
            .inner
            .catalog
            .refresh(connected, self.inner.config.max_concurrent_connects)
            .await;
        for (name, diff) in diffs {
            let _ = self
                .inner
                .events
                .send(PoolEvent::ToolsChanged { name, diff });
        }
        catalog
    }

    /// Calls a tool by its qualified name (as [`ConnectionPool::list_tools`]
    /// gives it), on the server it belongs to. An unknown name refreshes the
    /// catalog once before failing with [`Error::UnknownTool`].
    pub async fn call_tool(
        &self,
        qualified: &str,
        arguments: Value,
    ) -> Result<CallToolResult, Error> {
        self.call_tool_with(qualified, arguments, &RequestOptions::default())
            .await
    }

    /// [`ConnectionPool::call_tool`] with options: a timeout, progress, or
    /// [`RequestOptions::idempotent`], which lets a server's
    /// [`replay_after_reconnect`](mcp_conn_core::ConnectionConfig::replay_after_reconnect)
    /// send the call again on a new link when the old one died before the
    /// answer.
    pub async fn call_tool_with(
        &self,
        qualified: &str,
        arguments: Value,
        opts: &RequestOptions,
    ) -> Result<CallToolResult, Error> {
        let route = match self.inner.catalog.route(qualified) {
            Some(route) => Some(route),
            None => {
                self.list_tools().await;
                self.inner.catalog.route(qualified)
            }
        };
        let (server, tool) = route.ok_or_else(|| Error::UnknownTool {
            qualified: qualified.to_owned(),
        })?;
        self.call_tool_on_with(&server, &tool, arguments, opts)
            .await
    }

    /// Calls `tool` on `server`, connecting it first if need be (as
    /// [`ConnectionPool::client`] does: never defeating the backoff).
    pub async fn call_tool_on(
        &self,
        server: &str,
        tool: &str,
        arguments: Value,
    ) -> Result<CallToolResult, Error> {
        self.call_tool_on_with(server, tool, arguments, &RequestOptions::default())
            .await
    }

    /// [`ConnectionPool::call_tool_on`] with options (see
    /// [`ConnectionPool::call_tool_with`]).
    pub async fn call_tool_on_with(
        &self,
        server: &str,
        tool: &str,
        arguments: Value,
        opts: &RequestOptions,
    ) -> Result<CallToolResult, Error> {
        let conn = self.get(server).ok_or_else(|| Error::UnknownServer {
            name: server.to_owned(),
        })?;
        Ok(conn.call_tool_with(tool, arguments, opts).await?)
    }

    /// A pool of the enabled servers of an `mcpServers` document, with the
    /// default [`PoolConfig`]. `${VAR}` is read from this process's
    /// environment. Nothing is started until the servers are used.
    pub fn from_config_str(json: &str) -> Result<Self, Error> {
        Self::from_config_str_with(json, PoolConfig::default())
    }

    /// [`ConnectionPool::from_config_str`] with pool settings.
    pub fn from_config_str_with(json: &str, config: PoolConfig) -> Result<Self, Error> {
        let servers = parse_config(json, &config.default_connection, |v| std::env::var(v).ok())?;
        Self::from_servers(servers, config)
    }

    /// Reads the `mcpServers` document at `path`: relative `envFile` paths
    /// are taken from its folder, and `${workspaceFolder}` is known for a
    /// file in a project's `.vscode/` or `.cursor/` folder
    /// ([`crate::ConfigContext::for_file`]).
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let config = PoolConfig::default();
        let servers = read_config_file(path.as_ref(), &config.default_connection, |v| {
            std::env::var(v).ok()
        })?;
        Self::from_servers(servers, config)
    }

    fn from_servers(servers: Vec<ServerConfig>, config: PoolConfig) -> Result<Self, Error> {
        let pool = ConnectionPool::with_config(config);
        for server in servers.into_iter().filter(|s| !s.disabled) {
            pool.insert_server(server)?;
        }
        Ok(pool)
    }

    /// Adds a server described by a config entry (as
    /// [`crate::parse_config`] gives it), with its own connection settings.
    pub fn insert_server(&self, server: ServerConfig) -> Result<Arc<Connection>, Error> {
        let built = server.transport.build(&server.name, &self.inner.config)?;
        self.insert_built(server, built)
    }

    pub(crate) fn insert_built(
        &self,
        server: ServerConfig,
        built: crate::config::Built,
    ) -> Result<Arc<Connection>, Error> {
        let conn = self.insert_with_config(
            server.name.clone(),
            built.transport,
            server.connection.clone(),
        )?;
        #[cfg(feature = "oauth")]
        if let Some(provider) = built.oauth {
            self.inner
                .oauth
                .lock()
                .insert(server.name.clone(), provider);
        }
        self.inner
            .from_config
            .lock()
            .insert(server.name.clone(), server);
        Ok(conn)
    }

    pub(crate) fn from_inner(inner: Arc<PoolInner>) -> Self {
        ConnectionPool { inner }
    }

    pub(crate) fn events(&self) -> &broadcast::Sender<PoolEvent> {
        &self.inner.events
    }
}
