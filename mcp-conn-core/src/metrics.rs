//! Monotonic counters kept by the engine and the connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use serde::Serialize;

use crate::telemetry::{Level, Telemetry};

/// Live counters, shared by a connection and every session it runs.
///
/// `repr(C)`: the fields in the order written, what a health probe touches
/// first and together (one or two cache lines, as the allocation's start
/// falls).
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct Counters {
    pub(crate) requests_ok: AtomicU64,
    pub(crate) requests_timed_out: AtomicU64,
    /// When a request last succeeded (passive health): the proof of life
    /// that lets a scheduled probe be skipped.
    pub(crate) last_ok: parking_lot::Mutex<Option<tokio::time::Instant>>,
    pub(crate) requests_failed: AtomicU64,
    pub(crate) unmatched_responses: AtomicU64,
    pub(crate) invalid_messages: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) health_checks_failed: AtomicU64,
    pub(crate) tools_list_changed: AtomicU64,
    pub(crate) probes_skipped: AtomicU64,
    /// Requests waiting for a slot under `max_in_flight` (a gauge).
    pub(crate) queued: GaugeCell,
    /// Requests sent and not answered yet (a gauge).
    pub(crate) in_flight: GaugeCell,
    /// The per-server limit of requests in flight, if any.
    pub(crate) limit: Option<Arc<Semaphore>>,
    /// The same events through the `metrics` facade (feature `metrics`;
    /// nothing without it).
    pub(crate) telemetry: Telemetry,
}

/// A gauge the connection keeps, mirrored to the `metrics` facade.
#[derive(Debug, Default)]
pub(crate) struct GaugeCell {
    value: AtomicU64,
    mirror: Level,
}

impl GaugeCell {
    fn new(mirror: Level) -> Self {
        GaugeCell {
            value: AtomicU64::new(0),
            mirror,
        }
    }
}

/// Decrements a gauge when dropped (the request was answered, failed, timed
/// out or abandoned).
pub(crate) struct Gauge<'a>(&'a GaugeCell);

impl<'a> Gauge<'a> {
    pub(crate) fn up(gauge: &'a GaugeCell) -> Self {
        gauge.value.fetch_add(1, Ordering::Relaxed);
        gauge.mirror.up();
        Gauge(gauge)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.value.fetch_sub(1, Ordering::Relaxed);
        self.0.mirror.down();
    }
}

impl Counters {
    /// The counters of the connection `name`, whose requests in flight are
    /// limited by `limit` (if any).
    pub(crate) fn new(name: &Arc<str>, limit: Option<Arc<Semaphore>>) -> Self {
        let telemetry = Telemetry::new(name);
        Counters {
            queued: GaugeCell::new(telemetry.queued()),
            in_flight: GaugeCell::new(telemetry.in_flight()),
            limit,
            telemetry,
            ..Counters::default()
        }
    }

    /// A successful reconnect.
    pub(crate) fn reconnected(&self) {
        Self::bump(&self.reconnects);
        self.telemetry.reconnected();
    }

    /// A scheduled probe skipped (passive health).
    pub(crate) fn probe_skipped(&self) {
        Self::bump(&self.probes_skipped);
        self.telemetry.probe_skipped();
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> RequestMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RequestMetrics {
            requests_ok: get(&self.requests_ok),
            requests_failed: get(&self.requests_failed),
            requests_timed_out: get(&self.requests_timed_out),
            unmatched_responses: get(&self.unmatched_responses),
            invalid_messages: get(&self.invalid_messages),
            reconnects: get(&self.reconnects),
            health_checks_failed: get(&self.health_checks_failed),
            tools_list_changed: get(&self.tools_list_changed),
            probes_skipped: get(&self.probes_skipped),
            queued: get(&self.queued.value),
            in_flight: get(&self.in_flight.value),
        }
    }
}

/// A snapshot of a connection's counters. Each only grows, but for the two
/// gauges `queued` and `in_flight`. Request counters
/// cover every request sent on a live session (health probes included); the
/// `initialize` handshake is part of connecting and is not counted here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RequestMetrics {
    /// Requests answered with a result.
    pub requests_ok: u64,
    /// Requests that failed (server error, link lost, …), timeouts excluded.
    pub requests_failed: u64,
    /// Requests that timed out.
    pub requests_timed_out: u64,
    /// Responses whose id matched no pending request (dropped).
    pub unmatched_responses: u64,
    /// Incoming messages the engine could not use (dropped).
    pub invalid_messages: u64,
    /// Successful reconnects.
    pub reconnects: u64,
    /// Health checks that failed.
    pub health_checks_failed: u64,
    /// `notifications/tools/list_changed` received (a cache of the tool
    /// list is stale when this moved).
    pub tools_list_changed: u64,
    /// Scheduled probes skipped because real traffic had just succeeded
    /// (passive health).
    pub probes_skipped: u64,
    /// Requests waiting now for a slot under
    /// [`crate::ConnectionConfig::max_in_flight`].
    pub queued: u64,
    /// Requests in flight now.
    pub in_flight: u64,
}
