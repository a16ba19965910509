//! [`ConnectionPool`]: named connections behind one monitor.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use mcp_conn_core::{
    Client, Connection, ConnectionConfig, ConnectionInfo, ConnectionStatus, Transport,
};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::catalog::Catalog;
use crate::error::Error;
use crate::monitor::{self, MonitorCmd};

/// Settings of a [`ConnectionPool`]. Plain data: write only what you change.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The settings of connections added without their own. Default: the
    /// core defaults.
    pub default_connection: ConnectionConfig,
    /// Connects run at once by [`ConnectionPool::connect_all`]. Default 16.
    pub max_concurrent_connects: usize,
    /// Health probes run at once by the monitor. Default 16.
    pub max_concurrent_probes: usize,
    /// Random spread of each probe interval, as a fraction. Default 0.1.
    pub probe_jitter: f64,
    /// Between server and tool in qualified tool names. Default `"__"`.
    pub tool_separator: String,
    /// How long [`ConnectionPool::shutdown`] may take. Default 10 s.
    pub shutdown_timeout: Duration,
    /// Events a slow subscriber may fall behind by. Default 1024.
    pub event_buffer: usize,
    /// The score below which a connected server does not count as healthy
    /// in [`ConnectionPool::health_report`]. Default 0.7 (the Python original's).
    pub healthy_threshold: f64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            default_connection: ConnectionConfig::default(),
            max_concurrent_connects: 16,
            max_concurrent_probes: 16,
            probe_jitter: 0.1,
            tool_separator: "__".into(),
            shutdown_timeout: Duration::from_secs(10),
            event_buffer: 1024,
            healthy_threshold: 0.7,
        }
    }
}

/// Something that happened in the pool, as [`ConnectionPool::subscribe`]
/// delivers it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PoolEvent {
    /// A server was added.
    Added {
        /// Its name.
        name: String,
    },
    /// A server was removed.
    Removed {
        /// Its name.
        name: String,
    },
    /// A connection's status changed (in order, per connection).
    StatusChanged {
        /// The server.
        name: String,
        /// The old status.
        from: ConnectionStatus,
        /// The new status.
        to: ConnectionStatus,
    },
    /// The monitor probed a server.
    Probed {
        /// The server.
        name: String,
        /// Whether it answered.
        ok: bool,
        /// How long it took, when it answered.
        latency: Option<Duration>,
        /// Why it failed.
        error: Option<String>,
    },
}

/// Every connection's snapshot plus pool totals.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct PoolHealth {
    /// One entry per server, by name.
    pub connections: Vec<ConnectionInfo>,
    /// How many servers.
    pub total: usize,
    /// How many are connected.
    pub connected: usize,
    /// How many are connected with a score at or above the threshold.
    pub healthy: usize,
    /// How many are in `Error`.
    pub in_error: usize,
}

struct MonitorHandle {
    cancel: CancellationToken,
    task: JoinHandle<()>,
    tx: mpsc::UnboundedSender<MonitorCmd>,
}

pub(crate) struct PoolInner {
    pub(crate) config: PoolConfig,
    conns: RwLock<BTreeMap<String, Arc<Connection>>>,
    pub(crate) events: broadcast::Sender<PoolEvent>,
    monitor: Mutex<Option<MonitorHandle>>,
    pub(crate) catalog: Catalog,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PoolInner {
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Connection>> {
        self.conns
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    fn all(&self) -> Vec<(String, Arc<Connection>)> {
        self.conns
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn tell_monitor(&self, cmd: MonitorCmd) {
        if let Some(m) = lock(&self.monitor).as_ref() {
            let _ = m.tx.send(cmd);
        }
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        if let Some(m) = self
            .monitor
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
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
/// pool.start_monitoring().await; // one task for the whole pool
/// let catalog = pool.list_tools().await;
/// assert!(catalog.tools.iter().any(|t| t.qualified_name == "beta__add"));
/// let sum = pool.call_tool("beta__add", json!({"a": 1, "b": 2})).await?;
/// assert_eq!(sum.text(), "3");
/// pool.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct ConnectionPool {
    inner: Arc<PoolInner>,
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
                catalog: Catalog::new(config.tool_separator.clone()),
                config,
                conns: RwLock::new(BTreeMap::new()),
                events,
                monitor: Mutex::new(None),
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
        }));
        let interval = config.health_check_interval;
        let conn = Arc::new(Connection::with_config(name.clone(), transport, config));
        {
            let mut conns = self
                .inner
                .conns
                .write()
                .unwrap_or_else(PoisonError::into_inner);
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
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
            .ok_or_else(|| Error::UnknownServer {
                name: name.to_owned(),
            })?;
        self.inner.tell_monitor(MonitorCmd::Remove(name.to_owned()));
        self.inner.catalog.forget(name);
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
        self.inner
            .conns
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// How many servers.
    pub fn len(&self) -> usize {
        self.inner
            .conns
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
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
    pub async fn start_monitoring(&self) {
        let mut slot = lock(&self.inner.monitor);
        if slot.as_ref().is_some_and(|m| !m.task.is_finished()) {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        for (name, conn) in self.inner.all() {
            let _ = tx.send(MonitorCmd::Add(name, conn.config().health_check_interval));
        }
        let cancel = CancellationToken::new();
        let task = tokio::spawn(monitor::run(
            Arc::downgrade(&self.inner),
            rx,
            cancel.clone(),
            self.inner.config.max_concurrent_probes,
            self.inner.config.probe_jitter,
        ));
        *slot = Some(MonitorHandle { cancel, task, tx });
    }

    /// Stops the monitor and waits for it to end.
    pub async fn stop_monitoring(&self) {
        let handle = lock(&self.inner.monitor).take();
        if let Some(m) = handle {
            m.cancel.cancel();
            let _ = m.task.await;
        }
    }

    /// Whether the monitor runs.
    pub fn is_monitoring(&self) -> bool {
        lock(&self.inner.monitor)
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

    pub(crate) fn inner(&self) -> &Arc<PoolInner> {
        &self.inner
    }

    pub(crate) fn all_connections(&self) -> Vec<(String, Arc<Connection>)> {
        self.inner.all()
    }
}
