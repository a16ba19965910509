//! Settings of a [`crate::Connection`].

use std::time::Duration;

use std::sync::Arc;

use crate::era::ProtocolPreference;
use crate::handler::ClientHandlers;
use crate::notification::ServerNotification;
use crate::protocol::Implementation;
use crate::status::ConnectionStatus;

/// How a health check probes the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthProbe {
    /// `ping` (a `-32601` answer counts as alive).
    #[default]
    Ping,
    /// `tools/list` (first page), for servers whose `ping` is unreliable.
    ListTools,
}

/// What a call path ([`crate::Connection::ensure_connected`], the pool's
/// calls) does when the connection is waiting before its next connect
/// attempt (a reconnect backoff, or the pause between retries in `Error`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DuringBackoff {
    /// Fail at once with [`crate::Error::Backoff`], which says how long until
    /// the next attempt and why the last one failed. The default: an agent
    /// hears at once that a server is down, and can use another.
    #[default]
    FailFast,
    /// Wait for the next attempt and take its outcome, when it starts within
    /// `connection_timeout`; otherwise fail at once as `FailFast` does.
    Wait,
}

/// See [`ConnectionConfig::restart_budget`].
///
/// ```
/// # use std::time::Duration;
/// # use mcp_conn_core::{ConnectionConfig, RestartBudget};
/// let config = ConnectionConfig {
///     restart_budget: Some(RestartBudget { max_restarts: 5, window: Duration::from_secs(600) }),
///     ..Default::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartBudget {
    /// Restarts allowed within `window`.
    pub max_restarts: u32,
    /// The sliding window.
    pub window: Duration,
}

/// Settings of a [`crate::Connection`]. The first six fields are the Python original's
/// keyword arguments, with its defaults; write only what you change:
///
/// ```
/// # use std::time::Duration;
/// # use mcp_conn_core::ConnectionConfig;
/// let config = ConnectionConfig {
///     health_check_interval: Duration::from_secs(10),
///     max_reconnect_attempts: 10,
///     ..Default::default()
/// };
/// ```
#[derive(Clone)]
pub struct ConnectionConfig {
    /// Reconnect by itself when the link dies or health checks fail. Default `true`.
    pub auto_reconnect: bool,
    /// Reconnect attempts per outage before giving up (status `Error`). Default 5.
    pub max_reconnect_attempts: u32,
    /// Delay before the first reconnect attempt; doubles each attempt. Default 1 s.
    pub reconnect_delay: Duration,
    /// Upper bound of the reconnect delay. Default 60 s.
    pub max_reconnect_delay: Duration,
    /// Interval between health checks while monitoring. Default 30 s.
    pub health_check_interval: Duration,
    /// Time allowed to open the link and finish the handshake. Default 30 s.
    pub connection_timeout: Duration,
    /// Default timeout of each request. Default 60 s.
    pub request_timeout: Duration,
    /// Timeout of one health-check probe. Default 10 s.
    pub health_check_timeout: Duration,
    /// What a health check sends. Default [`HealthProbe::Ping`].
    pub health_probe: HealthProbe,
    /// Consecutive failed health checks that make the connection reconnect.
    /// Default 3; 0 never reconnects on health checks.
    pub max_consecutive_health_failures: u32,
    /// Random spread of each reconnect delay, as a fraction (0.2 = ±20 %).
    /// Default 0.2; 0 gives the Python original's exact schedule.
    pub reconnect_jitter: f64,
    /// Seed of the jitter's random source, for reproducible tests. Default `None`.
    pub jitter_seed: Option<u64>,
    /// Time a graceful link shutdown may take before it is forced. Default 5 s.
    pub close_grace: Duration,
    /// Capacity of the outgoing message queue. Default 1024.
    pub queue_capacity: usize,
    /// Server requests handled at once; up to 256 more wait for a slot, and
    /// past that they are answered with an error. Default 32.
    pub max_concurrent_server_requests: usize,
    /// What calls do while the connection waits before its next connect
    /// attempt. Default [`DuringBackoff::FailFast`].
    pub during_backoff: DuringBackoff,
    /// At most this many restarts (reconnects after a live session was
    /// lost) in a sliding window, then `Error` with
    /// [`crate::Error::RestartBudgetExhausted`]: a server that crashes
    /// after every successful start does not restart forever. Independent
    /// of `max_reconnect_attempts`, which counts failed attempts within one
    /// outage. Default `None`: no limit.
    pub restart_budget: Option<RestartBudget>,
    /// At most this many requests in flight to the server at once; more
    /// wait for a slot (within their own timeout) instead of flooding a
    /// slow server. The wait is visible as `RequestMetrics::queued`.
    /// Default `None`: no limit.
    pub max_in_flight: Option<usize>,
    /// Safe replay: a request sent through the [`crate::Connection`]'s own
    /// methods (`call_tool`, `list_tools`, `read_resource`, …) whose link
    /// died before its answer is sent once more on the new link, if it is
    /// safe to repeat: `ping`, the list methods, `resources/read`,
    /// `prompts/get`, and a `tools/call` that the caller marked
    /// [`idempotent`](crate::RequestOptions::idempotent) or whose tool was
    /// listed with `readOnlyHint` or `idempotentHint`. Every other request
    /// fails with [`crate::Error::ConnectionLost`] as without it. Default
    /// `false`.
    pub replay_after_reconnect: bool,
    /// The name and version sent in `initialize` (handshake era) or in
    /// every request's `_meta` (stateless era). Default: this crate's.
    pub client_info: Implementation,
    /// Which protocol era to speak. Default [`ProtocolPreference::Auto`]:
    /// the newest the server speaks, detected on the first connect and
    /// remembered across reconnects.
    pub protocol: ProtocolPreference,
    /// How long the era probe (`server/discover`) may go unanswered before
    /// the server is taken for a handshake-era one. Default 5 s.
    pub era_probe_timeout: Duration,
    /// Handlers for server requests (roots, sampling, elicitation). Default: none.
    pub handlers: ClientHandlers,
    /// Called on every status change, in order, with the connection's name,
    /// the old and the new status. It runs while the status is being
    /// updated: keep it short and never block. Default: none.
    pub status_listener: Option<StatusListener>,
    /// Called with the connection's name and every notification the server
    /// sends (progress excepted), in order, by the task that reads the link,
    /// before the notification goes to the subscribers of
    /// [`crate::Connection::notifications`]. Unlike a subscriber it costs
    /// no buffer and never lags, which suits a pool watching thousands of
    /// servers; keep it short and never block. Default: none.
    pub notification_listener: Option<NotificationListener>,
}

/// The longest duration a setting may have: about 31 years. Longer ones are
/// surely a mistake (a number of seconds given as milliseconds, say), and
/// adding them to an `Instant` could overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(1_000_000_000);

/// A setting of a [`ConnectionConfig`] that cannot work, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{field}`: {message}")]
pub struct ConfigError {
    /// The field, as named in [`ConnectionConfig`].
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            field,
            message: message.into(),
        }
    }
}

impl ConnectionConfig {
    /// Checks the settings. [`crate::Connection::connect`] runs this first
    /// and fails with [`crate::Error::InvalidConfig`]; call it yourself to
    /// hear of a mistake sooner. Refused, rather than silently clamped:
    /// - a zero `health_check_interval` (a hot probe loop), `request_timeout`,
    ///   `connection_timeout`, `health_check_timeout` or `reconnect_delay`;
    /// - any duration over [`MAX_DURATION`];
    /// - `max_reconnect_delay` below `reconnect_delay`;
    /// - `reconnect_jitter` outside `[0, 1]` (or not a number);
    /// - a zero `queue_capacity` or `max_concurrent_server_requests`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use mcp_conn_core::ConnectionConfig;
    /// let bad = ConnectionConfig { request_timeout: Duration::ZERO, ..Default::default() };
    /// assert_eq!(bad.validate().unwrap_err().field, "request_timeout");
    /// assert!(ConnectionConfig::default().validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("reconnect_delay", self.reconnect_delay),
            ("health_check_interval", self.health_check_interval),
            ("connection_timeout", self.connection_timeout),
            ("request_timeout", self.request_timeout),
            ("health_check_timeout", self.health_check_timeout),
            ("era_probe_timeout", self.era_probe_timeout),
        ];
        for (field, value) in positive {
            if value.is_zero() {
                return Err(ConfigError::new(field, "must be greater than zero"));
            }
        }
        let bounded = positive.into_iter().chain([
            ("max_reconnect_delay", self.max_reconnect_delay),
            ("close_grace", self.close_grace),
        ]);
        for (field, value) in bounded {
            if value > MAX_DURATION {
                return Err(ConfigError::new(
                    field,
                    format!("{value:?} is longer than the maximum of {MAX_DURATION:?}"),
                ));
            }
        }
        if self.max_reconnect_delay < self.reconnect_delay {
            return Err(ConfigError::new(
                "max_reconnect_delay",
                format!(
                    "{:?} is shorter than reconnect_delay ({:?})",
                    self.max_reconnect_delay, self.reconnect_delay
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.reconnect_jitter) {
            return Err(ConfigError::new(
                "reconnect_jitter",
                format!("{} is not between 0 and 1", self.reconnect_jitter),
            ));
        }
        if let Some(budget) = self.restart_budget {
            if budget.max_restarts == 0 {
                return Err(ConfigError::new(
                    "restart_budget",
                    "max_restarts must be at least 1 (use auto_reconnect: false for none)",
                ));
            }
            if budget.window.is_zero() || budget.window > MAX_DURATION {
                return Err(ConfigError::new(
                    "restart_budget",
                    "the window must be greater than zero and at most MAX_DURATION",
                ));
            }
        }
        if self.max_in_flight == Some(0) {
            return Err(ConfigError::new("max_in_flight", "must be at least 1"));
        }
        if self.queue_capacity == 0 {
            return Err(ConfigError::new("queue_capacity", "must be at least 1"));
        }
        if self.max_concurrent_server_requests == 0 {
            return Err(ConfigError::new(
                "max_concurrent_server_requests",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// See [`ConnectionConfig::notification_listener`].
pub type NotificationListener = Arc<dyn Fn(&str, &ServerNotification) + Send + Sync>;

/// See [`ConnectionConfig::status_listener`].
pub type StatusListener = Arc<dyn Fn(&str, ConnectionStatus, ConnectionStatus) + Send + Sync>;

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            auto_reconnect: true,
            max_reconnect_attempts: 5,
            reconnect_delay: Duration::from_secs(1),
            max_reconnect_delay: Duration::from_secs(60),
            health_check_interval: Duration::from_secs(30),
            connection_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            health_check_timeout: Duration::from_secs(10),
            health_probe: HealthProbe::Ping,
            max_consecutive_health_failures: 3,
            reconnect_jitter: 0.2,
            jitter_seed: None,
            close_grace: Duration::from_secs(5),
            queue_capacity: 1024,
            max_concurrent_server_requests: 32,
            during_backoff: DuringBackoff::FailFast,
            restart_budget: None,
            max_in_flight: None,
            replay_after_reconnect: false,
            client_info: Implementation::default(),
            protocol: ProtocolPreference::Auto,
            era_probe_timeout: Duration::from_secs(5),
            handlers: ClientHandlers::default(),
            status_listener: None,
            notification_listener: None,
        }
    }
}

impl std::fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("auto_reconnect", &self.auto_reconnect)
            .field("max_reconnect_attempts", &self.max_reconnect_attempts)
            .field("reconnect_delay", &self.reconnect_delay)
            .field("max_reconnect_delay", &self.max_reconnect_delay)
            .field("health_check_interval", &self.health_check_interval)
            .field("connection_timeout", &self.connection_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("health_check_timeout", &self.health_check_timeout)
            .field("health_probe", &self.health_probe)
            .field(
                "max_consecutive_health_failures",
                &self.max_consecutive_health_failures,
            )
            .field("reconnect_jitter", &self.reconnect_jitter)
            .field("jitter_seed", &self.jitter_seed)
            .field("close_grace", &self.close_grace)
            .field("queue_capacity", &self.queue_capacity)
            .field(
                "max_concurrent_server_requests",
                &self.max_concurrent_server_requests,
            )
            .field("during_backoff", &self.during_backoff)
            .field("restart_budget", &self.restart_budget)
            .field("max_in_flight", &self.max_in_flight)
            .field("replay_after_reconnect", &self.replay_after_reconnect)
            .field("client_info", &self.client_info)
            .field("protocol", &self.protocol)
            .field("era_probe_timeout", &self.era_probe_timeout)
            .field("handlers", &self.handlers)
            .field("status_listener", &self.status_listener.is_some())
            .field(
                "notification_listener",
                &self.notification_listener.is_some(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unworkable_setting_is_named() {
        let cases: Vec<(ConnectionConfig, &str)> = vec![
            (
                ConnectionConfig {
                    health_check_interval: Duration::ZERO,
                    ..Default::default()
                },
                "health_check_interval",
            ),
            (
                ConnectionConfig {
                    request_timeout: Duration::ZERO,
                    ..Default::default()
                },
                "request_timeout",
            ),
            (
                ConnectionConfig {
                    connection_timeout: Duration::ZERO,
                    ..Default::default()
                },
                "connection_timeout",
            ),
            (
                ConnectionConfig {
                    health_check_timeout: Duration::ZERO,
                    ..Default::default()
                },
                "health_check_timeout",
            ),
            (
                ConnectionConfig {
                    reconnect_delay: Duration::ZERO,
                    ..Default::default()
                },
                "reconnect_delay",
            ),
            (
                ConnectionConfig {
                    request_timeout: Duration::from_secs(u64::MAX),
                    ..Default::default()
                },
                "request_timeout",
            ),
            (
                ConnectionConfig {
                    close_grace: MAX_DURATION + Duration::from_secs(1),
                    ..Default::default()
                },
                "close_grace",
            ),
            (
                ConnectionConfig {
                    max_reconnect_delay: Duration::from_millis(10),
                    ..Default::default()
                },
                "max_reconnect_delay",
            ),
            (
                ConnectionConfig {
                    reconnect_jitter: -0.1,
                    ..Default::default()
                },
                "reconnect_jitter",
            ),
            (
                ConnectionConfig {
                    reconnect_jitter: 1.5,
                    ..Default::default()
                },
                "reconnect_jitter",
            ),
            (
                ConnectionConfig {
                    reconnect_jitter: f64::NAN,
                    ..Default::default()
                },
                "reconnect_jitter",
            ),
            (
                ConnectionConfig {
                    queue_capacity: 0,
                    ..Default::default()
                },
                "queue_capacity",
            ),
            (
                ConnectionConfig {
                    max_concurrent_server_requests: 0,
                    ..Default::default()
                },
                "max_concurrent_server_requests",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().expect_err(field);
            assert_eq!(err.field, field, "{err}");
        }
        assert!(ConnectionConfig::default().validate().is_ok());
    }
}
