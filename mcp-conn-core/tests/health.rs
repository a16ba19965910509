//! Health checks, the score, monitoring, and reconnect on repeated failures.

mod common;

use std::time::Duration;

use mcp_conn_core::testing::{FakeServer, MockTransport, PingMode};
use mcp_conn_core::{health_score, Connection, ConnectionConfig, ConnectionStatus, HealthProbe};
use serde_json::json;
use tokio::time::Instant;

fn config() -> ConnectionConfig {
    ConnectionConfig {
        health_check_timeout: Duration::from_secs(2),
        ..common::config()
    }
}

#[tokio::test(start_paused = true)]
async fn probes_feed_the_seed_score_and_k_failures_reconnect() {
    // The server answers everything but ping, so every probe times out.
    let transport = MockTransport::serving(FakeServer {
        ping: PingMode::Ignore,
        ..Default::default()
    });
    let conn = Connection::with_config("slow", transport.clone(), config());
    conn.connect().await.expect("connects");
    assert_eq!(conn.health_score(), 1.0, "no checks yet");

    let first = conn.health_check().await;
    assert!(!first.ok);
    assert!(
        first
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("timed out"),
        "{first:?}"
    );
    // The connect (a success), then the probe (a failure, counted once
    // although it was a request timeout too).
    assert_eq!(first.connection.health_score, health_score([true, false]));
    assert!(!conn.is_healthy(0.7));
    assert_eq!(
        transport.connect_count(),
        1,
        "one failure is not enough to reconnect"
    );
    conn.health_check().await;
    assert_eq!(transport.connect_count(), 1);

    let third = conn.health_check().await;
    assert_eq!(third.consecutive_failures, 3);
    // The third failure replaces the session: reconnect after one backoff step.
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    common::within("reconnect", transport.wait_for_connects(2)).await;
    assert_eq!(conn.info().metrics.health_checks_failed, 3);
    assert_eq!(
        conn.info().error_count,
        4,
        "three probes and the replaced link"
    );
}

#[tokio::test(start_paused = true)]
async fn the_score_follows_mixed_outcomes() {
    let (conn, _t, mut server) = common::scripted(ConnectionConfig {
        max_consecutive_health_failures: 0,
        ..config()
    });
    let (_client, mut link) = common::connect(&conn, &mut server).await;
    let script = [true, false, true, true, false, false, true];
    for (i, ok) in script.iter().enumerate() {
        let (report, ()) = common::within("join", async {
            tokio::join!(conn.health_check(), async {
                let ping = link.expect_method("ping").await;
                if *ok {
                    link.respond(ping.id, json!({})).await;
                } else {
                    link.respond_error(
                        ping.id,
                        mcp_conn_core::jsonrpc::JsonRpcError::internal("busy"),
                    )
                    .await;
                }
            })
        })
        .await;
        assert_eq!(report.ok, *ok);
        // The connect is the first outcome; RPC errors of a live server
        // answering a probe count as failed probes.
        let expected = std::iter::once(true).chain(script[..=i].iter().copied());
        assert_eq!(report.connection.health_score, health_score(expected));
    }
    assert_eq!(
        conn.health_score(),
        health_score(std::iter::once(true).chain(script))
    );
    assert_eq!(
        conn.status(),
        ConnectionStatus::Connected,
        "threshold 0 never reconnects"
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_without_ping_counts_as_alive() {
    let transport = MockTransport::serving(FakeServer {
        ping: PingMode::MethodNotFound,
        ..Default::default()
    });
    let conn = Connection::with_config("old", transport, config());
    conn.connect().await.expect("connects");
    let report = conn.health_check().await;
    assert!(report.ok, "{report:?}");
    assert_eq!(conn.health_score(), 1.0);
}

#[tokio::test(start_paused = true)]
async fn health_check_when_not_connected_reports_it() {
    let conn = Connection::new("idle", MockTransport::serving(FakeServer::default()));
    let report = conn.health_check().await;
    assert!(!report.ok);
    assert!(!report.connected);
    assert_eq!(report.error.as_deref(), Some("Not connected"));
    assert_eq!(report.connection.status, ConnectionStatus::Disconnected);
    // The report serialises with the Python original's field names and
    // status strings, but for one name per concept: `total_uptime`, as in
    // the connection's info (the original said `uptime` here).
    let v = serde_json::to_value(&report).expect("serialises");
    for key in [
        "name",
        "status",
        "connected",
        "health_score",
        "last_connected",
        "last_error",
        "reconnect_attempts",
        "connection_count",
        "error_count",
        "total_uptime",
        "transport_type",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert_eq!(v["status"], "disconnected");
    assert_eq!(v["transport_type"], "memory");
}

#[tokio::test(start_paused = true)]
async fn monitoring_probes_at_the_interval_and_stops() {
    let config = ConnectionConfig {
        health_check_interval: Duration::from_secs(30),
        ..config()
    };
    let (conn, _t, mut server) = common::scripted(config);
    let (_client, mut link) = common::connect(&conn, &mut server).await;
    let started = Instant::now();
    conn.start_monitoring().await;
    conn.start_monitoring().await; // idempotent
    assert!(conn.is_monitoring());
    for n in 1..=3u64 {
        let ping = common::within("probe", link.expect_method("ping")).await;
        assert_eq!(Instant::now() - started, Duration::from_secs(30 * n));
        link.respond(ping.id, json!({})).await;
    }
    conn.stop_monitoring().await;
    assert!(!conn.is_monitoring());
    let quiet = tokio::time::timeout(Duration::from_secs(600), link.recv()).await;
    assert!(quiet.is_err(), "no probe after stop_monitoring: {quiet:?}");
    let info = conn.info();
    assert!(info.last_probe_latency.is_some());
    assert_eq!(info.health_score, 1.0);
}

#[tokio::test(start_paused = true)]
async fn monitoring_finds_a_hung_server_and_reconnects() {
    let config = ConnectionConfig {
        health_check_interval: Duration::from_secs(10),
        max_consecutive_health_failures: 2,
        ..config()
    };
    let (conn, transport, mut server) = common::scripted(config);
    let (_client, mut hung) = common::connect(&conn, &mut server).await;
    conn.start_monitoring().await;
    // The server reads but never answers: two probes time out.
    let (_new_link, ()) = common::within("join", async {
        tokio::join!(common::handshake_next(&mut server), async {
            // The first timed-out probe is cancelled; after the second the
            // link is replaced (closed), whether or not its cancel got out.
            let mut seen = Vec::new();
            while let Some(m) = hung.recv().await {
                seen.push(m.method().unwrap_or_default().to_owned());
            }
            assert_eq!(seen[..3], ["ping", "notifications/cancelled", "ping"]);
            assert!(seen.len() <= 4, "{seen:?}");
        })
    })
    .await;
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    assert_eq!(transport.connect_count(), 2);
    // 10 s + 2 s timeout, 10 s + 2 s timeout, then 1 s backoff.
    assert_eq!(
        transport.connect_times()[1] - transport.connect_times()[0],
        Duration::from_secs(25)
    );
    assert!(
        conn.is_monitoring(),
        "monitoring goes on with the new session"
    );
}

#[tokio::test(start_paused = true)]
async fn the_list_tools_probe_is_a_strategy() {
    let config = ConnectionConfig {
        health_probe: HealthProbe::ListTools,
        ..config()
    };
    let (conn, _t, mut server) = common::scripted(config);
    let (_client, mut link) = common::connect(&conn, &mut server).await;
    let (report, ()) = common::within("join", async {
        tokio::join!(conn.health_check(), async {
            let req = link.expect_method("tools/list").await;
            link.respond(req.id, json!({"tools": []})).await;
        })
    })
    .await;
    assert!(report.ok);
    assert!(report.latency.is_some());
}

/// The rule on `Connection::health_score`: never connected or in `Error` is
/// 0.0; connects, lost links and request timeouts count; tool errors do not.
#[tokio::test(start_paused = true)]
async fn health_is_honest_about_connects_lost_links_and_timeouts() {
    use mcp_conn_core::testing::ConnectOutcome;
    use mcp_conn_core::TransportError;

    // Never connected: 0.0, not a perfect score.
    let idle = Connection::new("idle", MockTransport::serving(FakeServer::default()));
    assert_eq!(idle.health_score(), 0.0);
    assert!(!idle.is_healthy(0.7));

    // A connect that fails, with no retry: Error, 0.0. (This server never
    // answers a ping, for the timeout below.)
    let transport = MockTransport::serving(FakeServer {
        ping: PingMode::Ignore,
        ..Default::default()
    });
    transport.script_connects([
        ConnectOutcome::Refuse(TransportError::NotFound {
            program: "npx".into(),
        }),
        ConnectOutcome::Accept,
    ]);
    let conn = Connection::with_config(
        "flaky",
        transport.clone(),
        ConnectionConfig {
            max_consecutive_health_failures: 0,
            request_timeout: Duration::from_secs(1),
            ..config()
        },
    );
    assert!(conn.connect().await.is_err());
    assert_eq!(conn.status(), ConnectionStatus::Error);
    assert_eq!(conn.health_score(), 0.0);
    assert_eq!(conn.info().health_score, 0.0);

    // Connected after a failed attempt: the failure still weighs.
    let client = conn.connect().await.expect("the second attempt connects");
    assert_eq!(conn.health_score(), health_score([false, true]));
    assert!(!conn.is_healthy(0.7), "one success after a failure is 2/3");

    // A tool error from a live server is not a health outcome, nor is a
    // call that works.
    let before = conn.health_score();
    let unknown = client.call_tool("no-such-tool", json!({})).await;
    assert!(unknown.is_err(), "{unknown:?}");
    client
        .call_tool("echo", json!({"text": "hi"}))
        .await
        .expect("echo works");
    assert_eq!(conn.health_score(), before);

    // A request that times out is a failure.
    let slow = client
        .ping_with(&mcp_conn_core::RequestOptions::new().timeout(Duration::from_millis(100)))
        .await;
    assert!(slow.is_err_and(|e| e.is_timeout()));
    assert_eq!(conn.info().metrics.requests_timed_out, 1);
    assert_eq!(conn.health_score(), health_score([false, true, false]));
    assert_eq!(
        conn.info().health_score,
        health_score([false, true, false]),
        "counted once, however often it is read"
    );
}

/// A lost link is a failure in the score, and the reconnect a success.
#[tokio::test(start_paused = true)]
async fn a_lost_link_and_its_reconnect_feed_the_score() {
    let transport = MockTransport::serving(FakeServer::default());
    let conn = Connection::with_config("lossy", transport.clone(), config());
    conn.connect().await.expect("connects");
    assert_eq!(conn.health_score(), 1.0, "connected, nothing else yet");
    transport.kill_links();
    common::within("reconnect", transport.wait_for_connects(2)).await;
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    assert_eq!(conn.health_score(), health_score([true, false, true]));
}
