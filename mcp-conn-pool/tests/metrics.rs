//! Feature `metrics`: every pooled server reports through the `metrics`
//! facade under its name in the pool, and a removed server's gauges go
//! back to 0.

use std::collections::HashMap;

use mcp_conn_core::telemetry;
use mcp_conn_core::testing::{within, FakeServer, MockTransport};
use mcp_conn_pool::ConnectionPool;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;

/// Name and labels (sorted) of a series, as text: `name{k=v,…}`.
fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

/// Adds up the snapshots (each holds what changed since the last one).
fn update(totals: &mut HashMap<String, f64>, snapshotter: &Snapshotter) {
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
        let v = match value {
            DebugValue::Counter(n) => n as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(h) => h.len() as f64,
        };
        *totals.entry(series(key.name(), &labels)).or_default() += v;
    }
}

fn get(totals: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    totals
        .get(&series(name, labels))
        .copied()
        .unwrap_or_default()
}

#[tokio::test]
async fn pooled_servers_report_under_their_names() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let mut totals = HashMap::new();

    let pool = ConnectionPool::new();
    pool.insert("alpha", MockTransport::serving(FakeServer::default()))
        .expect("inserted");
    pool.insert("beta", MockTransport::serving(FakeServer::default()))
        .expect("inserted");
    for (name, outcome) in within("connect_all", pool.connect_all()).await {
        assert!(outcome.is_ok(), "{name}");
    }
    for _ in 0..3 {
        within("call", pool.call_tool("beta__add", json!({"a": 1, "b": 2})))
            .await
            .expect("answered");
    }
    update(&mut totals, &snapshotter);
    let call = [("server", "beta"), ("method", "tools/call")];
    assert_eq!(get(&totals, telemetry::REQUESTS_TOTAL, &call), 3.0);
    assert_eq!(
        get(&totals, telemetry::REQUEST_DURATION_SECONDS, &call),
        3.0,
        "one duration per call"
    );
    for server in ["alpha", "beta"] {
        let s = [("server", server)];
        assert_eq!(get(&totals, telemetry::CONNECTED, &s), 1.0, "{server}");
    }

    within("remove", pool.remove("alpha"))
        .await
        .expect("removed");
    within("shutdown", pool.shutdown()).await;
    update(&mut totals, &snapshotter);
    for server in ["alpha", "beta"] {
        let s = [("server", server)];
        assert_eq!(get(&totals, telemetry::CONNECTED, &s), 0.0, "{server}");
    }
}
