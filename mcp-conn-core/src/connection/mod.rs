//! [`Connection`]: the Python original's `MCPConnection`, in Rust.
//!
//! One supervisor task per connection owns the link. It is the only writer of
//! the state machine: it connects, watches the link, reconnects with backoff
//! the moment the link dies, runs the health monitor and closes old links.
//! The `Connection` handle talks to it over a command channel; dropping the
//! handle closes the channel, and the supervisor shuts everything down.

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::{ConnectionConfig, DuringBackoff};
use crate::engine::Client;
use crate::error::Error;
use crate::metrics::Counters;
use crate::notification::{Notifier, ServerNotification};
use crate::status::{ConnectionInfo, ConnectionStatus, HealthReport, ProbeResult};
use crate::transport::Transport;

mod probe;
mod replay;
mod state;
mod supervisor;

pub use probe::{PendingProbe, ProbeStart};
use state::{ProbeSettings, Shared, State};
use supervisor::{Asker, Command, Supervisor};

/// A managed connection to one MCP server: connects, watches health,
/// reconnects with backoff, and reports what happened.
///
/// Basic connection management (the Python original's first example):
///
/// ```
/// # use mcp_conn_core::testing::{MockTransport, FakeServer};
/// use mcp_conn_core::Connection;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), mcp_conn_core::Error> {
/// # let transport = MockTransport::serving(FakeServer::default());
/// // `transport` is any `Transport`: a `StdioTransport` running
/// // `npx -y @modelcontextprotocol/server-filesystem`, an `HttpTransport`, …
/// let connection = Connection::new("filesystem", transport);
///
/// connection.connect().await?;
/// let client = connection.client()?;
/// let tools = client.list_tools().await?;
/// assert!(!tools.is_empty());
/// connection.disconnect().await;
/// # Ok(())
/// # }
/// ```
///
/// With health monitoring (the second example):
///
/// ```
/// # use std::time::Duration;
/// # use mcp_conn_core::testing::{MockTransport, FakeServer};
/// use mcp_conn_core::{Connection, ConnectionConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), mcp_conn_core::Error> {
/// # let transport = MockTransport::serving(FakeServer::default());
/// let connection = Connection::with_config(
///     "filesystem",
///     transport,
///     ConnectionConfig {
///         health_check_interval: Duration::from_secs(30),
///         auto_reconnect: true,
///         ..Default::default()
///     },
/// );
/// connection.connect().await?;
/// connection.start_monitoring().await;
/// // The connection is now probed every 30 s and reconnects by itself.
/// # connection.disconnect().await;
/// # Ok(())
/// # }
/// ```
///
/// Connection status checking (the third example):
///
/// ```
/// # use mcp_conn_core::testing::{MockTransport, FakeServer};
/// # use mcp_conn_core::Connection;
/// # use serde_json::json;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), mcp_conn_core::Error> {
/// # let connection = Connection::new("fs", MockTransport::serving(FakeServer::default()));
/// # connection.connect().await?;
/// if connection.is_healthy(0.7) {
///     let client = connection.client()?;
///     let result = client.call_tool("echo", json!({"text": "/tmp/test"})).await?;
///     println!("{}", result.text());
/// }
/// # Ok(())
/// # }
/// ```
pub struct Connection {
    shared: Arc<Shared>,
    /// Boxed commands: a channel allocates 32 slots up front, and an idle
    /// connection should not keep 32 x 40 B for commands that are rare.
    commands: Mutex<Option<mpsc::Sender<Box<Command>>>>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.shared.name)
            .field("transport", &self.shared.transport)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection with the default [`ConnectionConfig`]. Nothing happens
    /// until [`Connection::connect`]; this needs no runtime.
    pub fn new(name: impl Into<String>, transport: impl Transport) -> Self {
        Self::with_config(name, transport, ConnectionConfig::default())
    }

    /// A connection with the given settings.
    pub fn with_config(
        name: impl Into<String>,
        transport: impl Transport,
        config: ConnectionConfig,
    ) -> Self {
        let name: Arc<str> = Arc::from(name.into());
        let (status, _) = watch::channel(ConnectionStatus::Disconnected);
        let notifications = Arc::new(Notifier::new(
            name.clone(),
            config.notification_listener.clone(),
        ));
        let limit = config.max_in_flight.map(|n| {
            Arc::new(tokio::sync::Semaphore::new(
                n.clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
            ))
        });
        let counters = Arc::new(Counters::new(&name, limit));
        Connection {
            shared: Arc::new(Shared {
                connected: AtomicBool::new(false),
                probing: ProbeSettings::new(&config),
                name,
                transport: Arc::new(transport),
                config,
                status,
                state: Mutex::new(State::default()),
                counters,
                notifications,
                tool_hints: Arc::default(),
            }),
            commands: Mutex::new(None),
        }
    }

    /// The connection's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The connection's settings.
    pub fn config(&self) -> &ConnectionConfig {
        &self.shared.config
    }

    /// The transport kind (`stdio`, `http`, …).
    pub fn transport_type(&self) -> &'static str {
        self.shared.transport.kind()
    }

    /// What the transport's last link negotiated on the wire (proxy, TLS
    /// version, HTTP version), if the transport reports it
    /// ([`crate::Transport::wire_info`]).
    pub fn wire_info(&self) -> Option<crate::WireInfo> {
        self.shared.transport.wire_info()
    }

    /// Connects (opens the link and runs the `initialize` handshake) within
    /// `connection_timeout`, and returns the live client. This is the
    /// user's explicit connect:
    /// - connected: returns the current client;
    /// - a connect or reconnect attempt under way: waits for it;
    /// - waiting out a reconnect backoff: waits for the scheduled attempt
    ///   (it never starts one early) and returns its outcome;
    /// - `Disconnected` or `Error` (attempts used up): starts afresh, with a
    ///   fresh reconnect-attempt budget, at once.
    ///
    /// Code that merely needs a client on a call path should use
    /// [`Connection::ensure_connected`], which never defeats the backoff.
    ///
    /// Fails with [`Error::InvalidConfig`] when the settings are invalid
    /// ([`ConnectionConfig::validate`]).
    pub async fn connect(&self) -> Result<Client, Error> {
        self.connect_with(None, Asker::User).await
    }

    /// [`Connection::connect`] with a timeout other than `connection_timeout`.
    pub async fn connect_timeout(&self, timeout: Duration) -> Result<Client, Error> {
        self.connect_with(Some(timeout), Asker::User).await
    }

    /// The live client for a call path: returns at once when connected (no
    /// round trip to the supervisor), and otherwise connects without ever
    /// defeating the reconnect backoff, whatever the traffic:
    /// - `Disconnected` (never connected, or after `disconnect()`): connects.
    /// - A connect or reconnect attempt under way: waits for it.
    /// - Waiting out a reconnect backoff: with
    ///   [`DuringBackoff::FailFast`] (the default) fails at once with
    ///   [`Error::Backoff`], which says how long until the next attempt and
    ///   why the last one failed; with [`DuringBackoff::Wait`] waits for the
    ///   scheduled attempt if it starts within `connection_timeout`.
    /// - `Error` (attempts used up, or a failure that cannot heal): starts
    ///   one attempt at most every `max_reconnect_delay` (so a server that
    ///   comes back is found again); in between, as during a backoff. It
    ///   never resets the attempt budget: only [`Connection::connect`] does.
    ///
    /// The pool's call paths (`ConnectionPool::client`, `call_tool`) use this.
    pub async fn ensure_connected(&self) -> Result<Client, Error> {
        if let Some(client) = self.shared.live_client() {
            return Ok(client);
        }
        let deadline = match self.shared.config.during_backoff {
            DuringBackoff::FailFast => None,
            DuringBackoff::Wait => Some(Instant::now() + self.shared.config.connection_timeout),
        };
        let asked = self.connect_with(None, Asker::Implicit { deadline });
        match deadline {
            None => asked.await,
            // The scheduled attempt runs with its own `connection_timeout`;
            // this caller waits no longer than its own.
            Some(deadline) => tokio::time::timeout_at(deadline, asked)
                .await
                .unwrap_or_else(|_| {
                    Err(Error::Timeout {
                        connection: self.shared.name.clone(),
                        operation: "connect".into(),
                        after: self.shared.config.connection_timeout,
                    })
                }),
        }
    }

    async fn connect_with(&self, timeout: Option<Duration>, asker: Asker) -> Result<Client, Error> {
        if let Err(source) = self.shared.config.validate() {
            return Err(Error::InvalidConfig {
                connection: self.shared.name.clone(),
                source,
            });
        }
        self.ask(|reply| Command::Connect {
            timeout,
            asker,
            reply,
        })
        .await
        .unwrap_or_else(|| Err(self.shared.closed()))
    }

    /// Closes the link gracefully and waits until it is closed; stops
    /// monitoring and reconnection. Pending requests fail with
    /// [`Error::Closed`]. The status becomes `Disconnected`.
    pub async fn disconnect(&self) {
        let running = self.commands.lock().clone();
        match running {
            Some(tx) => {
                let (reply, done) = oneshot::channel();
                if tx
                    .send(Box::new(Command::Disconnect { reply }))
                    .await
                    .is_ok()
                {
                    let _ = done.await;
                }
            }
            None => {
                self.shared.state.lock().monitoring = false;
                self.shared.set_status(ConnectionStatus::Disconnected);
            }
        }
    }

    /// Closes the current link (if any) and connects again at once, whatever
    /// `auto_reconnect` says. Returns the outcome of that attempt; if it fails
    /// and `auto_reconnect` is on, the connection goes on trying with backoff.
    pub async fn reconnect(&self) -> Result<Client, Error> {
        if let Err(source) = self.shared.config.validate() {
            return Err(Error::InvalidConfig {
                connection: self.shared.name.clone(),
                source,
            });
        }
        self.ask(|reply| Command::Reconnect { reply })
            .await
            .unwrap_or_else(|| Err(self.shared.closed()))
    }

    /// The live client (the Python original's `get_client`), or [`Error::NotConnected`].
    pub fn client(&self) -> Result<Client, Error> {
        self.shared
            .live_client()
            .ok_or_else(|| Error::NotConnected {
                connection: self.shared.name.clone(),
            })
    }

    /// Whether the connection is connected with a live link.
    pub fn is_connected(&self) -> bool {
        self.shared.live_client().is_some()
    }

    /// Whether the health score is at least `threshold` (the Python original used 0.7).
    pub fn is_healthy(&self, threshold: f64) -> bool {
        self.health_score() >= threshold
    }

    /// The health score, 0.0 to 1.0: the Python original's weighted average
    /// ([`crate::health_score`]: the newest outcome weighs most, each older
    /// one half as much) of the last 10 outcomes of this connection, where
    /// an outcome is
    /// - a health probe, success or failure;
    /// - a connect or reconnect attempt, success or failure;
    /// - a request that failed in the transport: the link was lost under it
    ///   (one failure per lost link), or it timed out.
    ///
    /// A tool error, or any other error the server answers with, is not an
    /// outcome: the server is alive and answering.
    ///
    /// Two states override the average: before the first successful
    /// connect the score is 0.0 (nothing has shown that the server works),
    /// and so it is in [`ConnectionStatus::Error`] (attempts used up, or a
    /// failure that cannot heal). Connected with nothing recorded since the
    /// connect it is 1.0.
    pub fn health_score(&self) -> f64 {
        let mut s = self.shared.state.lock();
        self.shared.score(&mut s)
    }

    /// Probes the server now (`ping`, or the configured [`HealthProbe`](crate::HealthProbe)) with
    /// `health_check_timeout`, records the outcome in the health score and
    /// returns a report. After `max_consecutive_health_failures` failures in
    /// a row, the connection reconnects (when `auto_reconnect` is on).
    pub async fn health_check(&self) -> HealthReport {
        let (probe, unhealthy) = self.shared.probe().await;
        let report = self.shared.report_of(probe);
        self.after_check(unhealthy).await;
        report
    }

    /// A scheduled health check, as the connection's own monitor and the
    /// pool's run it: like [`Connection::health_check`], but skipped (and
    /// counted as a success, `HealthReport::skipped`) while real requests
    /// succeed, since that traffic is proof of life; failed requests count
    /// against the score all the same. The probes resume when the server
    /// goes quiet, so a dead server is still found within one interval (a
    /// lost link is noticed at once anyway).
    pub async fn scheduled_health_check(&self) -> HealthReport {
        let (probe, unhealthy) = self.shared.scheduled_probe().await;
        let report = self.shared.report_of(probe);
        self.after_check(unhealthy).await;
        report
    }

    /// [`Connection::scheduled_health_check`] without the snapshot of the
    /// connection: the probe's outcome alone, which is cheaper. What the
    /// pool's monitor runs for each of its servers.
    pub async fn scheduled_probe(&self) -> ProbeResult {
        let (probe, unhealthy) = self.shared.scheduled_probe().await;
        self.after_check(unhealthy).await;
        probe
    }

    /// After `max_consecutive_health_failures`, tells the supervisor to
    /// replace the session.
    async fn after_check(&self, unhealthy: Option<(Client, u32)>) {
        if let Some((client, failures)) = unhealthy {
            let running = self.commands.lock().clone();
            if let Some(tx) = running {
                let _ = tx
                    .send(Box::new(Command::Unhealthy { client, failures }))
                    .await;
            }
        }
    }

    /// [`Connection::after_check`] without waiting: a full command queue
    /// leaves it to the next failed probe.
    fn replace_unhealthy(&self, client: Client, failures: u32) {
        let running = self.commands.lock().clone();
        if let Some(tx) = running {
            let _ = tx.try_send(Box::new(Command::Unhealthy { client, failures }));
        }
    }

    /// Starts health checks every `health_check_interval`, run by the
    /// connection's supervisor (no extra task). Idempotent.
    pub async fn start_monitoring(&self) {
        self.shared.state.lock().monitoring = true;
        let running = self.commands.lock().clone();
        if let Some(tx) = running {
            let _ = tx.send(Box::new(Command::Monitoring(true))).await;
        }
    }

    /// Stops the health checks. Idempotent.
    pub async fn stop_monitoring(&self) {
        self.shared.state.lock().monitoring = false;
        let running = self.commands.lock().clone();
        if let Some(tx) = running {
            let _ = tx.send(Box::new(Command::Monitoring(false))).await;
        }
    }

    /// Whether health monitoring is on.
    pub fn is_monitoring(&self) -> bool {
        self.shared.state.lock().monitoring
    }

    /// A snapshot of the connection (the Python original's `get_info`).
    pub fn info(&self) -> ConnectionInfo {
        self.shared.info()
    }

    /// The current status.
    pub fn status(&self) -> ConnectionStatus {
        *self.shared.status.borrow()
    }

    /// Watches the status; every change is seen by `changed()`.
    pub fn subscribe(&self) -> watch::Receiver<ConnectionStatus> {
        self.shared.status.subscribe()
    }

    /// Waits until the status satisfies `pred`, and returns it.
    pub async fn wait_for_status(
        &self,
        mut pred: impl FnMut(ConnectionStatus) -> bool,
    ) -> ConnectionStatus {
        let mut rx = self.subscribe();
        let status = match rx.wait_for(|s| pred(*s)).await {
            Ok(s) => *s,
            Err(_) => self.status(),
        };
        status
    }

    /// The server's notifications, across reconnects. Subscribing also
    /// starts listening for list changes (see
    /// [`Connection::listen_for_changes`]).
    pub fn notifications(&self) -> broadcast::Receiver<ServerNotification> {
        let rx = self.shared.notifications.subscribe();
        self.want_listen(None);
        rx
    }

    /// Stateless era: opens a `subscriptions/listen` stream for tool, prompt
    /// and resource list changes (and the resources given to
    /// [`Connection::listen_to_resource`]), now if connected and after every
    /// reconnect. What it brings arrives on [`Connection::notifications`] and
    /// counts in `metrics.tools_list_changed`, as in the handshake era (where
    /// this is a no-op: those notifications need no request).
    pub async fn listen_for_changes(&self) {
        self.want_listen(None);
    }

    /// Stateless era: adds `uri` to the resources whose
    /// `notifications/resources/updated` the listen stream asks for, and
    /// reopens the stream. (In the handshake era use
    /// [`Client::subscribe_resource`].)
    pub async fn listen_to_resource(&self, uri: &str) {
        self.want_listen(Some(uri));
    }

    fn want_listen(&self, uri: Option<&str>) {
        let changed = {
            let mut s = self.shared.state.lock();
            let had = s.listen.clone();
            let filter = s.listen.get_or_insert_with(Default::default);
            if let Some(uri) = uri {
                filter.resources.insert(uri.to_owned());
            }
            had.as_ref() != Some(filter)
        };
        if changed {
            let running = self.commands.lock().clone();
            if let Some(tx) = running {
                // A full command queue: the next (re)connect opens it.
                let _ = tx.try_send(Box::new(Command::Listen));
            }
        }
    }

    /// Sends a command to the supervisor (starting it on first use) and waits
    /// for its answer. `None` if the supervisor is gone.
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let tx = {
            let mut slot = self.commands.lock();
            match slot.as_ref() {
                Some(tx) if !tx.is_closed() => tx.clone(),
                _ => {
                    let (tx, rx) = mpsc::channel(32);
                    // Everything the supervisor starts (engine tasks, a
                    // transport's helpers) logs inside this span.
                    let span = tracing::info_span!("mcp_connection", name = %self.shared.name);
                    tokio::spawn(
                        Supervisor::new(self.shared.clone(), rx)
                            .run()
                            .instrument(span),
                    );
                    *slot = Some(tx.clone());
                    tx
                }
            }
        };
        let (reply, answer) = oneshot::channel();
        tx.send(Box::new(make(reply))).await.ok()?;
        answer.await.ok()
    }
}
