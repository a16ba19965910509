//! Metrics through the [`metrics`] facade (cargo feature `metrics`), so an
//! application exports them with the recorder it likes: Prometheus
//! (`metrics-exporter-prometheus`), OpenTelemetry, StatsD, …
//!
//! Every metric carries the label `server`: the connection's name. Names
//! follow the Prometheus conventions the facade's exporters expect: snake
//! case, a `mcp_conn_` prefix, `_total` on counters, base units (seconds).
//!
//! | name | type | labels | unit | meaning |
//! |---|---|---|---|---|
//! | `mcp_conn_requests_total` | counter | `server`, `method` | requests | requests that ended: answered, failed, timed out, or abandoned by their caller |
//! | `mcp_conn_request_errors_total` | counter | `server`, `method`, `kind` | requests | the requests of `mcp_conn_requests_total` that did not get a result; `kind` is [`ErrorKind::as_str`](crate::ErrorKind::as_str) (`timeout`, `rpc`, `connection_lost`, `transport`, …) or `cancelled` (the caller dropped the call) |
//! | `mcp_conn_request_duration_seconds` | histogram | `server`, `method` | seconds | from the call to its outcome, the wait for a slot under [`max_in_flight`](crate::ConnectionConfig::max_in_flight) included |
//! | `mcp_conn_requests_in_flight` | gauge | `server` | requests | requests sent and not answered yet |
//! | `mcp_conn_requests_queued` | gauge | `server` | requests | requests waiting for a slot under `max_in_flight` |
//! | `mcp_conn_reconnects_total` | counter | `server` | reconnects | successful reconnects |
//! | `mcp_conn_connected` | gauge | `server` | — | 1 while the status is `connected`, else 0 |
//! | `mcp_conn_status` | gauge | `server`, `status` | — | 1 for the current [`ConnectionStatus`](crate::ConnectionStatus) (`disconnected`, `connecting`, `connected`, `reconnecting`, `error`), 0 for the four others |
//! | `mcp_conn_probes_total` | counter | `server`, `outcome` (`ok`, `failed`) | probes | health probes sent (scheduled or [`Connection::health_check`](crate::Connection::health_check)) |
//! | `mcp_conn_probes_skipped_total` | counter | `server` | probes | scheduled probes skipped because real requests had just succeeded (passive health) |
//!
//! Requests are counted as in [`RequestMetrics`](crate::RequestMetrics):
//! every request made through a [`Client`](crate::Client), health probes
//! included (as `method="ping"`, or `tools/list`, or `server/discover` in
//! the stateless era); the handshake is part of connecting and is not
//! counted.
//!
//! **Bounded labels.** `method` is the MCP method (`tools/call`,
//! `resources/read`, …, see [`method_label`]), never a tool's name or an
//! argument: a method this crate does not know is counted as `other`. So a
//! server has at most a few hundred series, whatever its callers do.
//!
//! **When to install the recorder.** Handles are registered once and kept:
//! the per-server ones when the [`Connection`](crate::Connection) (or the
//! pool entry) is created, the per-method ones at the first request of that
//! method. Install the recorder (a global one, as exporters do) before
//! creating connections; a connection made earlier records nothing. After
//! that, a request costs a scan of the 18 method names and a few atomic
//! operations on kept handles, without allocating (a failure also takes a
//! short lock). When a connection is dropped its gauges return to 0.
//!
//! Without the feature none of this is compiled. [`describe`] shows how
//! to set it up.

#[cfg(feature = "metrics")]
pub use live::{
    describe, method_label, CONNECTED, DURATION_BUCKETS, PROBES_SKIPPED_TOTAL, PROBES_TOTAL,
    RECONNECTS_TOTAL, REQUESTS_IN_FLIGHT, REQUESTS_QUEUED, REQUESTS_TOTAL,
    REQUEST_DURATION_SECONDS, REQUEST_ERRORS_TOTAL, STATUS,
};
#[cfg(feature = "metrics")]
pub(crate) use live::{Level, Telemetry};
#[cfg(not(feature = "metrics"))]
pub(crate) use noop::{Level, Telemetry};

#[cfg(feature = "metrics")]
mod live {
    use std::fmt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, OnceLock};

    use metrics::{
        counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
        Gauge, Histogram, SharedString, Unit,
    };
    use parking_lot::Mutex;
    use tokio::time::Instant;

    use crate::error::Error;
    use crate::status::ConnectionStatus;

    /// `mcp_conn_requests_total`: counter, labels `server`, `method`.
    pub const REQUESTS_TOTAL: &str = "mcp_conn_requests_total";
    /// `mcp_conn_request_errors_total`: counter, labels `server`, `method`, `kind`.
    pub const REQUEST_ERRORS_TOTAL: &str = "mcp_conn_request_errors_total";
    /// `mcp_conn_request_duration_seconds`: histogram, labels `server`, `method`.
    pub const REQUEST_DURATION_SECONDS: &str = "mcp_conn_request_duration_seconds";
    /// `mcp_conn_requests_in_flight`: gauge, label `server`.
    pub const REQUESTS_IN_FLIGHT: &str = "mcp_conn_requests_in_flight";
    /// `mcp_conn_requests_queued`: gauge, label `server`.
    pub const REQUESTS_QUEUED: &str = "mcp_conn_requests_queued";
    /// `mcp_conn_reconnects_total`: counter, label `server`.
    pub const RECONNECTS_TOTAL: &str = "mcp_conn_reconnects_total";
    /// `mcp_conn_connected`: gauge (0 or 1), label `server`.
    pub const CONNECTED: &str = "mcp_conn_connected";
    /// `mcp_conn_status`: gauge (0 or 1), labels `server`, `status`.
    pub const STATUS: &str = "mcp_conn_status";
    /// `mcp_conn_probes_total`: counter, labels `server`, `outcome`.
    pub const PROBES_TOTAL: &str = "mcp_conn_probes_total";
    /// `mcp_conn_probes_skipped_total`: counter, label `server`.
    pub const PROBES_SKIPPED_TOTAL: &str = "mcp_conn_probes_skipped_total";

    /// Histogram buckets (seconds) that suit MCP requests, from a local
    /// stdio call (about a millisecond) to a long tool call (a minute), for
    /// exporters that need them (Prometheus renders a histogram without
    /// buckets as a summary).
    pub const DURATION_BUCKETS: &[f64] = &[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ];

    /// The MCP methods a client sends that get a `method` label of their
    /// own; any other is `other`.
    const METHODS: [&str; 18] = [
        "ping",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "server/discover",
        "subscriptions/listen",
        "tasks/get",
        "tasks/list",
        "tasks/result",
        "tasks/cancel",
    ];
    const OTHER: usize = METHODS.len();

    fn method_index(method: &str) -> usize {
        METHODS.iter().position(|m| *m == method).unwrap_or(OTHER)
    }

    /// The `method` label a request of `method` is counted under: the
    /// method itself for the MCP methods a client sends (`tools/call`,
    /// `resources/read`, `ping`, …), `other` for anything else, so that
    /// label stays bounded.
    pub fn method_label(method: &str) -> &'static str {
        METHODS
            .get(method_index(method))
            .copied()
            .unwrap_or("other")
    }

    /// Describes every metric (type, unit, help text) to the installed
    /// recorder. Creating a connection does it too; call it yourself to
    /// have the descriptions before the first connection exists.
    ///
    /// ```
    /// use mcp_conn_core::telemetry::{self, DURATION_BUCKETS};
    /// use mcp_conn_core::testing::{FakeServer, MockTransport};
    /// use mcp_conn_core::Connection;
    /// use serde_json::json;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // Once, at start-up, before any connection is created, install the
    /// // recorder of your exporter, e.g. `metrics-exporter-prometheus`:
    /// //   let handle = PrometheusBuilder::new()
    /// //       .set_buckets_for_metric(Matcher::Suffix("seconds".into()), DURATION_BUCKETS)?
    /// //       .install_recorder()?;
    /// telemetry::describe();
    /// let conn = Connection::new("files", MockTransport::serving(FakeServer::default()));
    /// let client = conn.connect().await?;
    /// client.call_tool("add", json!({"a": 1, "b": 2})).await?;
    /// // `handle.render()` now shows, among others:
    /// //   mcp_conn_requests_total{server="files",method="tools/call"} 1
    /// //   mcp_conn_connected{server="files"} 1
    /// # assert_eq!(DURATION_BUCKETS.len(), 15);
    /// conn.disconnect().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn describe() {
        describe_counter!(
            REQUESTS_TOTAL,
            Unit::Count,
            "MCP requests that ended (answered, failed, timed out or abandoned), by server and method."
        );
        describe_counter!(
            REQUEST_ERRORS_TOTAL,
            Unit::Count,
            "MCP requests that did not get a result, by server, method and error kind."
        );
        describe_histogram!(
            REQUEST_DURATION_SECONDS,
            Unit::Seconds,
            "Time from a call to its outcome, waiting for a slot included, by server and method."
        );
        describe_gauge!(
            REQUESTS_IN_FLIGHT,
            Unit::Count,
            "MCP requests sent and not answered yet, by server."
        );
        describe_gauge!(
            REQUESTS_QUEUED,
            Unit::Count,
            "MCP requests waiting for a slot under max_in_flight, by server."
        );
        describe_counter!(
            RECONNECTS_TOTAL,
            Unit::Count,
            "Successful reconnects, by server."
        );
        describe_gauge!(CONNECTED, "1 while the server is connected, else 0.");
        describe_gauge!(
            STATUS,
            "1 for the connection's current status, 0 for the others, by server and status."
        );
        describe_counter!(
            PROBES_TOTAL,
            Unit::Count,
            "Health probes sent, by server and outcome (ok, failed)."
        );
        describe_counter!(
            PROBES_SKIPPED_TOTAL,
            Unit::Count,
            "Scheduled health probes skipped because real requests had just succeeded, by server."
        );
    }

    const STATUSES: [ConnectionStatus; 5] = [
        ConnectionStatus::Disconnected,
        ConnectionStatus::Connecting,
        ConnectionStatus::Connected,
        ConnectionStatus::Reconnecting,
        ConnectionStatus::Error,
    ];

    fn status_index(status: ConnectionStatus) -> usize {
        match status {
            ConnectionStatus::Disconnected => 0,
            ConnectionStatus::Connecting => 1,
            ConnectionStatus::Connected => 2,
            ConnectionStatus::Reconnecting => 3,
            ConnectionStatus::Error => 4,
        }
    }

    struct MethodHandles {
        requests: Counter,
        duration: Histogram,
    }

    /// One connection's metric handles, registered once.
    pub(crate) struct Telemetry {
        server: SharedString,
        reconnects: Counter,
        connected: Gauge,
        status: [Gauge; 5],
        /// The index (in `STATUSES`) of the status the gauges show.
        current: AtomicUsize,
        probes_ok: Counter,
        probes_failed: Counter,
        probes_skipped: Counter,
        in_flight: Gauge,
        queued: Gauge,
        /// Per method, registered at the method's first request.
        methods: [OnceLock<MethodHandles>; METHODS.len() + 1],
        /// Per (method, kind), registered at the first such failure.
        errors: Mutex<Vec<(usize, &'static str, Counter)>>,
    }

    impl fmt::Debug for Telemetry {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Telemetry")
                .field("server", &&*self.server)
                .finish_non_exhaustive()
        }
    }

    impl Default for Telemetry {
        /// Handles that record nothing.
        fn default() -> Self {
            Telemetry {
                server: SharedString::const_str(""),
                reconnects: Counter::noop(),
                connected: Gauge::noop(),
                status: std::array::from_fn(|_| Gauge::noop()),
                current: AtomicUsize::new(0),
                probes_ok: Counter::noop(),
                probes_failed: Counter::noop(),
                probes_skipped: Counter::noop(),
                in_flight: Gauge::noop(),
                queued: Gauge::noop(),
                methods: std::array::from_fn(|_| OnceLock::new()),
                errors: Mutex::new(Vec::new()),
            }
        }
    }

    impl Telemetry {
        /// Registers the connection's per-server handles with the recorder
        /// installed now; the status starts as `disconnected`.
        pub(crate) fn new(name: &Arc<str>) -> Self {
            describe();
            let server = SharedString::from(name.clone());
            let s = || server.clone();
            let status: [Gauge; 5] = std::array::from_fn(
                |i| gauge!(STATUS, "server" => s(), "status" => STATUSES[i].as_str()),
            );
            status[status_index(ConnectionStatus::Disconnected)].increment(1.0);
            Telemetry {
                reconnects: counter!(RECONNECTS_TOTAL, "server" => s()),
                connected: gauge!(CONNECTED, "server" => s()),
                status,
                current: AtomicUsize::new(status_index(ConnectionStatus::Disconnected)),
                probes_ok: counter!(PROBES_TOTAL, "server" => s(), "outcome" => "ok"),
                probes_failed: counter!(PROBES_TOTAL, "server" => s(), "outcome" => "failed"),
                probes_skipped: counter!(PROBES_SKIPPED_TOTAL, "server" => s()),
                in_flight: gauge!(REQUESTS_IN_FLIGHT, "server" => s()),
                queued: gauge!(REQUESTS_QUEUED, "server" => s()),
                methods: std::array::from_fn(|_| OnceLock::new()),
                errors: Mutex::new(Vec::new()),
                server,
            }
        }

        /// Starts timing one request; see [`RequestTimer::finish`].
        pub(crate) fn start(&self, method: &str) -> RequestTimer<'_> {
            RequestTimer {
                telemetry: self,
                method: method_index(method),
                started: Instant::now(),
                finished: false,
            }
        }

        fn method(&self, i: usize) -> &MethodHandles {
            self.methods[i].get_or_init(|| {
                let method = METHODS.get(i).copied().unwrap_or("other");
                MethodHandles {
                    requests: counter!(REQUESTS_TOTAL, "server" => self.server.clone(), "method" => method),
                    duration: histogram!(REQUEST_DURATION_SECONDS, "server" => self.server.clone(), "method" => method),
                }
            })
        }

        fn record(&self, method: usize, seconds: f64, error: Option<&'static str>) {
            let handles = self.method(method);
            handles.requests.increment(1);
            handles.duration.record(seconds);
            if let Some(kind) = error {
                let mut errors = self.errors.lock();
                let known = errors
                    .iter()
                    .find(|(m, k, _)| *m == method && *k == kind)
                    .map(|(_, _, c)| c.clone());
                let counter = known.unwrap_or_else(|| {
                    let label = METHODS.get(method).copied().unwrap_or("other");
                    let c = counter!(REQUEST_ERRORS_TOTAL, "server" => self.server.clone(), "method" => label, "kind" => kind);
                    errors.push((method, kind, c.clone()));
                    c
                });
                drop(errors);
                counter.increment(1);
            }
        }

        /// The status changed (called where the status changes, in order).
        pub(crate) fn status(&self, to: ConnectionStatus) {
            let to = status_index(to);
            let from = self.current.swap(to, Ordering::Relaxed);
            if from == to {
                return;
            }
            self.status[from].decrement(1.0);
            self.status[to].increment(1.0);
            let connected = status_index(ConnectionStatus::Connected);
            if from == connected {
                self.connected.decrement(1.0);
            } else if to == connected {
                self.connected.increment(1.0);
            }
        }

        pub(crate) fn reconnected(&self) {
            self.reconnects.increment(1);
        }

        pub(crate) fn probe(&self, ok: bool) {
            if ok {
                &self.probes_ok
            } else {
                &self.probes_failed
            }
            .increment(1);
        }

        pub(crate) fn probe_skipped(&self) {
            self.probes_skipped.increment(1);
        }

        pub(crate) fn in_flight(&self) -> Level {
            Level(self.in_flight.clone())
        }

        pub(crate) fn queued(&self) -> Level {
            Level(self.queued.clone())
        }
    }

    impl Drop for Telemetry {
        /// A connection that is gone shows no status at all (every gauge 0).
        fn drop(&mut self) {
            let current = *self.current.get_mut();
            self.status[current].decrement(1.0);
            if current == status_index(ConnectionStatus::Connected) {
                self.connected.decrement(1.0);
            }
        }
    }

    /// Times one request; [`RequestTimer::finish`] records its outcome. Dropped
    /// unfinished (the caller stopped waiting), it records `cancelled`.
    pub(crate) struct RequestTimer<'a> {
        telemetry: &'a Telemetry,
        method: usize,
        started: Instant,
        finished: bool,
    }

    impl RequestTimer<'_> {
        /// Records the request's outcome and hands it back.
        pub(crate) fn finish<T>(mut self, outcome: Result<T, Error>) -> Result<T, Error> {
            self.finished = true;
            let error = outcome.as_ref().err().map(|e| e.kind().as_str());
            let seconds = self.started.elapsed().as_secs_f64();
            self.telemetry.record(self.method, seconds, error);
            outcome
        }
    }

    impl Drop for RequestTimer<'_> {
        fn drop(&mut self) {
            if !self.finished {
                let seconds = self.started.elapsed().as_secs_f64();
                self.telemetry
                    .record(self.method, seconds, Some("cancelled"));
            }
        }
    }

    /// A gauge that mirrors one of the connection's own counters.
    #[derive(Clone)]
    pub(crate) struct Level(Gauge);

    impl Level {
        pub(crate) fn up(&self) {
            self.0.increment(1.0);
        }

        pub(crate) fn down(&self) {
            self.0.decrement(1.0);
        }
    }

    impl Default for Level {
        fn default() -> Self {
            Level(Gauge::noop())
        }
    }

    impl fmt::Debug for Level {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Level")
        }
    }
}

/// Without the feature: the same calls, doing nothing, compiled away.
#[cfg(not(feature = "metrics"))]
mod noop {
    use std::sync::Arc;

    use crate::error::Error;
    use crate::status::ConnectionStatus;

    #[derive(Debug, Default)]
    pub(crate) struct Telemetry;

    pub(crate) struct RequestTimer;

    #[derive(Debug, Default, Clone)]
    pub(crate) struct Level;

    impl Telemetry {
        #[inline(always)]
        pub(crate) fn new(_name: &Arc<str>) -> Self {
            Telemetry
        }
        #[inline(always)]
        pub(crate) fn start(&self, _method: &str) -> RequestTimer {
            RequestTimer
        }
        #[inline(always)]
        pub(crate) fn status(&self, _to: ConnectionStatus) {}
        #[inline(always)]
        pub(crate) fn reconnected(&self) {}
        #[inline(always)]
        pub(crate) fn probe(&self, _ok: bool) {}
        #[inline(always)]
        pub(crate) fn probe_skipped(&self) {}
        #[inline(always)]
        pub(crate) fn in_flight(&self) -> Level {
            Level
        }
        #[inline(always)]
        pub(crate) fn queued(&self) -> Level {
            Level
        }
    }

    impl RequestTimer {
        #[inline(always)]
        pub(crate) fn finish<T>(self, outcome: Result<T, Error>) -> Result<T, Error> {
            outcome
        }
    }

    impl Level {
        #[inline(always)]
        pub(crate) fn up(&self) {}
        #[inline(always)]
        pub(crate) fn down(&self) {}
    }
}
