//! The state a connection's handle and supervisor share: status, counters,
//! health bookkeeping, and the reports made from them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::{ConnectionConfig, HealthProbe};
use crate::engine::{
    open_era, Client, EngineConfig, EraPlan, ListenFilter, RequestOptions, Session,
};
use crate::era::Detected;
use crate::error::{Error, ErrorSummary};
use crate::health::{HealthHistory, HEALTH_WINDOW};
use crate::metrics::Counters;
use crate::notification::Notifier;
use crate::status::{ConnectionInfo, ConnectionStatus, HealthReport, ProbeResult};

pub(super) use super::probe::{PendingProbe, ProbeStart};
use crate::engine::{ProbeAnswer, ProbeFailure};
use crate::transport::Transport;

/// `repr(C)`: the fields in the order written, what a health probe reads
/// and writes first (see [`Shared`]).
#[derive(Default)]
#[repr(C)]
pub(super) struct State {
    pub(super) client: Option<Client>,
    pub(super) health: HealthHistory,
    /// When the last probe ended (passive health compares traffic with it).
    pub(super) last_probe_at: Option<Instant>,
    pub(super) connected_since: Option<Instant>,
    pub(super) last_probe_latency: Option<Duration>,
    pub(super) probe_latency_ewma: Option<Duration>,
    /// Request timeouts already fed to the health score.
    pub(super) timeouts_seen: u64,
    pub(super) error_count: u64,
    pub(super) last_connected: Option<SystemTime>,
    pub(super) closed_uptime: Duration,
    pub(super) last_error: Option<ErrorSummary>,
    pub(super) reconnect_attempts: u32,
    pub(super) connection_count: u64,
    pub(super) monitoring: bool,
    /// The era the server was found to speak, kept across reconnects so
    /// that the probe is not repeated; re-probed when it stops working.
    pub(super) era: Option<Detected>,
    /// What to listen for (stateless era), once someone asked.
    pub(super) listen: Option<ListenFilter>,
}

/// The probe latency's moving average: 70 % the old, 30 % the new. In
/// nanoseconds (`Duration::mul_f64` goes through checked float conversions
/// that cost more than the rest of recording a probe).
fn ewma(avg: Duration, latency: Duration) -> Duration {
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX) as f64;
    // `as` saturates: an average of 584 years stays one.
    Duration::from_nanos((0.7 * nanos(avg) + 0.3 * nanos(latency)).round() as u64)
}

/// The settings a health probe reads, copied out of the config (400 bytes,
/// these fields on lines of their own) to sit beside the state it touches.
#[derive(Clone, Copy)]
pub(super) struct ProbeSettings {
    pub(super) kind: HealthProbe,
    pub(super) interval: Duration,
    pub(super) timeout: Duration,
    pub(super) max_failures: u32,
}

impl ProbeSettings {
    pub(super) fn new(config: &ConnectionConfig) -> Self {
        ProbeSettings {
            kind: config.health_probe,
            interval: config.health_check_interval,
            timeout: config.health_check_timeout,
            max_failures: config.max_consecutive_health_failures,
        }
    }
}

/// `repr(C)`: the fields in the order written. What a health probe touches
/// comes first and together (about three cache lines of this allocation
/// rather than seven, as the allocation's start falls): a pool probing
/// 10,000 servers a second finds every connection's state cold, and each
/// line fetched costs about as much as the probe's instructions.
#[repr(C)]
pub(super) struct Shared {
    /// Whether the status is `Connected`: set with it (under the status
    /// channel's lock), read without a lock.
    pub(super) connected: AtomicBool,
    pub(super) probing: ProbeSettings,
    pub(super) counters: Arc<Counters>,
    pub(super) state: Mutex<State>,
    pub(super) status: watch::Sender<ConnectionStatus>,
    pub(super) name: Arc<str>,
    pub(super) transport: Arc<dyn Transport>,
    pub(super) config: ConnectionConfig,
    pub(super) notifications: Arc<Notifier>,
    /// What the last tool listing said about repeating each tool.
    pub(super) tool_hints: Arc<crate::engine::ToolHints>,
}

impl Shared {
    pub(super) fn closed(&self) -> Error {
        Error::Closed {
            connection: self.name.clone(),
        }
    }

    /// The one place the status changes: checks the state machine, logs,
    /// tells the listener (in order), and wakes watchers.
    pub(super) fn set_status(&self, to: ConnectionStatus) {
        self.set_status_from(None, to);
    }

    /// [`Shared::set_status`], only if the status is `from` now (when
    /// given). Returns whether it changed.
    pub(super) fn set_status_from(
        &self,
        from: Option<ConnectionStatus>,
        to: ConnectionStatus,
    ) -> bool {
        self.status.send_if_modified(|current| {
            if *current == to || from.is_some_and(|from| *current != from) {
                return false;
            }
            if !current.can_become(to) {
                tracing::warn!(connection = %self.name, from = %current, %to, "unexpected status change");
            }
            tracing::debug!(connection = %self.name, from = %current, %to, "status");
            self.connected
                .store(to == ConnectionStatus::Connected, Ordering::Release);
            if let Some(listener) = &self.config.status_listener {
                listener(&self.name, *current, to);
            }
            self.counters.telemetry.status(to);
            *current = to;
            true
        })
    }

    pub(super) fn status(&self) -> ConnectionStatus {
        *self.status.borrow()
    }

    pub(super) fn live_client(&self) -> Option<Client> {
        if !self.connected.load(Ordering::Acquire) {
            return None;
        }
        self.state.lock().client.clone().filter(Client::is_open)
    }

    pub(super) fn engine_config(self: &Arc<Self>) -> EngineConfig {
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
            tool_hints: self.tool_hints.clone(),
        }
    }

    /// Moves the status off `Connected` the moment a live link is found
    /// lost, before callers hear of it; the supervisor then takes over.
    pub(super) fn link_lost_hook(self: &Arc<Self>) -> crate::engine::LinkLostHook {
        let recovers = self.config.auto_reconnect && self.config.max_reconnect_attempts > 0;
        // Weak: the engine's session is owned (through the client kept in
        // `state`) by this `Shared`.
        let shared = Arc::downgrade(self);
        Arc::new(move |error: &Error| {
            let to = if recovers && error.is_retryable() {
                ConnectionStatus::Reconnecting
            } else {
                ConnectionStatus::Error
            };
            if let Some(shared) = shared.upgrade() {
                shared.set_status_from(Some(ConnectionStatus::Connected), to);
            }
        })
    }

    /// Opens a link and runs the handshake, all within `timeout`.
    pub(super) async fn open_session(self: Arc<Self>, timeout: Duration) -> Result<Session, Error> {
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
            let remembered = self.state.lock().era.clone();
            let plan = EraPlan {
                client_info: &self.config.client_info,
                capabilities: self.config.handlers.capabilities(),
                timeout: timeout.saturating_mul(2),
                probe_timeout: self.config.era_probe_timeout.min(timeout),
                preference: &self.config.protocol,
                remembered,
            };
            let era = open_era(&session, &plan).await.map_err(|e| match e {
                // A link lost during the handshake is a failed connect, on
                // every transport.
                Error::ConnectionLost { connection, reason } => Error::Connect {
                    connection,
                    source: reason,
                },
                other => other,
            })?;
            self.state.lock().era = Some(era);
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

    /// Feeds the request timeouts the engine counted since the last call to
    /// the health score, as failures. Every outcome recorded goes through
    /// here first, so they keep their order with the other outcomes.
    fn absorb_timeouts(&self, s: &mut State) {
        let total = self.counters.requests_timed_out.load(Ordering::Relaxed);
        let new = total.saturating_sub(s.timeouts_seen);
        s.timeouts_seen = total;
        for _ in 0..new.min(HEALTH_WINDOW as u64) {
            s.health.record_outcome(false);
        }
    }

    /// The health score, by the rule documented on
    /// [`crate::Connection::health_score`].
    pub(super) fn score(&self, s: &mut State) -> f64 {
        self.absorb_timeouts(s);
        let never_connected = s.connection_count == 0;
        if never_connected || self.status() == ConnectionStatus::Error {
            return 0.0;
        }
        s.health.score()
    }

    pub(super) fn on_connected(&self, client: Client) {
        {
            let mut s = self.state.lock();
            self.absorb_timeouts(&mut s);
            s.health.record_outcome(true);
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

    pub(super) fn on_session_end(&self) {
        let mut s = self.state.lock();
        s.client = None;
        if let Some(since) = s.connected_since.take() {
            s.closed_uptime += since.elapsed();
        }
    }

    /// A failed connect or reconnect attempt, or a lost link: counted, kept
    /// as the last error, and a failure in the health score.
    pub(super) fn record_error(&self, error: &Error) {
        let mut s = self.state.lock();
        s.error_count += 1;
        s.last_error = Some(ErrorSummary::from(error));
        self.absorb_timeouts(&mut s);
        s.health.record_outcome(false);
    }

    /// Runs one probe. Returns the report and, when the failure streak has
    /// reached the limit, the client whose session should be replaced.
    /// Passive health: whether a request other than a probe succeeded on
    /// the live session within the last `health_check_interval`. Then a
    /// scheduled probe is skipped: the traffic is the proof of life.
    pub(super) fn traffic_proves_life(&self) -> bool {
        let Some(last_ok) = *self.counters.last_ok.lock() else {
            return false;
        };
        let s = self.state.lock();
        let since = match (s.last_probe_at, s.connected_since) {
            (Some(probe), _) => probe,
            (None, Some(connected)) => connected,
            (None, None) => return false,
        };
        last_ok > since && last_ok.elapsed() < self.probing.interval
    }

    /// A scheduled probe (the connection's monitor, the pool's): skipped
    /// while real traffic succeeds (see [`Shared::traffic_proves_life`]),
    /// which records a success; a probe otherwise.
    pub(super) async fn scheduled_probe(&self) -> (ProbeResult, Option<(Client, u32)>) {
        let Some(client) = self.live_client() else {
            return (not_connected(), None);
        };
        if self.traffic_proves_life() {
            return (self.skipped_probe(), None);
        }
        self.probe_client(client).await
    }

    /// Records a scheduled probe skipped because traffic proves life.
    fn skipped_probe(&self) -> ProbeResult {
        {
            let mut s = self.state.lock();
            self.absorb_timeouts(&mut s);
            s.health.record(true);
            s.last_probe_at = Some(Instant::now());
        }
        self.counters.probe_skipped();
        ProbeResult {
            ok: true,
            skipped: true,
            ..ProbeResult::default()
        }
    }

    /// A scheduled probe, started without waiting for it (see
    /// [`crate::Connection::start_probe`]).
    pub(super) fn start_probe(&self, answered: Option<Arc<tokio::sync::Notify>>) -> ProbeStart {
        let Some(client) = self.live_client() else {
            return ProbeStart::Finished(not_connected());
        };
        if self.traffic_proves_life() {
            return ProbeStart::Finished(self.skipped_probe());
        }
        if self.probing.kind != HealthProbe::Ping {
            return ProbeStart::Unavailable;
        }
        let sent = Instant::now();
        match client.send_light_probe(answered) {
            Some(id) => ProbeStart::Sent(PendingProbe {
                client,
                id,
                sent,
                deadline: sent + self.probing.timeout,
            }),
            None => ProbeStart::Unavailable,
        }
    }

    /// The outcome of a probe [`Shared::start_probe`] sent, once there is
    /// one (an answer, or the deadline passed by `now`).
    pub(super) fn check_probe(
        &self,
        probe: PendingProbe,
        now: Instant,
    ) -> Result<(ProbeResult, Option<(Client, u32)>), PendingProbe> {
        let outcome = match probe.client.light_probe_answer(probe.id, probe.sent) {
            ProbeAnswer::Alive(latency) => Ok(latency),
            // The error a request probe would have given.
            ProbeAnswer::Failed(failure) => Err(match *failure {
                ProbeFailure::Rpc(error) => Error::Rpc {
                    connection: self.name.clone(),
                    method: "ping".into(),
                    error,
                },
                ProbeFailure::Transport(source) => Error::Transport {
                    connection: self.name.clone(),
                    method: "ping".into(),
                    source,
                },
            }),
            // The session ended meanwhile: no answer will come.
            ProbeAnswer::Waiting | ProbeAnswer::Gone if !probe.client.is_open() => {
                probe.client.forget_light_probe(probe.id);
                Err(probe.client.end_error())
            }
            // Not answered (or replaced by a later probe, whose answer is
            // not this one's): a failure once the deadline passed.
            ProbeAnswer::Waiting | ProbeAnswer::Gone if now < probe.deadline => return Err(probe),
            ProbeAnswer::Waiting | ProbeAnswer::Gone => {
                probe.client.forget_light_probe(probe.id);
                Err(Error::Timeout {
                    connection: self.name.clone(),
                    operation: "ping (health probe)".into(),
                    after: self.probing.timeout,
                })
            }
        };
        // Counted as a request, as a request probe is (see `RequestMetrics`).
        Counters::bump(match &outcome {
            Ok(_) => &self.counters.requests_ok,
            Err(e) if e.is_timeout() => &self.counters.requests_timed_out,
            Err(_) => &self.counters.requests_failed,
        });
        let latency = outcome.as_ref().ok().copied().unwrap_or_default();
        Ok(self.record_probe(probe.client, outcome.map(drop), latency))
    }

    /// Runs one probe now; see [`Shared::scheduled_probe`] for the result.
    pub(super) async fn probe(&self) -> (ProbeResult, Option<(Client, u32)>) {
        match self.live_client() {
            Some(client) => self.probe_client(client).await,
            None => (not_connected(), None),
        }
    }

    /// A probe's result with the connection's snapshot after it.
    pub(super) fn report_of(&self, probe: ProbeResult) -> HealthReport {
        let mut report = self.report(probe.ok, probe.error, probe.latency);
        report.skipped = probe.skipped;
        report
    }

    async fn probe_client(&self, client: Client) -> (ProbeResult, Option<(Client, u32)>) {
        let opts = RequestOptions::new().timeout(self.probing.timeout);
        let started = Instant::now();
        let outcome = match self.probing.kind {
            HealthProbe::Ping => client.ping_with(&opts).await,
            HealthProbe::ListTools => client
                .request::<serde_json::Value>("tools/list", None, &opts)
                .await
                .map(drop),
        };
        let latency = started.elapsed();
        self.record_probe(client, outcome, latency)
    }

    /// Records a probe's outcome: health, latency, errors; and whether the
    /// connection is now unhealthy enough to replace. A probe that timed out
    /// was also counted as a request timeout (by the engine for a request
    /// probe, by `check_probe` for a light one): it is one outcome.
    fn record_probe(
        &self,
        client: Client,
        outcome: Result<(), Error>,
        latency: Duration,
    ) -> (ProbeResult, Option<(Client, u32)>) {
        let failures = {
            let mut s = self.state.lock();
            s.last_probe_at = Some(Instant::now());
            if outcome.as_ref().is_err_and(Error::is_timeout) {
                s.timeouts_seen += 1;
            }
            self.absorb_timeouts(&mut s);
            s.health.record(outcome.is_ok());
            self.counters.telemetry.probe(outcome.is_ok());
            match &outcome {
                Ok(()) => {
                    s.last_probe_latency = Some(latency);
                    s.probe_latency_ewma = Some(match s.probe_latency_ewma {
                        Some(avg) => ewma(avg, latency),
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
        let limit = self.probing.max_failures;
        let unhealthy =
            (outcome.is_err() && limit > 0 && failures >= limit).then_some((client, failures));
        let probe = match outcome {
            Ok(()) => ProbeResult {
                ok: true,
                latency: Some(latency),
                ..ProbeResult::default()
            },
            Err(e) => ProbeResult {
                error: Some(e.to_string()),
                ..ProbeResult::default()
            },
        };
        (probe, unhealthy)
    }

    pub(super) fn uptime(s: &State) -> Duration {
        s.closed_uptime + s.connected_since.map_or(Duration::ZERO, |t| t.elapsed())
    }

    pub(super) fn report(
        &self,
        ok: bool,
        error: Option<String>,
        latency: Option<Duration>,
    ) -> HealthReport {
        let connected = self.live_client().is_some();
        let connection = self.info();
        HealthReport {
            ok,
            error,
            latency,
            consecutive_failures: self.state.lock().health.consecutive_failures(),
            skipped: false,
            connected,
            connection,
        }
    }

    pub(super) fn info(&self) -> ConnectionInfo {
        let status = *self.status.borrow();
        let mut s = self.state.lock();
        let health_score = self.score(&mut s);
        let server = s.client.as_ref().and_then(|c| c.server().cloned());
        ConnectionInfo {
            name: self.name.to_string(),
            transport_type: self.transport.kind(),
            status,
            last_connected: s.last_connected,
            last_error: s.last_error.clone(),
            reconnect_attempts: s.reconnect_attempts,
            health_score,
            connection_count: s.connection_count,
            error_count: s.error_count,
            total_uptime: Self::uptime(&s),
            last_probe_latency: s.last_probe_latency,
            probe_latency_ewma: s.probe_latency_ewma,
            metrics: self.counters.snapshot(),
            server_name: server.as_ref().map(|r| r.server_info.name.clone()),
            server_version: server.as_ref().map(|r| r.server_info.version.clone()),
            protocol_version: server.map(|r| r.protocol_version),
            protocol_era: s.client.as_ref().and_then(Client::protocol_era),
        }
    }
}

fn not_connected() -> ProbeResult {
    ProbeResult {
        error: Some("Not connected".into()),
        ..ProbeResult::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latency_average_moves_thirty_percent_toward_each_probe() {
        let ms = Duration::from_millis;
        assert_eq!(ewma(ms(10), ms(20)), ms(13));
        assert_eq!(ewma(ms(20), ms(10)), ms(17));
        assert_eq!(ewma(ms(5), ms(5)), ms(5));
        assert_eq!(
            ewma(Duration::MAX, Duration::MAX),
            Duration::from_nanos(u64::MAX)
        );
    }
}
