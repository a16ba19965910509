//! The connection's status and the reports it gives.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use crate::error::ErrorSummary;
use crate::metrics::RequestMetrics;

/// The state of a connection: the Python original's five states.
///
/// - `Disconnected`: not connected, and not trying (initial state; after `disconnect()`).
/// - `Connecting`: a `connect()` is opening the link and running the handshake.
/// - `Connected`: the session is live.
/// - `Reconnecting`: the link was lost (or `reconnect()` was called); waiting
///   for or running a reconnect attempt.
/// - `Error`: a connect failed, or reconnect attempts ran out; stays so until
///   `connect()` is called again.
///
/// Displays and serialises as the Python original's lower-case strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionStatus {
    /// Not connected, not trying.
    Disconnected,
    /// Opening the link and running the handshake.
    Connecting,
    /// Live.
    Connected,
    /// Failed; waits for `connect()`.
    Error,
    /// Recovering from a lost link.
    Reconnecting,
}

impl ConnectionStatus {
    /// The Python original's string for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Disconnected => "disconnected",
            ConnectionStatus::Connecting => "connecting",
            ConnectionStatus::Connected => "connected",
            ConnectionStatus::Error => "error",
            ConnectionStatus::Reconnecting => "reconnecting",
        }
    }

    /// Whether the state machine allows going from `self` to `to`.
    pub fn can_become(self, to: ConnectionStatus) -> bool {
        use ConnectionStatus::*;
        match (self, to) {
            (a, b) if a == b => true,
            // Any state can be ended by `disconnect()`.
            (_, Disconnected) => true,
            (Disconnected | Error, Connecting | Reconnecting) => true,
            (Connecting, Connected | Error) => true,
            (Connected, Reconnecting | Error | Connecting) => true,
            (Reconnecting, Connected | Error | Connecting) => true,
            _ => false,
        }
    }
}

impl fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn serialize_time<S: Serializer>(
    t: &Option<SystemTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()) {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

pub(crate) fn serialize_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

pub(crate) fn serialize_opt_ms<S: Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&(d.as_secs_f64() * 1000.0)),
        None => s.serialize_none(),
    }
}

/// A snapshot of a connection (the Python original's `get_info()`), eventually
/// consistent. Times serialise as Unix seconds, durations as seconds, latencies
/// as milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The connection's name.
    pub name: String,
    /// The transport kind (`stdio`, `http`, …).
    pub transport_type: &'static str,
    /// The status.
    pub status: ConnectionStatus,
    /// When the current or last session started (wall clock).
    #[serde(serialize_with = "serialize_time")]
    pub last_connected: Option<SystemTime>,
    /// The last error: its kind, message and whether retrying may help.
    pub last_error: Option<ErrorSummary>,
    /// Reconnect attempts in the current outage.
    pub reconnect_attempts: u32,
    /// The health score, 0.0 to 1.0.
    pub health_score: f64,
    /// Successful connects, first one included.
    pub connection_count: u64,
    /// Failed connects and failed health checks.
    pub error_count: u64,
    /// Time spent connected, the current session included.
    #[serde(serialize_with = "serialize_secs")]
    pub total_uptime: Duration,
    /// Latency of the last successful probe.
    #[serde(serialize_with = "serialize_opt_ms")]
    pub last_probe_latency: Option<Duration>,
    /// Moving average of probe latency.
    #[serde(serialize_with = "serialize_opt_ms")]
    pub probe_latency_ewma: Option<Duration>,
    /// Request counters.
    pub metrics: RequestMetrics,
    /// The server's name, once connected.
    pub server_name: Option<String>,
    /// The server's version, once connected.
    pub server_version: Option<String>,
    /// The negotiated protocol version, once connected.
    pub protocol_version: Option<String>,
    /// The protocol era the session speaks, once connected.
    pub protocol_era: Option<crate::ProtocolEra>,
}

/// The result of a health check (the Python original's `health_check()`
/// dictionary): the probe's outcome, and the connection's snapshot after it.
/// The snapshot is a [`ConnectionInfo`], so each concept has one name; it
/// serialises flattened beside the probe's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct HealthReport {
    /// Whether the probe succeeded.
    pub ok: bool,
    /// Why the probe failed (`Not connected` when there was nothing to probe).
    pub error: Option<String>,
    /// How long the probe took, when it succeeded.
    #[serde(serialize_with = "serialize_opt_ms")]
    pub latency: Option<Duration>,
    /// Consecutive failed checks so far.
    pub consecutive_failures: u32,
    /// The probe was not sent: a request had just succeeded, which is
    /// proof of life enough (passive health; scheduled checks only).
    pub skipped: bool,
    /// Whether the connection has a live session after the check.
    pub connected: bool,
    /// The connection after the check: status, score, counters, uptime…
    #[serde(flatten)]
    pub connection: ConnectionInfo,
}

/// The outcome of one health probe alone, without the snapshot a
/// [`HealthReport`] carries: what a monitor of thousands of connections
/// needs ([`crate::Connection::scheduled_probe`]). The probe is recorded in
/// the health score all the same.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ProbeResult {
    /// Whether the probe succeeded (or was skipped: see `skipped`).
    pub ok: bool,
    /// Why the probe failed (`Not connected` when there was nothing to probe).
    pub error: Option<String>,
    /// How long the probe took, when it succeeded.
    pub latency: Option<Duration>,
    /// The probe was not sent: a request had just succeeded (passive health).
    pub skipped: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_strings_match_the_seed() {
        use ConnectionStatus::*;
        for (s, text) in [
            (Disconnected, "disconnected"),
            (Connecting, "connecting"),
            (Connected, "connected"),
            (Error, "error"),
            (Reconnecting, "reconnecting"),
        ] {
            assert_eq!(s.to_string(), text);
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(serde_json::Value::from(text))
            );
        }
        assert!(
            !Disconnected.can_become(Connected),
            "a connect always passes Connecting"
        );
        assert!(Connected.can_become(Reconnecting));
    }
}
