//! `Connection::start_probe` / `check_probe`: a probe that takes no
//! pending slot, no timer and no reply channel, recorded like
//! `scheduled_probe`, failed at its deadline when unanswered.

mod common;

use std::sync::Arc;
use std::time::Duration;

use mcp_conn_core::jsonrpc::JsonRpcError;
use mcp_conn_core::testing::{FakeServer, MockTransport, PingMode};
use mcp_conn_core::{
    Connection, ConnectionStatus, PendingProbe, ProbeResult, ProbeStart, ProtocolEra,
};
use serde_json::json;
use tokio::sync::Notify;
use tokio::time::Instant;

fn connection(ping: PingMode) -> (Connection, MockTransport) {
    let transport = MockTransport::serving(FakeServer {
        ping,
        ..Default::default()
    });
    let conn = Connection::with_config("light", transport.clone(), common::probing_config());
    (conn, transport)
}

fn sent(start: ProbeStart) -> PendingProbe {
    match start {
        ProbeStart::Sent(probe) => probe,
        other => panic!("not sent: {other:?}"),
    }
}

/// Waits (paused time: no real wait) for the answer's wake-up, then checks.
async fn answer(conn: &Connection, probe: PendingProbe, answered: &Notify) -> ProbeResult {
    common::within("the answer", answered.notified()).await;
    conn.check_probe(probe, Instant::now())
        .unwrap_or_else(|p| panic!("answered, so decided: {p:?}"))
}

#[tokio::test(start_paused = true)]
async fn an_answered_probe_is_alive_and_counted() {
    let (conn, _) = connection(PingMode::Answer);
    match conn.start_probe(None) {
        ProbeStart::Finished(r) => assert_eq!(r.error.as_deref(), Some("Not connected")),
        other => panic!("{other:?}"),
    }
    conn.connect().await.expect("connects");
    let answered = Arc::new(Notify::new());
    let probe = sent(conn.start_probe(Some(answered.clone())));
    assert_eq!(probe.deadline() - Instant::now(), Duration::from_secs(1));
    let result = answer(&conn, probe, &answered).await;
    assert!(
        result.ok && !result.skipped && result.error.is_none(),
        "{result:?}"
    );
    assert!(result.latency.is_some());
    let metrics = conn.info().metrics;
    assert_eq!(metrics.requests_ok, 1, "counted like a request probe");
    assert_eq!(metrics.unmatched_responses, 0, "its answer was taken");
    conn.disconnect().await;
}

#[tokio::test(start_paused = true)]
async fn a_server_without_ping_is_alive() {
    let (conn, _) = connection(PingMode::MethodNotFound);
    conn.connect().await.expect("connects");
    let answered = Arc::new(Notify::new());
    let probe = sent(conn.start_probe(Some(answered.clone())));
    let result = answer(&conn, probe, &answered).await;
    assert!(result.ok, "{result:?}");
    conn.disconnect().await;
}

#[tokio::test(start_paused = true)]
async fn an_error_answer_fails_the_probe_with_the_servers_words() {
    let (conn, _t, mut server) = common::scripted(common::probing_config());
    let (_client, mut link) = common::connect(&conn, &mut server).await;
    let answered = Arc::new(Notify::new());
    let probe = sent(conn.start_probe(Some(answered.clone())));
    let ping = common::within("ping", link.expect_method("ping")).await;
    link.respond_error(ping.id, JsonRpcError::new(-32000, "overloaded, try later"))
        .await;
    let result = answer(&conn, probe, &answered).await;
    assert!(!result.ok, "{result:?}");
    let error = result.error.unwrap_or_default();
    assert!(error.contains("overloaded, try later"), "{error}");
    assert_eq!(conn.info().metrics.requests_failed, 1);
    conn.disconnect().await;
}

#[tokio::test(start_paused = true)]
async fn unanswered_probes_fail_at_their_deadline_and_replace_the_session() {
    let (conn, transport, mut server) = common::scripted(common::probing_config());
    let (_client, mut link) = common::connect(&conn, &mut server).await;
    for _ in 0..2 {
        let probe = sent(conn.start_probe(None));
        // The server has it, and does not answer.
        common::within("ping", link.expect_method("ping")).await;
        let probe = conn
            .check_probe(probe, Instant::now())
            .expect_err("still waiting before its deadline");
        tokio::time::sleep_until(probe.deadline()).await;
        let failed = conn
            .check_probe(probe, Instant::now())
            .expect("decided at the deadline");
        assert!(!failed.ok && failed.latency.is_none(), "{failed:?}");
        assert!(
            failed
                .error
                .as_deref()
                .is_some_and(|e| e.contains("timed out")),
            "{failed:?}"
        );
    }
    assert_eq!(conn.info().metrics.health_checks_failed, 2);
    // Two failures in a row: the supervisor reconnects.
    common::within("a second connect", transport.wait_for_connects(2)).await;
    assert!(conn.health_score() < 1.0);
    conn.disconnect().await;
}

#[tokio::test(start_paused = true)]
async fn a_probe_of_a_session_that_ended_fails_at_once() {
    let (conn, transport) = connection(PingMode::Ignore);
    conn.connect().await.expect("connects");
    let probe = sent(conn.start_probe(None));
    transport.kill_links();
    // Long before the deadline (1 s): the link's end is enough.
    common::wait_status(&conn, ConnectionStatus::Reconnecting).await;
    assert!(Instant::now() < probe.deadline());
    let failed = conn
        .check_probe(probe, Instant::now())
        .expect("decided: the session is gone");
    assert!(!failed.ok, "{failed:?}");
    assert!(
        !failed.error.as_deref().unwrap_or("").contains("timed out"),
        "not a timeout: {failed:?}"
    );
    conn.disconnect().await;
}

#[tokio::test(start_paused = true)]
async fn the_stateless_era_has_no_ping_so_no_light_probe() {
    let (conn, _t, mut server) = common::scripted(common::probing_config());
    let (client, _link) = common::within("connect", async {
        tokio::join!(conn.connect(), async {
            let link = {
                let mut link = server.accept().await;
                let probe = link.expect_method("server/discover").await;
                link.respond(
                    probe.id,
                    json!({"resultType": "complete", "supportedVersions": ["2026-07-28"],
                           "capabilities": {}, "ttlMs": 0, "cacheScope": "private"}),
                )
                .await;
                link
            };
            link
        })
    })
    .await;
    assert_eq!(
        client.expect("connects").protocol_era(),
        Some(ProtocolEra::Stateless)
    );
    assert!(
        matches!(conn.start_probe(None), ProbeStart::Unavailable),
        "the caller probes the usual way (server/discover)"
    );
    conn.disconnect().await;
}
