//! Reconnect timing: the Python original's schedule, exactly, under paused time.

mod common;

use std::time::Duration;

use mcp_conn_core::testing::ConnectOutcome;
use mcp_conn_core::{ConnectFailure, ConnectionConfig, ConnectionStatus, TransportError};
use tokio::time::Instant;

fn refused() -> ConnectOutcome {
    ConnectOutcome::Refuse(TransportError::connect(
        ConnectFailure::Refused,
        "memory",
        None,
    ))
}

#[tokio::test(start_paused = true)]
async fn reconnect_attempts_follow_the_doubling_schedule_then_give_up() {
    let (conn, transport, mut server) = common::scripted(common::config());
    let (_client, link) = common::connect(&conn, &mut server).await;
    transport.script_connects(std::iter::repeat_with(refused).take(5));

    let died = Instant::now();
    drop(link); // the server dies
    common::wait_status(&conn, ConnectionStatus::Error).await;

    let offsets: Vec<Duration> = transport.connect_times()[1..]
        .iter()
        .map(|t| *t - died)
        .collect();
    let secs = |s: &[u64]| {
        s.iter()
            .map(|&n| Duration::from_secs(n))
            .collect::<Vec<_>>()
    };
    // Waits of 1, 2, 4, 8, 16 s between attempts: delay · 2^(n-1).
    assert_eq!(offsets, secs(&[1, 3, 7, 15, 31]));
    assert_eq!(conn.info().reconnect_attempts, 5);

    // Given up: no more attempts, however long we wait, until connect().
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(transport.connect_count(), 6);
    assert_eq!(conn.status(), ConnectionStatus::Error);

    let (_client, _link) = common::connect(&conn, &mut server).await;
    assert_eq!(conn.status(), ConnectionStatus::Connected);
    assert_eq!(
        conn.info().reconnect_attempts,
        0,
        "a successful connect resets the attempts"
    );
}

#[tokio::test(start_paused = true)]
async fn delays_are_capped_and_jittered_within_bounds() {
    let config = ConnectionConfig {
        reconnect_delay: Duration::from_secs(10),
        max_reconnect_delay: Duration::from_secs(25),
        max_reconnect_attempts: 4,
        reconnect_jitter: 0.2,
        jitter_seed: Some(42),
        ..common::config()
    };
    let (conn, transport, mut server) = common::scripted(config);
    let (_client, link) = common::connect(&conn, &mut server).await;
    transport.script_connects(std::iter::repeat_with(refused).take(4));
    drop(link);
    common::wait_status(&conn, ConnectionStatus::Error).await;

    let times = transport.connect_times();
    let gaps: Vec<f64> = times
        .windows(2)
        .skip(1)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    // Attempt 1 waits 10 s ± 20 %, then 20 s ± 20 %, then the 25 s cap (never above it).
    assert_eq!(gaps.len(), 3);
    let bounds = [(16.0, 24.0), (20.0, 25.0), (20.0, 25.0)];
    for (gap, (lo, hi)) in gaps.iter().zip(bounds) {
        assert!(
            *gap >= lo && *gap <= hi,
            "gap {gap} outside [{lo}, {hi}]: {gaps:?}"
        );
    }
    assert!(
        gaps.iter().any(|g| g.fract() != 0.0),
        "jitter moved the delays: {gaps:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_non_retryable_failure_stops_reconnecting_at_once() {
    let (conn, transport, mut server) = common::scripted(common::config());
    let (_client, link) = common::connect(&conn, &mut server).await;
    transport.script_connects([ConnectOutcome::Refuse(TransportError::NotFound {
        program: "mcp-server-gone".into(),
    })]);
    drop(link);
    common::wait_status(&conn, ConnectionStatus::Error).await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(
        transport.connect_count(),
        2,
        "retrying cannot make a program appear"
    );
    let last = conn.info().last_error.expect("a last error");
    assert_eq!(last.kind, mcp_conn_core::ErrorKind::Connect);
    assert!(!last.retryable);
    assert!(last.message.contains("mcp-server-gone"), "{last}");
}
