//! `Connection::scheduled_probe`: the probe's outcome without a snapshot,
//! recorded like `scheduled_health_check`.

mod common;

use std::time::Duration;

use mcp_conn_core::testing::{FakeServer, MockTransport, PingMode};
use mcp_conn_core::Connection;
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn a_probe_reports_its_outcome_and_is_skipped_after_traffic() {
    let conn = Connection::with_config(
        "p",
        MockTransport::serving(FakeServer::default()),
        common::probing_config(),
    );
    let before = conn.scheduled_probe().await;
    assert!(!before.ok);
    assert_eq!(before.error.as_deref(), Some("Not connected"));

    let client = conn.connect().await.expect("connects");
    let probe = conn.scheduled_probe().await;
    assert!(
        probe.ok && !probe.skipped && probe.error.is_none(),
        "{probe:?}"
    );
    assert!(probe.latency.is_some());
    assert_eq!(conn.info().metrics.requests_ok, 1, "a ping was sent");

    // A request that succeeds after the last probe is proof of life.
    tokio::time::sleep(Duration::from_secs(1)).await;
    client
        .call_tool("echo", json!({"text": "x"}))
        .await
        .expect("answered");
    let skipped = conn.scheduled_probe().await;
    assert!(skipped.ok && skipped.skipped, "{skipped:?}");
    assert_eq!(conn.info().metrics.probes_skipped, 1);
    conn.disconnect().await;
}

#[tokio::test(start_paused = true)]
async fn unanswered_probes_fail_and_replace_the_session() {
    let transport = MockTransport::serving(FakeServer {
        ping: PingMode::Ignore,
        ..Default::default()
    });
    let conn = Connection::with_config("p", transport.clone(), common::probing_config());
    conn.connect().await.expect("connects");
    for _ in 0..2 {
        let failed = conn.scheduled_probe().await;
        assert!(!failed.ok && !failed.skipped, "{failed:?}");
        assert!(failed.error.is_some() && failed.latency.is_none());
    }
    // Two failures in a row: the supervisor reconnects.
    common::within("a second connect", transport.wait_for_connects(2)).await;
    assert!(conn.health_score() < 1.0);
    conn.disconnect().await;
}
