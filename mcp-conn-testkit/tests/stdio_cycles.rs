//! 100 crash/restart cycles in a row leak no file descriptor, no process and
//! no task (alone in its own test binary, so the counts are its own).

mod common;

use std::time::Duration;

use common::{fake, within, PidFile};
use mcp_conn_core::{Connection, ConnectionConfig, ConnectionStatus};
use mcp_conn_testkit::leaks;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_crash_restart_cycles_leak_nothing() {
    let pids = PidFile::new();
    let config = ConnectionConfig {
        reconnect_delay: Duration::from_millis(5),
        max_reconnect_delay: Duration::from_millis(5),
        max_reconnect_attempts: 3,
        ..common::config()
    };
    // Warm up once: the runtime opens its own descriptors on first use.
    let warm = Connection::with_config("warm", fake("normal", &pids), config.clone());
    within("warm-up", warm.connect()).await.expect("connects");
    within("warm-up", warm.disconnect()).await;
    drop(warm);
    let fds_before = leaks::open_fds();
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();

    let conn = Connection::with_config("cycles", fake("crash-after 0", &pids), config);
    within("connect", conn.connect()).await.expect("connects");
    let mut seen = std::collections::HashSet::new();
    for cycle in 0..100 {
        common::wait_status(&conn, ConnectionStatus::Connected).await;
        let client = conn.client().expect("connected");
        let (pid, _) = pids.pids().await;
        seen.insert(pid);
        let err = within("crash", client.call_tool("echo", json!({})))
            .await
            .expect_err("crashes");
        assert!(err.is_retryable(), "cycle {cycle}: {err}");
    }
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    assert_eq!(seen.len(), 100, "a fresh process every cycle");
    assert!(conn.info().metrics.reconnects >= 100);
    within("disconnect", conn.disconnect()).await;
    drop(conn);

    for pid in &seen {
        common::assert_dead("a crashed server", *pid).await;
    }
    common::eventually("every child reaped", || leaks::my_children().is_empty()).await;
    common::eventually("descriptors back to the start", || {
        leaks::open_fds() <= fds_before
    })
    .await;
    common::eventually("tasks back to the start", || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
            <= tasks_before
    })
    .await;
}
