//! The restart budget: a server that dies after every successful start is
//! restarted at most N times in the window, then the connection settles in
//! `Error` with a typed reason; restarts spread out beyond the window go on.

mod common;

use std::time::Duration;

use mcp_conn_core::testing::{FakeServer, MockTransport};
use mcp_conn_core::{
    Connection, ConnectionConfig, ConnectionStatus, Error, ErrorKind, RestartBudget,
};

fn config() -> ConnectionConfig {
    ConnectionConfig {
        reconnect_delay: Duration::from_secs(1),
        restart_budget: Some(RestartBudget {
            max_restarts: 3,
            window: Duration::from_secs(60),
        }),
        ..common::config()
    }
}

/// Kills the live link and waits until the connection is back.
async fn crash_and_recover(conn: &Connection, transport: &MockTransport, connects: usize) {
    transport.kill_links();
    common::wait_status(conn, ConnectionStatus::Reconnecting).await;
    common::within("restarted", transport.wait_for_connects(connects)).await;
    common::wait_status(conn, ConnectionStatus::Connected).await;
}

#[tokio::test(start_paused = true)]
async fn a_crash_looping_server_is_restarted_only_as_the_budget_allows() {
    let transport = MockTransport::serving(FakeServer::default());
    let conn = Connection::with_config("crashy", transport.clone(), config());
    conn.connect().await.expect("connects");
    for n in 0..3 {
        crash_and_recover(&conn, &transport, n + 2).await;
    }
    // The fourth crash within the minute: no fourth restart.
    transport.kill_links();
    common::wait_status(&conn, ConnectionStatus::Error).await;
    match conn.ensure_connected().await {
        Err(Error::Backoff {
            cause: Some(cause), ..
        }) => {
            assert!(
                matches!(*cause, Error::RestartBudgetExhausted { restarts: 3, .. }),
                "{cause}"
            );
        }
        other => panic!("expected Backoff, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(transport.connect_count(), 4, "1 start + 3 restarts");
    let last = conn.info().last_error.expect("a last error");
    assert_eq!(last.kind, ErrorKind::RestartBudgetExhausted);
    assert!(!last.retryable);
    // The user's connect starts afresh, with a fresh budget.
    conn.connect().await.expect("connects again");
    crash_and_recover(&conn, &transport, transport.connect_count() + 1).await;
    conn.disconnect().await;
}

#[tokio::test(start_paused = true)]
async fn restarts_spread_beyond_the_window_go_on() {
    let transport = MockTransport::serving(FakeServer::default());
    let conn = Connection::with_config("rare", transport.clone(), config());
    conn.connect().await.expect("connects");
    for n in 0..6 {
        crash_and_recover(&conn, &transport, n + 2).await;
        tokio::time::sleep(Duration::from_secs(25)).await;
    }
    // Six restarts, never more than three within any 60 s.
    assert_eq!(transport.connect_count(), 7);
    assert_eq!(conn.status(), ConnectionStatus::Connected);
    conn.disconnect().await;
}
