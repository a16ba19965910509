//! Traffic never defeats the reconnect backoff: calls during a backoff fail
//! fast (or wait) without starting attempts; from `Error`, implicit connects
//! retry at most every `max_reconnect_delay`; only the user's `connect()`
//! starts a fresh budget.

mod common;

use std::time::Duration;

use mcp_conn_core::testing::ConnectOutcome;
use mcp_conn_core::{
    ConnectFailure, ConnectionConfig, ConnectionStatus, DuringBackoff, Error, TransportError,
};
use tokio::time::Instant;

fn refused() -> ConnectOutcome {
    ConnectOutcome::Refuse(TransportError::connect(
        ConnectFailure::Refused,
        "memory",
        None,
    ))
}

fn config() -> ConnectionConfig {
    ConnectionConfig {
        reconnect_delay: Duration::from_millis(200),
        max_reconnect_delay: Duration::from_secs(10),
        max_reconnect_attempts: 5,
        ..common::config()
    }
}

/// Offsets of the connect attempts after the first one, from `since`.
fn attempts_after(transport: &mcp_conn_core::testing::MockTransport, since: Instant) -> Vec<u128> {
    transport.connect_times()[1..]
        .iter()
        .map(|t| (*t - since).as_millis())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn calls_every_25ms_during_an_outage_follow_the_schedule() {
    let (conn, transport, mut server) = common::scripted(config());
    let (_client, link) = common::connect(&conn, &mut server).await;
    transport.script_connects(std::iter::repeat_with(refused).take(100));
    let died = Instant::now();
    drop(link);
    common::wait_status(&conn, ConnectionStatus::Reconnecting).await;

    let mut backoff_errors = 0;
    // 5 s of steady traffic, through both the implicit and the explicit path.
    for tick in 0..200 {
        match conn.ensure_connected().await {
            Err(Error::Backoff {
                retry_in, cause, ..
            }) => {
                backoff_errors += 1;
                assert!(retry_in <= Duration::from_secs(10), "{retry_in:?}");
                assert!(
                    cause.is_some(),
                    "the error says why the last attempt failed"
                );
            }
            Err(e) => assert!(e.is_retryable() || tick > 0, "{e}"),
            Ok(_) => panic!("nothing accepts connects"),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(backoff_errors > 150, "calls failed fast: {backoff_errors}");
    // The schedule: 200, +400, +800, +1600, +3200 ms after the loss; the 5th
    // attempt falls after the traffic stopped (t = 6.2 s).
    common::wait_status(&conn, ConnectionStatus::Error).await;
    assert_eq!(
        attempts_after(&transport, died),
        [200, 600, 1400, 3000, 6200],
        "traffic started no attempt of its own"
    );
}

#[tokio::test(start_paused = true)]
async fn an_explicit_connect_during_a_backoff_waits_for_the_scheduled_attempt() {
    let (conn, transport, mut server) = common::scripted(config());
    let (_client, link) = common::connect(&conn, &mut server).await;
    transport.script_connects([refused()]);
    let died = Instant::now();
    drop(link);
    common::wait_status(&conn, ConnectionStatus::Reconnecting).await;
    // The first attempt (at 200 ms) is refused; the second is due at 600 ms.
    transport.wait_for_connects(2).await;
    let (client, _link) = common::within("connect", async {
        tokio::join!(conn.connect(), common::handshake_next(&mut server))
    })
    .await;
    assert!(client.is_ok());
    assert_eq!(attempts_after(&transport, died), [200, 600]);
}

#[tokio::test(start_paused = true)]
async fn after_error_implicit_connects_retry_at_most_every_max_delay() {
    let config = ConnectionConfig {
        max_reconnect_attempts: 2,
        max_reconnect_delay: Duration::from_secs(2),
        ..config()
    };
    let (conn, transport, mut server) = common::scripted(config);
    let (_client, link) = common::connect(&conn, &mut server).await;
    transport.script_connects(std::iter::repeat_with(refused).take(100));
    let died = Instant::now();
    drop(link);
    common::wait_status(&conn, ConnectionStatus::Error).await;
    // Attempts at 200 and 600 ms; Error from 600 ms on.
    assert_eq!(attempts_after(&transport, died), [200, 600]);

    for _ in 0..380 {
        match conn.ensure_connected().await {
            Err(Error::Backoff { status, .. }) => assert_eq!(status, ConnectionStatus::Error),
            Err(Error::Connect { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // 9.5 s of traffic in Error: one retry every 2 s after the last failure.
    assert_eq!(
        attempts_after(&transport, died),
        [200, 600, 2600, 4600, 6600, 8600],
    );
    assert_eq!(
        conn.info().reconnect_attempts,
        2,
        "the budget was not reset"
    );
    assert_eq!(conn.status(), ConnectionStatus::Error);

    // Only the user's connect starts afresh, at once.
    let before = transport.connect_count();
    transport.script_connects([]);
    let _ = conn.connect().await;
    assert_eq!(transport.connect_count(), before + 1);
}

#[tokio::test(start_paused = true)]
async fn a_server_that_comes_back_is_found_by_traffic_after_error() {
    let config = ConnectionConfig {
        max_reconnect_attempts: 1,
        max_reconnect_delay: Duration::from_secs(2),
        ..config()
    };
    let (conn, transport, mut server) = common::scripted(config);
    let (_client, link) = common::connect(&conn, &mut server).await;
    transport.script_connects([refused()]);
    drop(link);
    common::wait_status(&conn, ConnectionStatus::Error).await;
    assert!(matches!(
        conn.ensure_connected().await,
        Err(Error::Backoff { .. })
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The server accepts again: the next call connects.
    let (client, _link) = common::within("found again", async {
        tokio::join!(conn.ensure_connected(), common::handshake_next(&mut server))
    })
    .await;
    assert!(client.is_ok());
    assert_eq!(conn.status(), ConnectionStatus::Connected);
}

#[tokio::test(start_paused = true)]
async fn wait_mode_waits_for_the_scheduled_attempt_and_takes_its_outcome() {
    let config = ConnectionConfig {
        during_backoff: DuringBackoff::Wait,
        connection_timeout: Duration::from_secs(1),
        ..config()
    };
    let (conn, transport, mut server) = common::scripted(config);
    let (_client, link) = common::connect(&conn, &mut server).await;
    transport.script_connects([refused()]);
    let died = Instant::now();
    drop(link);
    common::wait_status(&conn, ConnectionStatus::Reconnecting).await;
    // The attempt at 200 ms is refused: the waiting call hears of it.
    let first = conn.ensure_connected().await;
    assert!(matches!(first, Err(Error::Connect { .. })), "{first:?}");
    assert_eq!(Instant::now() - died, Duration::from_millis(200));
    // The next one, at 600 ms, succeeds.
    let (client, _link) = common::within("second attempt", async {
        tokio::join!(conn.ensure_connected(), common::handshake_next(&mut server))
    })
    .await;
    assert!(client.is_ok());
    assert_eq!(attempts_after(&transport, died), [200, 600]);
}

#[tokio::test(start_paused = true)]
async fn wait_mode_fails_fast_when_the_attempt_is_beyond_the_timeout() {
    let config = ConnectionConfig {
        during_backoff: DuringBackoff::Wait,
        connection_timeout: Duration::from_millis(100),
        ..config()
    };
    let (conn, transport, mut server) = common::scripted(config);
    let (_client, link) = common::connect(&conn, &mut server).await;
    transport.script_connects([refused()]);
    drop(link);
    common::wait_status(&conn, ConnectionStatus::Reconnecting).await;
    let started = Instant::now();
    let err = conn.ensure_connected().await.expect_err("in backoff");
    assert!(matches!(err, Error::Backoff { .. }), "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_millis(200)));
    assert_eq!(Instant::now(), started, "no wait");
}

#[tokio::test(start_paused = true)]
async fn retry_after_stretches_the_next_delay_up_to_the_max() {
    let (conn, transport, mut server) = common::scripted(config());
    let (_client, link) = common::connect(&conn, &mut server).await;
    let busy = |secs| {
        ConnectOutcome::Refuse(TransportError::Http {
            status: 503,
            body: String::new(),
            retry_after: Some(Duration::from_secs(secs)),
        })
    };
    transport.script_connects([busy(3), busy(3600)]);
    let died = Instant::now();
    drop(link);
    common::wait_status(&conn, ConnectionStatus::Reconnecting).await;
    transport.wait_for_connects(4).await;
    // 200 ms, then max(400 ms, 3 s), then max(800 ms, min(1 h, 10 s)).
    assert_eq!(attempts_after(&transport, died), [200, 3200, 13200]);
}

#[tokio::test(start_paused = true)]
async fn invalid_settings_are_refused_before_anything_starts() {
    let config = ConnectionConfig {
        health_check_interval: Duration::ZERO,
        ..config()
    };
    let (conn, transport, _server) = common::scripted(config);
    for outcome in [conn.connect().await, conn.ensure_connected().await] {
        match outcome {
            Err(Error::InvalidConfig { source, .. }) => {
                assert_eq!(source.field, "health_check_interval")
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }
    assert_eq!(transport.connect_count(), 0);
}
