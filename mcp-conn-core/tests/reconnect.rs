//! Reconnecting: at once on a dead link, single-flight, old link closed,
//! and `disconnect()` ends it all cleanly.

mod common;

use std::time::Duration;

use mcp_conn_core::testing::ConnectOutcome;
use mcp_conn_core::{ConnectionConfig, ConnectionStatus, Error, TransportError};
use serde_json::json;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_dead_link_starts_reconnecting_at_once() {
    let (conn, transport, mut server) = common::scripted(common::config());
    let (_client, link) = common::connect(&conn, &mut server).await;
    let mut status = conn.subscribe();
    let died = Instant::now();
    link.fail(TransportError::Exited {
        status: "signal 9".into(),
        stderr_tail: vec![],
    })
    .await;

    common::within(
        "status Reconnecting",
        status.wait_for(|s| *s == ConnectionStatus::Reconnecting),
    )
    .await
    .expect("status");
    assert_eq!(
        Instant::now(),
        died,
        "noticed without waiting for any health check"
    );
    assert!(conn.client().is_err());

    let (_link, ()) = common::within("join", async {
        tokio::join!(common::handshake_next(&mut server), async {
            common::within(
                "status Connected",
                status.wait_for(|s| *s == ConnectionStatus::Connected),
            )
            .await
            .expect("status");
        })
    })
    .await;
    assert_eq!(
        transport.connect_times()[1] - died,
        Duration::from_secs(1),
        "one backoff step"
    );
    let info = conn.info();
    assert_eq!(info.metrics.reconnects, 1);
    assert_eq!(info.connection_count, 2);
    assert!(
        info.last_error.is_none(),
        "a good connect clears the last error"
    );
    assert!(conn.client().is_ok());
}

#[tokio::test]
async fn concurrent_connects_share_one_attempt() {
    let (conn, transport, mut server) = common::scripted(common::config());
    let conn = std::sync::Arc::new(conn);
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let conn = conn.clone();
            tokio::spawn(async move { conn.connect().await })
        })
        .collect();
    let _link = common::handshake_next(&mut server).await;
    let mut clients = Vec::new();
    for c in callers {
        clients.push(c.await.expect("task").expect("connects"));
    }
    assert_eq!(transport.connect_count(), 1);
    assert_eq!(conn.info().connection_count, 1);
    // A second connect() while connected returns the same session.
    let again = conn.connect().await.expect("connected");
    assert_eq!(transport.connect_count(), 1);
    assert_eq!(format!("{again:?}"), format!("{:?}", clients[0]));
}

#[tokio::test]
async fn reconnect_closes_the_old_link_and_fails_its_requests() {
    let (conn, _transport, mut server) = common::scripted(common::config());
    let (old_client, mut old_link) = common::connect(&conn, &mut server).await;
    let pending = tokio::spawn({
        let c = old_client.clone();
        async move { c.call_tool("echo", json!({"text": "x"})).await }
    });
    old_link.expect_method("tools/call").await;

    let (new_client, _new_link) = common::within("join", async {
        tokio::join!(conn.reconnect(), common::handshake_next(&mut server))
    })
    .await;
    let new_client = new_client.expect("reconnects");
    // The old link is closed by the client, and its request failed, not lost.
    tokio::time::timeout(Duration::from_secs(5), old_link.closed())
        .await
        .expect("old link closed");
    let err = pending.await.expect("task").expect_err("old request fails");
    assert!(matches!(err, Error::Closed { .. }), "{err}");
    assert!(!old_client.is_open());
    assert!(new_client.is_open());
    assert!(matches!(old_client.ping().await, Err(Error::Closed { .. })));
}

#[tokio::test(start_paused = true)]
async fn disconnect_while_reconnecting_ends_cleanly() {
    let (conn, transport, mut server) = common::scripted(common::config());
    let (_client, link) = common::connect(&conn, &mut server).await;
    drop(link);
    common::wait_status(&conn, ConnectionStatus::Reconnecting).await;

    conn.disconnect().await;
    assert_eq!(conn.status(), ConnectionStatus::Disconnected);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(transport.connect_count(), 1, "no attempt after disconnect");
    assert_eq!(conn.status(), ConnectionStatus::Disconnected);
    assert!(matches!(conn.client(), Err(Error::NotConnected { .. })));
}

#[tokio::test(start_paused = true)]
async fn disconnect_during_a_hung_attempt_returns_at_once() {
    let (conn, transport, mut server) = common::scripted(common::config());
    let (_client, link) = common::connect(&conn, &mut server).await;
    transport.script_connects([ConnectOutcome::Hang]);
    drop(link);
    // Wait until the hung attempt has started (after the 1 s backoff).
    common::within("the second connect", transport.wait_for_connects(2)).await;
    let started = Instant::now();
    conn.disconnect().await;
    assert_eq!(Instant::now(), started);
    assert_eq!(conn.status(), ConnectionStatus::Disconnected);
}

#[tokio::test(start_paused = true)]
async fn a_connect_that_gives_up_reports_the_last_error_until_connect_again() {
    let config = ConnectionConfig {
        max_reconnect_attempts: 2,
        ..common::config()
    };
    let (conn, transport, mut server) = common::scripted(config);
    let (_client, link) = common::connect(&conn, &mut server).await;
    transport.script_connects(
        std::iter::repeat_with(|| {
            ConnectOutcome::Refuse(TransportError::Http {
                status: 503,
                body: String::new(),
                retry_after: None,
            })
        })
        .take(2),
    );
    drop(link);
    common::wait_status(&conn, ConnectionStatus::Error).await;
    let last = conn.info().last_error.expect("a last error");
    assert_eq!(last.kind, mcp_conn_core::ErrorKind::Connect);
    assert!(last.retryable);
    assert!(last.message.contains("HTTP 503"), "{last}");
    assert!(matches!(conn.client(), Err(Error::NotConnected { .. })));
    let (client, _link) = common::connect(&conn, &mut server).await;
    assert!(client.is_open());
}

#[tokio::test(start_paused = true)]
async fn no_auto_reconnect_means_error_after_a_lost_link() {
    let config = ConnectionConfig {
        auto_reconnect: false,
        ..common::config()
    };
    let (conn, transport, mut server) = common::scripted(config);
    let (_client, link) = common::connect(&conn, &mut server).await;
    drop(link);
    common::wait_status(&conn, ConnectionStatus::Error).await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(transport.connect_count(), 1);
    // An explicit reconnect() still works.
    let (client, _link) = common::within("join", async {
        tokio::join!(conn.reconnect(), common::handshake_next(&mut server))
    })
    .await;
    assert!(client.is_ok());
    assert_eq!(conn.status(), ConnectionStatus::Connected);
}
