//! [`Connection`]: the seed's `MCPConnection`, in Rust.
//!
//! One supervisor task per connection owns the link. It is the only writer of
//! the state machine: it connects, watches the link, reconnects with backoff
//! the moment the link dies, runs the health monitor and closes old links.
//! The `Connection` handle talks to it over a command channel; dropping the
//! handle closes the channel, and the supervisor shuts everything down.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::config::{ConnectionConfig, DuringBackoff, HealthProbe};
use crate::engine::{initialize, lock, Client, EngineConfig, ReaderExit, RequestOptions, Session};
use crate::error::{Error, ErrorSummary};
use crate::health::HealthHistory;
use crate::metrics::Counters;
use crate::notification::ServerNotification;
use crate::status::{ConnectionInfo, ConnectionStatus, HealthReport};
use crate::transport::{Transport, TransportError};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// How many server notifications a slow subscriber may fall behind before it
/// starts losing the oldest ones.
const NOTIFICATION_BUFFER: usize = 256;

/// A managed connection to one MCP server: connects, watches health,
/// reconnects with backoff, and reports what happened.
///
/// Basic connection management (the seed's first example):
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
    commands: Mutex<Option<mpsc::Sender<Command>>>,
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

/// Who asked for a connect, which decides how it treats the backoff.
#[derive(Debug, Clone, Copy)]
enum Asker {
    /// The user called `connect()`: from `Error` or `Disconnected` this
    /// starts a fresh attempt budget at once; during a backoff it waits for
    /// the scheduled attempt.
    User,
    /// A call path that needs a client (`ensure_connected`, the pool): never
    /// resets the budget, never starts an attempt the schedule does not
    /// allow. `deadline` is set when the caller is willing to wait for the
    /// next allowed attempt ([`DuringBackoff::Wait`]).
    Implicit { deadline: Option<Instant> },
}

enum Command {
    Connect {
        timeout: Option<Duration>,
        asker: Asker,
        reply: oneshot::Sender<Result<Client, Error>>,
    },
    Reconnect {
        reply: oneshot::Sender<Result<Client, Error>>,
    },
    Disconnect {
        reply: oneshot::Sender<()>,
    },
    Unhealthy {
        client: Client,
        failures: u32,
    },
    Monitoring(bool),
}

#[derive(Default)]
struct State {
    client: Option<Client>,
    last_connected: Option<SystemTime>,
    connected_since: Option<Instant>,
    closed_uptime: Duration,
    last_error: Option<ErrorSummary>,
    reconnect_attempts: u32,
    connection_count: u64,
    error_count: u64,
    health: HealthHistory,
    last_probe_latency: Option<Duration>,
    probe_latency_ewma: Option<Duration>,
    monitoring: bool,
}

struct Shared {
    name: Arc<str>,
    transport: Arc<dyn Transport>,
    config: ConnectionConfig,
    status: watch::Sender<ConnectionStatus>,
    state: Mutex<State>,
    counters: Arc<Counters>,
    notifications: broadcast::Sender<ServerNotification>,
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
        let (notifications, _) = broadcast::channel(NOTIFICATION_BUFFER);
        Connection {
            shared: Arc::new(Shared {
                name,
                transport: Arc::new(transport),
                config,
                status,
                state: Mutex::new(State::default()),
                counters: Arc::new(Counters::default()),
                notifications,
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
        let running = lock(&self.commands).clone();
        match running {
            Some(tx) => {
                let (reply, done) = oneshot::channel();
                if tx.send(Command::Disconnect { reply }).await.is_ok() {
                    let _ = done.await;
                }
            }
            None => {
                lock(&self.shared.state).monitoring = false;
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

    /// The live client (the seed's `get_client`), or [`Error::NotConnected`].
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

    /// Whether the health score is at least `threshold` (the seed used 0.7).
    pub fn is_healthy(&self, threshold: f64) -> bool {
        self.health_score() >= threshold
    }

    /// The health score: the seed's weighted average of the last 10 health
    /// checks, 1.0 before any check.
    pub fn health_score(&self) -> f64 {
        lock(&self.shared.state).health.score()
    }

    /// Probes the server now (`ping`, or the configured [`HealthProbe`]) with
    /// `health_check_timeout`, records the outcome in the health score and
    /// returns a report. After `max_consecutive_health_failures` failures in
    /// a row, the connection reconnects (when `auto_reconnect` is on).
    pub async fn health_check(&self) -> HealthReport {
        let (report, unhealthy) = self.shared.health_check().await;
        if let Some((client, failures)) = unhealthy {
            let running = lock(&self.commands).clone();
            if let Some(tx) = running {
                let _ = tx.send(Command::Unhealthy { client, failures }).await;
            }
        }
        report
    }

    /// Starts health checks every `health_check_interval`, run by the
    /// connection's supervisor (no extra task). Idempotent.
    pub async fn start_monitoring(&self) {
        lock(&self.shared.state).monitoring = true;
        let running = lock(&self.commands).clone();
        if let Some(tx) = running {
            let _ = tx.send(Command::Monitoring(true)).await;
        }
    }

    /// Stops the health checks. Idempotent.
    pub async fn stop_monitoring(&self) {
        lock(&self.shared.state).monitoring = false;
        let running = lock(&self.commands).clone();
        if let Some(tx) = running {
            let _ = tx.send(Command::Monitoring(false)).await;
        }
    }

    /// Whether health monitoring is on.
    pub fn is_monitoring(&self) -> bool {
        lock(&self.shared.state).monitoring
    }

    /// A snapshot of the connection (the seed's `get_info`).
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

    /// The server's notifications, across reconnects.
    pub fn notifications(&self) -> broadcast::Receiver<ServerNotification> {
        self.shared.notifications.subscribe()
    }

    /// Sends a command to the supervisor (starting it on first use) and waits
    /// for its answer. `None` if the supervisor is gone.
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let tx = {
            let mut slot = lock(&self.commands);
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
        tx.send(make(reply)).await.ok()?;
        answer.await.ok()
    }
}

impl Shared {
    fn closed(&self) -> Error {
        Error::Closed {
            connection: self.name.clone(),
        }
    }

    fn set_status(&self, to: ConnectionStatus) {
        self.status.send_if_modified(|current| {
            if *current == to {
                return false;
            }
            if !current.can_become(to) {
                tracing::warn!(connection = %self.name, from = %current, %to, "unexpected status change");
            }
            tracing::debug!(connection = %self.name, from = %current, %to, "status");
            if let Some(listener) = &self.config.status_listener {
                listener(&self.name, *current, to);
            }
            *current = to;
            true
        });
    }

    fn status(&self) -> ConnectionStatus {
        *self.status.borrow()
    }

    fn live_client(&self) -> Option<Client> {
        if *self.status.borrow() != ConnectionStatus::Connected {
            return None;
        }
        lock(&self.state).client.clone().filter(Client::is_open)
    }

    fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            name: self.name.clone(),
            request_timeout: self.config.request_timeout,
            handlers: self.config.handlers.clone(),
            notifications: self.notifications.clone(),
            counters: self.counters.clone(),
            queue_capacity: self.config.queue_capacity,
            max_server_requests: self.config.max_concurrent_server_requests,
            close_grace: self.config.close_grace,
            on_link_lost: Some(self.link_lost_hook()),
        }
    }

    /// Moves the status off `Connected` the moment a live link is found
    /// lost, before callers hear of it; the supervisor then takes over.
    fn link_lost_hook(&self) -> crate::engine::LinkLostHook {
        let recovers = self.config.auto_reconnect && self.config.max_reconnect_attempts > 0;
        let status = self.status.clone();
        let listener = self.config.status_listener.clone();
        let name = self.name.clone();
        Arc::new(move |error: &Error| {
            let to = if recovers && error.is_retryable() {
                ConnectionStatus::Reconnecting
            } else {
                ConnectionStatus::Error
            };
            status.send_if_modified(|s| {
                let change = *s == ConnectionStatus::Connected;
                if change {
                    if let Some(listener) = &listener {
                        listener(&name, *s, to);
                    }
                    *s = to;
                }
                change
            });
        })
    }

    /// Opens a link and runs the handshake, all within `timeout`.
    async fn open_session(self: Arc<Self>, timeout: Duration) -> Result<Session, Error> {
        let attempt = async {
            let link = self
                .transport
                .connect()
                .await
                .map_err(|source| Error::Connect {
                    connection: self.name.clone(),
                    source,
                })?;
            let session = Session::start(link, &self.engine_config());
            // On failure the session is dropped, which closes the link. The
            // outer deadline below governs, so the request's own timeout is
            // set past it.
            initialize(
                &session,
                &self.config.client_info,
                self.config.handlers.capabilities(),
                timeout.saturating_mul(2),
            )
            .await
            .map_err(|e| match e {
                // A link lost during the handshake is a failed connect, on
                // every transport.
                Error::ConnectionLost { connection, reason } => Error::Connect {
                    connection,
                    source: reason,
                },
                other => other,
            })?;
            Ok(session)
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::Timeout {
                connection: self.name.clone(),
                operation: "connect".into(),
                after: timeout,
            }),
        }
    }

    fn on_connected(&self, client: Client) {
        {
            let mut s = lock(&self.state);
            s.client = Some(client);
            s.connected_since = Some(Instant::now());
            s.last_connected = Some(SystemTime::now());
            s.last_error = None;
            s.reconnect_attempts = 0;
            s.connection_count += 1;
            s.health.reset_streak();
        }
        self.set_status(ConnectionStatus::Connected);
    }

    fn on_session_end(&self) {
        let mut s = lock(&self.state);
        s.client = None;
        if let Some(since) = s.connected_since.take() {
            s.closed_uptime += since.elapsed();
        }
    }

    fn record_error(&self, error: &Error) {
        let mut s = lock(&self.state);
        s.error_count += 1;
        s.last_error = Some(ErrorSummary::from(error));
    }

    /// Runs one probe. Returns the report and, when the failure streak has
    /// reached the limit, the client whose session should be replaced.
    async fn health_check(&self) -> (HealthReport, Option<(Client, u32)>) {
        let Some(client) = self.live_client() else {
            return (self.report(false, Some("Not connected".into()), None), None);
        };
        let opts = RequestOptions::new().timeout(self.config.health_check_timeout);
        let started = Instant::now();
        let outcome = match self.config.health_probe {
            HealthProbe::Ping => client.ping_with(&opts).await,
            HealthProbe::ListTools => client
                .request::<serde_json::Value>("tools/list", None, &opts)
                .await
                .map(drop),
        };
        let latency = started.elapsed();
        let failures = {
            let mut s = lock(&self.state);
            s.health.record(outcome.is_ok());
            match &outcome {
                Ok(()) => {
                    s.last_probe_latency = Some(latency);
                    s.probe_latency_ewma = Some(match s.probe_latency_ewma {
                        Some(avg) => avg.mul_f64(0.7) + latency.mul_f64(0.3),
                        None => latency,
                    });
                }
                Err(e) => {
                    s.error_count += 1;
                    s.last_error = Some(ErrorSummary::from(e));
                    Counters::bump(&self.counters.health_checks_failed);
                }
            }
            s.health.consecutive_failures()
        };
        let limit = self.config.max_consecutive_health_failures;
        let unhealthy =
            (outcome.is_err() && limit > 0 && failures >= limit).then_some((client, failures));
        let report = match outcome {
            Ok(()) => self.report(true, None, Some(latency)),
            Err(e) => self.report(false, Some(e.to_string()), None),
        };
        (report, unhealthy)
    }

    fn uptime(s: &State) -> Duration {
        s.closed_uptime + s.connected_since.map_or(Duration::ZERO, |t| t.elapsed())
    }

    fn report(&self, ok: bool, error: Option<String>, latency: Option<Duration>) -> HealthReport {
        let status = *self.status.borrow();
        let connected = self.live_client().is_some();
        let s = lock(&self.state);
        HealthReport {
            name: self.name.to_string(),
            status,
            connected,
            health_score: s.health.score(),
            last_connected: s.last_connected,
            last_error: s.last_error.clone(),
            reconnect_attempts: s.reconnect_attempts,
            connection_count: s.connection_count,
            error_count: s.error_count,
            uptime: Self::uptime(&s),
            transport_type: self.transport.kind(),
            ok,
            error,
            latency,
            consecutive_failures: s.health.consecutive_failures(),
        }
    }

    fn info(&self) -> ConnectionInfo {
        let status = *self.status.borrow();
        let s = lock(&self.state);
        let server = s.client.as_ref().and_then(|c| c.server().cloned());
        ConnectionInfo {
            name: self.name.to_string(),
            transport_type: self.transport.kind(),
            status,
            last_connected: s.last_connected,
            last_error: s.last_error.clone(),
            reconnect_attempts: s.reconnect_attempts,
            health_score: s.health.score(),
            connection_count: s.connection_count,
            error_count: s.error_count,
            total_uptime: Self::uptime(&s),
            last_probe_latency: s.last_probe_latency,
            probe_latency_ewma: s.probe_latency_ewma,
            metrics: self.counters.snapshot(),
            server_name: server.as_ref().map(|r| r.server_info.name.clone()),
            server_version: server.as_ref().map(|r| r.server_info.version.clone()),
            protocol_version: server.map(|r| r.protocol_version),
        }
    }
}

enum Phase {
    /// No link and not trying: `Disconnected` or `Error`.
    Idle,
    /// A live session.
    Connected(Session),
    /// Opening a link and running the handshake.
    Attempting {
        attempt: BoxFuture<Result<Session, Error>>,
        reconnect: bool,
    },
    /// Waiting before the next attempt: the reconnect backoff, or (in
    /// `Error`, for a caller willing to wait) the pause between implicit
    /// retries.
    Waiting {
        sleep: Pin<Box<Sleep>>,
        /// A reconnect attempt of the outage's budget, or one retry from
        /// `Error` (the status stays `Error` while waiting for it).
        retry: Retry,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Reconnect,
    FromError,
}

enum Event {
    Command(Option<Command>),
    LinkLost(ReaderExit),
    AttemptDone(Result<Session, Error>),
    BackoffElapsed(Retry),
    ProbeDue,
    ProbeDone(Option<(Client, u32)>),
    Reaped,
}

struct Supervisor {
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    phase: Phase,
    waiters: Vec<oneshot::Sender<Result<Client, Error>>>,
    backoff: Backoff,
    /// Old sessions being shut down gracefully.
    closing: JoinSet<()>,
    probe: Option<BoxFuture<Option<(Client, u32)>>>,
    next_probe: Option<Instant>,
    /// When the last attempt failed or the link was lost, and why: implicit
    /// connects from `Error` wait `max_reconnect_delay` after it.
    last_failure: Option<(Instant, Error)>,
}

impl Supervisor {
    fn new(shared: Arc<Shared>, commands: mpsc::Receiver<Command>) -> Self {
        let c = &shared.config;
        let backoff = Backoff::new(
            c.reconnect_delay,
            c.max_reconnect_delay,
            c.reconnect_jitter,
            c.jitter_seed,
        );
        Supervisor {
            shared,
            commands,
            phase: Phase::Idle,
            waiters: Vec::new(),
            backoff,
            closing: JoinSet::new(),
            probe: None,
            next_probe: None,
            last_failure: None,
        }
    }

    async fn run(mut self) {
        loop {
            let event = tokio::select! {
                cmd = self.commands.recv() => Event::Command(cmd),
                ev = phase_event(&mut self.phase) => ev,
                ev = probe_event(&mut self.probe, self.next_probe) => ev,
                Some(_) = self.closing.join_next(), if !self.closing.is_empty() => Event::Reaped,
            };
            match event {
                Event::Command(None) => break,
                Event::Command(Some(cmd)) => self.on_command(cmd).await,
                Event::LinkLost(exit) => {
                    let reason = match exit {
                        ReaderExit::Lost(reason) => reason,
                        ReaderExit::Stopped => TransportError::Closed,
                    };
                    self.on_link_lost(reason);
                }
                Event::AttemptDone(outcome) => self.on_attempt(outcome),
                Event::BackoffElapsed(Retry::Reconnect) => self.start_attempt(true, None),
                Event::BackoffElapsed(Retry::FromError) => self.start_attempt(false, None),
                Event::ProbeDue => {
                    let shared = self.shared.clone();
                    self.next_probe = None;
                    self.probe = Some(Box::pin(async move { shared.health_check().await.1 }));
                }
                Event::ProbeDone(unhealthy) => {
                    self.probe = None;
                    self.schedule_probe();
                    if let Some((client, failures)) = unhealthy {
                        self.on_unhealthy(&client, failures);
                    }
                }
                Event::Reaped => {}
            }
        }
        // Every `Connection` handle is gone: shut down.
        self.stop(self.shared.closed()).await;
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Connect {
                timeout,
                asker,
                reply,
            } => self.on_connect(timeout, asker, reply),
            Command::Reconnect { reply } => {
                self.waiters.push(reply);
                match std::mem::replace(&mut self.phase, Phase::Idle) {
                    Phase::Attempting { attempt, reconnect } => {
                        self.phase = Phase::Attempting { attempt, reconnect };
                    }
                    Phase::Connected(session) => {
                        let closed = self.shared.closed();
                        self.retire(session, closed);
                        lock(&self.shared.state).reconnect_attempts = 1;
                        self.start_attempt(true, None);
                    }
                    Phase::Idle | Phase::Waiting { .. } => {
                        lock(&self.shared.state).reconnect_attempts = 1;
                        self.start_attempt(true, None);
                    }
                }
            }
            Command::Disconnect { reply } => {
                lock(&self.shared.state).monitoring = false;
                self.stop(self.shared.closed()).await;
                let _ = reply.send(());
            }
            Command::Unhealthy { client, failures } => self.on_unhealthy(&client, failures),
            Command::Monitoring(on) => {
                if on {
                    if self.next_probe.is_none() && self.probe.is_none() {
                        self.schedule_probe();
                    }
                } else {
                    self.next_probe = None;
                    self.probe = None;
                }
            }
        }
    }

    /// A connect command, by who asked (see [`Asker`]).
    fn on_connect(
        &mut self,
        timeout: Option<Duration>,
        asker: Asker,
        reply: oneshot::Sender<Result<Client, Error>>,
    ) {
        let now = Instant::now();
        match (&self.phase, asker) {
            (Phase::Connected(session), _) => {
                let _ = reply.send(Ok(session.client.clone()));
            }
            (Phase::Attempting { .. }, _) => self.waiters.push(reply),
            // The user's connect from `Error` starts afresh, even while an
            // implicit caller waits for the pause to end.
            (
                Phase::Waiting {
                    retry: Retry::FromError,
                    ..
                },
                Asker::User,
            ) => {
                self.waiters.push(reply);
                self.fresh_start(timeout);
            }
            (Phase::Waiting { sleep, retry }, asker) => {
                let at = sleep.deadline();
                match asker {
                    Asker::User => self.waiters.push(reply),
                    Asker::Implicit {
                        deadline: Some(deadline),
                    } if at <= deadline => self.waiters.push(reply),
                    Asker::Implicit { .. } => {
                        let status = match retry {
                            Retry::Reconnect => ConnectionStatus::Reconnecting,
                            Retry::FromError => ConnectionStatus::Error,
                        };
                        let _ = reply.send(Err(self.backoff_error(status, at - now)));
                    }
                }
            }
            (Phase::Idle, Asker::User) => {
                self.waiters.push(reply);
                self.fresh_start(timeout);
            }
            (Phase::Idle, Asker::Implicit { deadline }) => {
                let gate = match (self.shared.status(), &self.last_failure) {
                    (ConnectionStatus::Error, Some((failed_at, _))) => {
                        Some(*failed_at + self.shared.config.max_reconnect_delay)
                    }
                    _ => None,
                };
                match gate {
                    // Never connected, disconnected, or the pause is over:
                    // one attempt, without touching the budget.
                    None => {
                        self.waiters.push(reply);
                        self.start_attempt(false, timeout);
                    }
                    Some(at) if at <= now => {
                        self.waiters.push(reply);
                        self.start_attempt(false, timeout);
                    }
                    Some(at) if deadline.is_some_and(|d| at <= d) => {
                        self.waiters.push(reply);
                        self.phase = Phase::Waiting {
                            sleep: Box::pin(tokio::time::sleep_until(at)),
                            retry: Retry::FromError,
                        };
                    }
                    Some(at) => {
                        let _ =
                            reply.send(Err(self.backoff_error(ConnectionStatus::Error, at - now)));
                    }
                }
            }
        }
    }

    /// The user's connect: a fresh attempt budget, an attempt now.
    fn fresh_start(&mut self, timeout: Option<Duration>) {
        lock(&self.shared.state).reconnect_attempts = 0;
        self.start_attempt(false, timeout);
    }

    fn backoff_error(&self, status: ConnectionStatus, retry_in: Duration) -> Error {
        Error::Backoff {
            connection: self.shared.name.clone(),
            status,
            retry_in,
            cause: self.last_failure.as_ref().map(|(_, e)| Box::new(e.clone())),
        }
    }

    /// Ends everything: the attempt, the backoff, the session (waiting until
    /// its link is closed), the monitor. Status `Disconnected`.
    async fn stop(&mut self, error: Error) {
        self.next_probe = None;
        self.probe = None;
        if let Phase::Connected(session) = std::mem::replace(&mut self.phase, Phase::Idle) {
            self.retire(session, error.clone());
        }
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(Err(error.clone()));
        }
        while self.closing.join_next().await.is_some() {}
        lock(&self.shared.state).reconnect_attempts = 0;
        self.shared.set_status(ConnectionStatus::Disconnected);
    }

    /// Moves a session out of service; its link is closed in the background
    /// (owned by `closing`), so a reconnect need not wait for it.
    /// Pending requests fail with `error` right now (a link already lost
    /// keeps its own reason).
    fn retire(&mut self, session: Session, error: Error) {
        self.shared.on_session_end();
        session.begin_shutdown(error.clone());
        self.closing.spawn(session.shutdown(error));
    }

    fn start_attempt(&mut self, reconnect: bool, timeout: Option<Duration>) {
        let timeout = timeout.unwrap_or(self.shared.config.connection_timeout);
        self.phase = Phase::Attempting {
            attempt: Box::pin(self.shared.clone().open_session(timeout)),
            reconnect,
        };
        self.shared.set_status(if reconnect {
            ConnectionStatus::Reconnecting
        } else {
            ConnectionStatus::Connecting
        });
    }

    fn on_attempt(&mut self, outcome: Result<Session, Error>) {
        let reconnect = matches!(
            self.phase,
            Phase::Attempting {
                reconnect: true,
                ..
            }
        );
        match outcome {
            Ok(session) => {
                let client = session.client.clone();
                if reconnect {
                    Counters::bump(&self.shared.counters.reconnects);
                }
                tracing::info!(connection = %self.shared.name, "connected");
                self.last_failure = None;
                self.shared.on_connected(client.clone());
                self.phase = Phase::Connected(session);
                for waiter in self.waiters.drain(..) {
                    let _ = waiter.send(Ok(client.clone()));
                }
                if lock(&self.shared.state).monitoring {
                    self.schedule_probe();
                }
            }
            Err(error) => {
                tracing::warn!(connection = %self.shared.name, %error, "connect attempt failed");
                self.shared.record_error(&error);
                for waiter in self.waiters.drain(..) {
                    let _ = waiter.send(Err(error.clone()));
                }
                let retry = reconnect && error.is_retryable();
                let hint = error.retry_after();
                self.last_failure = Some((Instant::now(), error));
                self.backoff_or_give_up(retry, hint);
            }
        }
    }

    fn on_link_lost(&mut self, reason: TransportError) {
        let Phase::Connected(session) = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return;
        };
        let error = Error::ConnectionLost {
            connection: self.shared.name.clone(),
            reason,
        };
        tracing::warn!(connection = %self.shared.name, %error, "link lost");
        self.shared.record_error(&error);
        let retry = error.is_retryable();
        let hint = error.retry_after();
        self.last_failure = Some((Instant::now(), error.clone()));
        self.retire(session, error);
        self.next_probe = None;
        self.probe = None;
        lock(&self.shared.state).reconnect_attempts = 0;
        self.backoff_or_give_up(retry, hint);
    }

    fn on_unhealthy(&mut self, client: &Client, failures: u32) {
        let current = matches!(&self.phase, Phase::Connected(s) if s.client.same_session(client));
        if !current {
            return;
        }
        let reason = TransportError::Timeout {
            what: format!("{failures} health checks in a row"),
            after: self.shared.config.health_check_timeout,
        };
        if self.shared.config.auto_reconnect {
            self.on_link_lost(reason);
        }
    }

    /// After a lost link or a failed reconnect attempt: wait for the next
    /// attempt, or settle in `Error` when retrying is off or used up. A
    /// server's `Retry-After` (`hint`) stretches the delay, capped at
    /// `max_reconnect_delay`.
    fn backoff_or_give_up(&mut self, retry: bool, hint: Option<Duration>) {
        let config = &self.shared.config;
        let next = {
            let mut s = lock(&self.shared.state);
            let can = retry
                && config.auto_reconnect
                && s.reconnect_attempts < config.max_reconnect_attempts;
            if can {
                s.reconnect_attempts += 1;
            }
            can.then_some(s.reconnect_attempts)
        };
        match next {
            Some(attempt) => {
                let mut delay = self.backoff.delay(attempt);
                if let Some(hint) = hint {
                    delay = delay.max(hint.min(config.max_reconnect_delay));
                }
                tracing::info!(
                    connection = %self.shared.name,
                    attempt,
                    of = config.max_reconnect_attempts,
                    ?delay,
                    "reconnecting"
                );
                self.phase = Phase::Waiting {
                    sleep: Box::pin(tokio::time::sleep(delay)),
                    retry: Retry::Reconnect,
                };
                self.shared.set_status(ConnectionStatus::Reconnecting);
            }
            None => {
                self.phase = Phase::Idle;
                self.shared.set_status(ConnectionStatus::Error);
            }
        }
    }

    fn schedule_probe(&mut self) {
        let monitoring = lock(&self.shared.state).monitoring;
        self.next_probe = (monitoring && matches!(self.phase, Phase::Connected(_)))
            .then(|| Instant::now() + self.shared.config.health_check_interval);
    }
}

async fn phase_event(phase: &mut Phase) -> Event {
    match phase {
        Phase::Idle => std::future::pending().await,
        Phase::Connected(session) => Event::LinkLost(session.closed().await),
        Phase::Attempting { attempt, .. } => Event::AttemptDone(attempt.as_mut().await),
        Phase::Waiting { sleep, retry } => {
            sleep.as_mut().await;
            Event::BackoffElapsed(*retry)
        }
    }
}

async fn probe_event(
    probe: &mut Option<BoxFuture<Option<(Client, u32)>>>,
    next: Option<Instant>,
) -> Event {
    match (probe, next) {
        (Some(probe), _) => Event::ProbeDone(probe.as_mut().await),
        (None, Some(at)) => {
            tokio::time::sleep_until(at).await;
            Event::ProbeDue
        }
        (None, None) => std::future::pending().await,
    }
}
