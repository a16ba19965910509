//! Uptime, disconnect and drop: nothing leaks, nothing hangs, nothing panics.

mod common;

use std::time::Duration;

use mcp_conn_core::testing::{FakeServer, MockTransport};
use mcp_conn_core::{Connection, ConnectionStatus, Error};
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn uptime_counts_the_current_session_and_past_ones() {
    let (conn, _t, mut server) = common::scripted(common::config());
    assert_eq!(conn.info().total_uptime, Duration::ZERO);
    let (_client, link) = common::connect(&conn, &mut server).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        conn.info().total_uptime,
        Duration::from_secs(10),
        "the live session counts"
    );
    drop(link);
    common::wait_status(&conn, ConnectionStatus::Reconnecting).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // down time does not count
    assert_eq!(conn.info().total_uptime, Duration::from_secs(10));
    let _link = common::handshake_next(&mut server).await;
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(conn.info().total_uptime, Duration::from_secs(15));
    assert!(conn.info().last_connected.is_some());
}

#[tokio::test]
async fn disconnect_fails_pending_requests_with_closed_and_closes_the_link() {
    let (conn, _t, mut server) = common::scripted(common::config());
    let (client, mut link) = common::connect(&conn, &mut server).await;
    conn.start_monitoring().await;
    let call = tokio::spawn({
        let c = client.clone();
        async move { c.call_tool("echo", json!({})).await }
    });
    common::within("call", link.expect_method("tools/call")).await;
    common::within("disconnect", conn.disconnect()).await;
    assert_eq!(conn.status(), ConnectionStatus::Disconnected);
    assert!(!conn.is_monitoring(), "disconnect stops monitoring");
    let err = call.await.expect("task").expect_err("fails");
    assert!(matches!(err, Error::Closed { .. }), "{err}");
    assert_eq!(
        common::within("closed", link.recv()).await,
        None,
        "the link was closed"
    );
    assert!(matches!(client.ping().await, Err(Error::Closed { .. })));
    conn.disconnect().await; // idempotent
                             // And connect() brings it back.
    let (_c, _l) = common::connect(&conn, &mut server).await;
    assert_eq!(conn.status(), ConnectionStatus::Connected);
}

#[tokio::test]
async fn disconnect_before_connect_is_harmless() {
    let conn = Connection::new("never", MockTransport::serving(FakeServer::default()));
    conn.disconnect().await;
    conn.stop_monitoring().await;
    assert_eq!(conn.status(), ConnectionStatus::Disconnected);
    assert!(matches!(conn.client(), Err(Error::NotConnected { .. })));
    assert!(!conn.is_connected());
}

#[tokio::test]
async fn dropping_the_connection_closes_the_link_and_fails_requests() {
    let (conn, _t, mut server) = common::scripted(common::config());
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let call = tokio::spawn({
        let c = client.clone();
        async move { c.call_tool("echo", json!({})).await }
    });
    common::within("call", link.expect_method("tools/call")).await;
    drop(conn);
    let err = common::within("failure", call)
        .await
        .expect("task")
        .expect_err("fails");
    assert!(matches!(err, Error::Closed { .. }), "{err}");
    assert_eq!(
        common::within("closed", link.recv()).await,
        None,
        "the link was closed"
    );
}

#[test]
fn dropping_after_the_runtime_is_gone_does_not_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let conn = Connection::new("late", MockTransport::serving(FakeServer::default()));
    let client = runtime.block_on(conn.connect()).expect("connects");
    drop(runtime);
    drop(client);
    drop(conn);
}

#[tokio::test]
async fn info_reports_the_seed_fields() {
    let conn = Connection::new("info", MockTransport::serving(FakeServer::default()));
    conn.connect().await.expect("connects");
    let v = serde_json::to_value(conn.info()).expect("serialises");
    assert_eq!(v["name"], "info");
    assert_eq!(v["status"], "connected");
    assert_eq!(v["transport_type"], "memory");
    assert_eq!(v["connection_count"], 1);
    assert_eq!(v["server_name"], "fake-server");
    assert_eq!(v["protocol_version"], "2025-11-25");
    for key in [
        "last_connected",
        "last_error",
        "reconnect_attempts",
        "health_score",
        "error_count",
        "total_uptime",
        "metrics",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
}
