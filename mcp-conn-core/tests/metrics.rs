//! The `metrics` facade (feature `metrics`): what a recorder sees for
//! requests, failures, durations, gauges, status changes, reconnects and
//! probes.
//!
//! Each test installs a `DebuggingRecorder` as the thread's default recorder
//! before it creates its connection; `#[tokio::test]` runs everything on
//! that one thread, and the connection keeps the handles it registered.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use mcp_conn_core::jsonrpc::{JsonRpcError, Message, Request};
use mcp_conn_core::telemetry::{self, method_label};
use mcp_conn_core::testing::{FakeServer, MockLink, MockTransport};
use mcp_conn_core::{Connection, ConnectionConfig, ConnectionStatus, RequestOptions};
use metrics::Unit;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use serde_json::json;

type Labels = Vec<(String, String)>;

/// What the recorder saw since the start. `Snapshotter::snapshot` hands out
/// what changed since the last one (counters and gauges are reset to 0,
/// histograms emptied), so this adds the snapshots up; every gauge of the
/// crate moves by increments, so the sums are the gauges' values.
struct Seen {
    snapshotter: Snapshotter,
    /// This thread's default recorder while the test runs.
    _guard: metrics::LocalRecorderGuard<'static>,
    counters: HashMap<(String, Labels), u64>,
    gauges: HashMap<(String, Labels), f64>,
    histograms: HashMap<(String, Labels), Vec<f64>>,
    units: HashMap<String, Unit>,
}

impl Seen {
    /// Installs a fresh `DebuggingRecorder` as this thread's default
    /// recorder (leaked: it lives as long as the test) and watches it.
    fn recording() -> Seen {
        let recorder: &'static DebuggingRecorder = Box::leak(Box::new(DebuggingRecorder::new()));
        Seen {
            snapshotter: recorder.snapshotter(),
            _guard: metrics::set_default_local_recorder(recorder),
            counters: HashMap::new(),
            gauges: HashMap::new(),
            histograms: HashMap::new(),
            units: HashMap::new(),
        }
    }

    fn update(&mut self) {
        for (key, unit, _help, value) in self.snapshotter.snapshot().into_vec() {
            let (kind, key) = key.into_parts();
            let mut labels: Labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            let name = key.name().to_owned();
            if let Some(unit) = unit {
                self.units.insert(name.clone(), unit);
            }
            match (kind, value) {
                (MetricKind::Counter, DebugValue::Counter(n)) => {
                    *self.counters.entry((name, labels)).or_default() += n
                }
                (MetricKind::Gauge, DebugValue::Gauge(v)) => {
                    *self.gauges.entry((name, labels)).or_default() += v.into_inner()
                }
                (MetricKind::Histogram, DebugValue::Histogram(vs)) => self
                    .histograms
                    .entry((name, labels))
                    .or_default()
                    .extend(vs.into_iter().map(|v| v.into_inner())),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn key(name: &str, labels: &[(&str, &str)]) -> (String, Labels) {
        let mut labels: Labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.sort();
        (name.to_owned(), labels)
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.counters
            .get(&Self::key(name, labels))
            .copied()
            .unwrap_or(0)
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.gauges
            .get(&Self::key(name, labels))
            .copied()
            .unwrap_or(0.0)
    }

    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.histograms
            .get(&Self::key(name, labels))
            .cloned()
            .unwrap_or_default()
    }

    /// Every counter series of `name`, with its labels.
    fn series(&self, name: &str) -> Vec<(Labels, u64)> {
        let mut all: Vec<_> = self
            .counters
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, l), v)| (l.clone(), *v))
            .collect();
        all.sort();
        all
    }

    /// The value of each `mcp_conn_status` series of `server`.
    fn statuses(&self, server: &str) -> Vec<(&'static str, f64)> {
        [
            ConnectionStatus::Disconnected,
            ConnectionStatus::Connecting,
            ConnectionStatus::Connected,
            ConnectionStatus::Reconnecting,
            ConnectionStatus::Error,
        ]
        .into_iter()
        .map(|s| {
            let v = self.gauge(
                telemetry::STATUS,
                &[("server", server), ("status", s.as_str())],
            );
            (s.as_str(), v)
        })
        .collect()
    }
}

/// The next request of `method`, past the notifications before it (a
/// timed-out request's `notifications/cancelled`).
async fn next_request(link: &mut MockLink, method: &str) -> Request {
    common::within(method, async {
        loop {
            match link.recv().await {
                Some(Message::Request(r)) if r.method == method => return r,
                Some(Message::Notification(_)) => continue,
                other => panic!("expected {method}, got {other:?}"),
            }
        }
    })
    .await
}

const MOCK: (&str, &str) = ("server", "mock");
const CALL: (&str, &str) = ("method", "tools/call");

#[tokio::test(start_paused = true)]
async fn a_successful_call_counts_one_request_and_one_duration() {
    let mut seen = Seen::recording();

    let (conn, _transport, mut server) = common::scripted(common::config());
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let c = client.clone();
    let call = tokio::spawn(async move { c.call_tool("echo", json!({"text": "hi"})).await });
    let req = common::within("call", link.expect_method("tools/call")).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    link.respond(req.id, json!({"content": []})).await;
    assert!(common::within("answer", call).await.expect("task").is_ok());

    seen.update();
    assert_eq!(seen.counter(telemetry::REQUESTS_TOTAL, &[MOCK, CALL]), 1);
    let durations = seen.histogram(telemetry::REQUEST_DURATION_SECONDS, &[MOCK, CALL]);
    assert_eq!(durations.len(), 1, "{durations:?}");
    assert!(
        (durations[0] - 0.25).abs() < 1e-9,
        "the duration is the paused clock's 250 ms: {durations:?}"
    );
    assert!(
        seen.series(telemetry::REQUEST_ERRORS_TOTAL).is_empty(),
        "no error series: {:?}",
        seen.series(telemetry::REQUEST_ERRORS_TOTAL)
    );
    // The handshake is part of connecting, not a request.
    assert_eq!(seen.series(telemetry::REQUESTS_TOTAL).len(), 1);
    assert_eq!(
        seen.units.get(telemetry::REQUEST_DURATION_SECONDS),
        Some(&Unit::Seconds)
    );
    assert_eq!(
        seen.units.get(telemetry::REQUESTS_TOTAL),
        Some(&Unit::Count)
    );
    conn.disconnect().await;
}

#[tokio::test(start_paused = true)]
async fn failures_are_counted_by_kind() {
    let mut seen = Seen::recording();

    let (conn, _transport, mut server) = common::scripted(common::config());
    let (client, mut link) = common::connect(&conn, &mut server).await;

    // The server's error.
    let c = client.clone();
    let call = tokio::spawn(async move { c.call_tool("echo", json!({})).await });
    let req = common::within("call", link.expect_method("tools/call")).await;
    link.respond_error(req.id, JsonRpcError::invalid_params("no text"))
        .await;
    assert!(common::within("answer", call).await.expect("task").is_err());

    // A timeout.
    let opts = RequestOptions::new().timeout(Duration::from_secs(2));
    let c = client.clone();
    let call = tokio::spawn(async move { c.request_raw("tools/list", None, &opts).await });
    common::within("list", link.expect_method("tools/list")).await;
    let err = common::within("timeout", call)
        .await
        .expect("task")
        .expect_err("times out");
    assert!(err.is_timeout(), "{err}");

    // A caller that stops waiting.
    let c = client.clone();
    let call = tokio::spawn(async move { c.call_tool("echo", json!({"text": "x"})).await });
    next_request(&mut link, "tools/call").await;
    call.abort();
    let _ = call.await;

    seen.update();
    let errors = telemetry::REQUEST_ERRORS_TOTAL;
    assert_eq!(seen.counter(errors, &[MOCK, CALL, ("kind", "rpc")]), 1);
    assert_eq!(
        seen.counter(
            errors,
            &[MOCK, ("method", "tools/list"), ("kind", "timeout")]
        ),
        1
    );
    assert_eq!(
        seen.counter(errors, &[MOCK, CALL, ("kind", "cancelled")]),
        1
    );
    assert_eq!(seen.series(errors).len(), 3, "{:?}", seen.series(errors));
    // Every failure is a request too (errors / requests is the error ratio).
    assert_eq!(seen.counter(telemetry::REQUESTS_TOTAL, &[MOCK, CALL]), 2);
    let lists = [MOCK, ("method", "tools/list")];
    assert_eq!(seen.counter(telemetry::REQUESTS_TOTAL, &lists), 1);
    assert_eq!(
        seen.histogram(telemetry::REQUEST_DURATION_SECONDS, &lists),
        vec![2.0],
        "a timed-out request lasts its timeout"
    );
    conn.disconnect().await;
}

#[tokio::test(start_paused = true)]
async fn in_flight_and_queued_go_up_and_back_down() {
    let mut seen = Seen::recording();

    let config = ConnectionConfig {
        max_in_flight: Some(1),
        ..common::config()
    };
    let (conn, _transport, mut server) = common::scripted(config);
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let calls: Vec<_> = (0..3)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move { c.call_tool("echo", json!({ "text": i.to_string() })).await })
        })
        .collect();
    let first = common::within("first", link.expect_method("tools/call")).await;
    tokio::task::yield_now().await;
    seen.update();
    assert_eq!(seen.gauge(telemetry::REQUESTS_IN_FLIGHT, &[MOCK]), 1.0);
    assert_eq!(seen.gauge(telemetry::REQUESTS_QUEUED, &[MOCK]), 2.0);

    link.respond(first.id, json!({"content": []})).await;
    for _ in 0..2 {
        let r = common::within("next", link.expect_method("tools/call")).await;
        link.respond(r.id, json!({"content": []})).await;
    }
    for call in calls {
        assert!(common::within("call", call).await.expect("task").is_ok());
    }
    seen.update();
    assert_eq!(seen.gauge(telemetry::REQUESTS_IN_FLIGHT, &[MOCK]), 0.0);
    assert_eq!(seen.gauge(telemetry::REQUESTS_QUEUED, &[MOCK]), 0.0);
    assert_eq!(seen.counter(telemetry::REQUESTS_TOTAL, &[MOCK, CALL]), 3);
    // The same numbers as the connection's own counters.
    let m = conn.info().metrics;
    assert_eq!((m.in_flight, m.queued, m.requests_ok), (0, 0, 3));
    conn.disconnect().await;
}

#[tokio::test]
async fn the_status_gauges_follow_connect_and_disconnect() {
    let mut seen = Seen::recording();

    let conn = Connection::new("s1", MockTransport::serving(FakeServer::default()));
    seen.update();
    let one_of = |seen: &Seen, want: &str| {
        let statuses = seen.statuses("s1");
        for (status, v) in &statuses {
            let expected = if *status == want { 1.0 } else { 0.0 };
            assert_eq!(*v, expected, "{status} in {statuses:?}");
        }
    };
    one_of(&seen, "disconnected");
    assert_eq!(seen.gauge(telemetry::CONNECTED, &[("server", "s1")]), 0.0);

    common::within("connect", conn.connect())
        .await
        .expect("connects");
    seen.update();
    one_of(&seen, "connected");
    assert_eq!(seen.gauge(telemetry::CONNECTED, &[("server", "s1")]), 1.0);

    conn.disconnect().await;
    seen.update();
    one_of(&seen, "disconnected");
    assert_eq!(seen.gauge(telemetry::CONNECTED, &[("server", "s1")]), 0.0);

    common::within("connect", conn.connect())
        .await
        .expect("connects");
    seen.update();
    one_of(&seen, "connected");
    // Dropped: its supervisor ends on its next turn and the gauges go to 0.
    drop(conn);
    for _ in 0..100 {
        tokio::task::yield_now().await;
        seen.update();
        if seen.gauge(telemetry::CONNECTED, &[("server", "s1")]) == 0.0 {
            break;
        }
    }
    assert!(
        seen.statuses("s1").iter().all(|(_, v)| *v == 0.0),
        "a dropped connection shows no status: {:?}",
        seen.statuses("s1")
    );
    assert_eq!(seen.gauge(telemetry::CONNECTED, &[("server", "s1")]), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_reconnect_counts_and_the_status_shows_it() {
    let mut seen = Seen::recording();

    let transport = MockTransport::serving(FakeServer::default());
    let conn = Connection::with_config("s2", transport.clone(), common::config());
    common::within("connect", conn.connect())
        .await
        .expect("connects");
    let mut status = conn.subscribe();
    transport.kill_links();
    common::within(
        "reconnecting",
        status.wait_for(|s| *s == ConnectionStatus::Reconnecting),
    )
    .await
    .expect("status");
    seen.update();
    let s2 = [("server", "s2")];
    assert_eq!(seen.gauge(telemetry::CONNECTED, &s2), 0.0);
    assert_eq!(
        seen.gauge(
            telemetry::STATUS,
            &[("server", "s2"), ("status", "reconnecting")]
        ),
        1.0
    );
    assert_eq!(seen.counter(telemetry::RECONNECTS_TOTAL, &s2), 0);

    common::wait_status(&conn, ConnectionStatus::Connected).await;
    seen.update();
    assert_eq!(seen.counter(telemetry::RECONNECTS_TOTAL, &s2), 1);
    assert_eq!(seen.gauge(telemetry::CONNECTED, &s2), 1.0);
    assert_eq!(conn.info().metrics.reconnects, 1);
    conn.disconnect().await;
}

#[tokio::test(start_paused = true)]
async fn probes_are_counted_by_outcome_and_skipped_ones_apart() {
    let mut seen = Seen::recording();

    let (conn, _transport, mut server) = common::scripted(ConnectionConfig {
        health_check_timeout: Duration::from_secs(1),
        health_check_interval: Duration::from_secs(5),
        ..common::config()
    });
    let (client, mut link) = common::connect(&conn, &mut server).await;
    // One probe answered, one not.
    let (report, ping) = tokio::join!(conn.health_check(), async {
        let ping = common::within("ping", link.expect_method("ping")).await;
        link.respond(ping.id, json!({})).await;
    });
    let () = ping;
    assert!(report.ok);
    let (report, _) = tokio::join!(conn.health_check(), async {
        common::within("ping", link.expect_method("ping")).await
    });
    assert!(!report.ok);

    // A scheduled probe (every 5 s) right after a successful call is skipped.
    conn.start_monitoring().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c = client.clone();
    let call = tokio::spawn(async move { c.call_tool("echo", json!({"text": "x"})).await });
    let req = next_request(&mut link, "tools/call").await;
    link.respond(req.id, json!({"content": []})).await;
    assert!(common::within("answer", call).await.expect("task").is_ok());
    tokio::time::sleep(Duration::from_secs(4)).await;

    seen.update();
    let probes = telemetry::PROBES_TOTAL;
    assert_eq!(seen.counter(probes, &[MOCK, ("outcome", "ok")]), 1);
    assert_eq!(seen.counter(probes, &[MOCK, ("outcome", "failed")]), 1);
    assert_eq!(
        seen.counter(telemetry::PROBES_SKIPPED_TOTAL, &[MOCK]),
        conn.info().metrics.probes_skipped
    );
    assert!(seen.counter(telemetry::PROBES_SKIPPED_TOTAL, &[MOCK]) >= 1);
    // Probes are requests too (`ping`), as in `RequestMetrics`.
    assert_eq!(
        seen.counter(telemetry::REQUESTS_TOTAL, &[MOCK, ("method", "ping")]),
        2
    );
    conn.disconnect().await;
}

#[tokio::test(start_paused = true)]
async fn the_method_label_is_bounded() {
    let mut seen = Seen::recording();

    assert_eq!(method_label("tools/call"), "tools/call");
    assert_eq!(method_label("resources/read"), "resources/read");
    assert_eq!(method_label("x-vendor/anything"), "other");

    let (conn, _transport, mut server) = common::scripted(common::config());
    let (client, mut link) = common::connect(&conn, &mut server).await;
    for method in ["x-vendor/one", "x-vendor/two"] {
        let c = client.clone();
        let call = tokio::spawn(async move {
            c.request_raw(method, None, &RequestOptions::new())
                .await
                .map(drop)
        });
        let req = common::within("request", link.expect_method(method)).await;
        link.respond(req.id, json!({})).await;
        assert!(common::within("answer", call).await.expect("task").is_ok());
    }
    seen.update();
    assert_eq!(
        seen.series(telemetry::REQUESTS_TOTAL),
        vec![(
            vec![
                ("method".to_owned(), "other".to_owned()),
                ("server".to_owned(), "mock".to_owned())
            ],
            2
        )]
    );
    conn.disconnect().await;
}

#[tokio::test(start_paused = true)]
async fn a_call_that_cannot_get_a_slot_in_time_is_a_timeout() {
    let mut seen = Seen::recording();

    let config = ConnectionConfig {
        max_in_flight: Some(1),
        ..common::config()
    };
    let (conn, _transport, mut server) = common::scripted(config);
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let c = client.clone();
    let _slow = tokio::spawn(async move { c.call_tool("echo", json!({"text": "slow"})).await });
    common::within("slow", link.expect_method("tools/call")).await;
    let opts = RequestOptions::new().timeout(Duration::from_secs(3));
    let err = client
        .call_tool_with("echo", json!({"text": "x"}), &opts)
        .await
        .expect_err("no slot");
    assert!(err.is_timeout(), "{err}");

    seen.update();
    let timeout = [MOCK, CALL, ("kind", "timeout")];
    assert_eq!(seen.counter(telemetry::REQUEST_ERRORS_TOTAL, &timeout), 1);
    assert_eq!(
        seen.histogram(telemetry::REQUEST_DURATION_SECONDS, &[MOCK, CALL]),
        vec![3.0],
        "the wait for a slot is part of the duration"
    );
    assert_eq!(seen.gauge(telemetry::REQUESTS_QUEUED, &[MOCK]), 0.0);
    assert_eq!(seen.gauge(telemetry::REQUESTS_IN_FLIGHT, &[MOCK]), 1.0);
    conn.disconnect().await;
}
