//! A pool of 20 real fake servers, 5 of which keep crashing: the others are
//! never disturbed, and every crash is followed by a reconnect.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::within;
use mcp_conn_core::{ConnectionConfig, ConnectionStatus};
use mcp_conn_pool::{ConnectionPool, PoolConfig, PoolEvent};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_servers_never_disturb_the_others() {
    let fake = env!("CARGO_BIN_EXE_fake-mcp-server");
    let servers: Vec<String> = (0..20)
        .map(|i| {
            let mode = if i % 4 == 0 {
                "crash-after 1"
            } else {
                "normal"
            };
            format!(r#""s{i:02}": {{"command": "{fake}", "args": ["{mode}"]}}"#)
        })
        .collect();
    let config = PoolConfig {
        default_connection: ConnectionConfig {
            reconnect_delay: Duration::from_millis(20),
            max_reconnect_delay: Duration::from_millis(100),
            max_reconnect_attempts: 10,
            close_grace: Duration::from_millis(300),
            ..Default::default()
        },
        ..Default::default()
    };
    let pool = ConnectionPool::from_config_str_with(
        &format!(r#"{{"mcpServers": {{{}}}}}"#, servers.join(",")),
        config,
    )
    .expect("config");
    let mut events = pool.subscribe();
    assert!(within("connect_all", pool.connect_all())
        .await
        .values()
        .all(Result::is_ok));
    let crashy: Vec<String> = (0..20)
        .filter(|i| i % 4 == 0)
        .map(|i| format!("s{i:02}"))
        .collect();

    // Three rounds: every server gets two calls; the crashy ones die on the second.
    let mut crashes: HashMap<String, usize> = HashMap::new();
    for _round in 0..3 {
        for name in pool.names() {
            for call in 0..2 {
                if crashy.contains(&name) {
                    let conn = pool.get(&name).expect("server");
                    within(
                        "back up",
                        conn.wait_for_status(|s| s == ConnectionStatus::Connected),
                    )
                    .await;
                }
                let outcome = within(
                    "call",
                    pool.call_tool_on(&name, "echo", json!({"text": "hi"})),
                )
                .await;
                match (crashy.contains(&name), call, outcome) {
                    (true, 1, Err(e)) => {
                        assert!(e.to_string().contains("crashing after 1 requests"), "{e}");
                        *crashes.entry(name.clone()).or_default() += 1;
                    }
                    (_, _, Ok(r)) => assert_eq!(r.text(), "hi"),
                    (crash, call, Err(e)) => panic!("{name} (crashy {crash}) call {call}: {e}"),
                }
            }
        }
    }
    for name in &crashy {
        let conn = pool.get(name).expect("server");
        within(
            "back up",
            conn.wait_for_status(|s| s == ConnectionStatus::Connected),
        )
        .await;
    }
    let mut changes: HashMap<String, Vec<(ConnectionStatus, ConnectionStatus)>> = HashMap::new();
    while let Ok(e) = events.try_recv() {
        if let PoolEvent::StatusChanged { name, from, to } = e {
            changes.entry(name).or_default().push((from, to));
        }
    }
    for name in pool.names() {
        let seen = &changes[&name];
        if crashy.contains(&name) {
            assert_eq!(crashes[&name], 3, "{name}");
            let reconnects = seen
                .iter()
                .filter(|(f, t)| {
                    *f == ConnectionStatus::Reconnecting && *t == ConnectionStatus::Connected
                })
                .count();
            assert_eq!(
                reconnects, 3,
                "{name}: every crash followed by a reconnect: {seen:?}"
            );
            assert_eq!(pool.get(&name).expect("server").info().connection_count, 4);
        } else {
            assert_eq!(
                seen,
                &[
                    (ConnectionStatus::Disconnected, ConnectionStatus::Connecting),
                    (ConnectionStatus::Connecting, ConnectionStatus::Connected)
                ],
                "{name} was disturbed"
            );
            assert_eq!(pool.get(&name).expect("server").info().connection_count, 1);
        }
    }
    within("shutdown", pool.shutdown()).await;
    common::eventually("every child reaped", || {
        mcp_conn_testkit::leaks::my_children().is_empty()
    })
    .await;
}

/// Steady traffic (a call every 25 ms for 5 s) against a server that dies
/// at every start-up, and against one whose program does not exist: starts
/// follow the schedule (one attempt, then at most one every
/// `max_reconnect_delay` = 1 s), not the traffic (36-44 and 190 starts
/// before this was fixed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_traffic_never_defeats_the_backoff() {
    let fake = env!("CARGO_BIN_EXE_fake-mcp-server");
    let dir = std::env::temp_dir().join(format!("mcp-conn-storm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let startlog = dir.join("starts");
    let _ = std::fs::remove_file(&startlog);
    let config = PoolConfig {
        default_connection: ConnectionConfig {
            reconnect_delay: Duration::from_millis(200),
            max_reconnect_delay: Duration::from_secs(1),
            max_reconnect_attempts: 5,
            reconnect_jitter: 0.0,
            close_grace: Duration::from_millis(300),
            ..Default::default()
        },
        ..Default::default()
    };
    let doc = format!(
        r#"{{"mcpServers": {{
            "crashy": {{"command": "{fake}", "args": ["exit-during-initialize"], "env": {{"FAKE_MCP_STARTLOG": "{}"}}}},
            "missing": {{"command": "mcp-conn-no-such-program"}}
        }}}}"#,
        startlog.display()
    );
    let pool = ConnectionPool::from_config_str_with(&doc, config).expect("config");
    let mut missing_tries = 0;
    let mut backoff_errors = 0;
    let traffic = async {
        for _ in 0..200 {
            for name in ["crashy", "missing"] {
                match pool.call_tool_on(name, "echo", json!({"text": "hi"})).await {
                    Ok(_) => panic!("{name} cannot answer"),
                    Err(mcp_conn_pool::Error::Connection(mcp_conn_core::Error::Backoff {
                        retry_in,
                        ..
                    })) => {
                        assert!(retry_in <= Duration::from_secs(1), "{retry_in:?}");
                        backoff_errors += 1;
                    }
                    Err(mcp_conn_pool::Error::Connection(e)) => {
                        assert!(
                            matches!(
                                e,
                                mcp_conn_core::Error::Connect { .. }
                                    | mcp_conn_core::Error::Timeout { .. }
                            ),
                            "{name}: {e}"
                        );
                        if name == "missing" {
                            missing_tries += 1;
                        }
                    }
                    Err(e) => panic!("{name}: {e}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    within("5 s of traffic", traffic).await;
    let starts = std::fs::read_to_string(&startlog)
        .unwrap_or_default()
        .lines()
        .count();
    // At t = 0, then at most once a second: 6 in 5 s, 7 allowing for the
    // time the calls themselves take.
    assert!(
        (1..=7).contains(&starts),
        "crash-looping server started {starts} times"
    );
    assert!(
        (1..=7).contains(&missing_tries),
        "missing program tried {missing_tries} times"
    );
    assert!(
        backoff_errors > 300,
        "the rest failed fast: {backoff_errors}"
    );
    eprintln!("starts: {starts}, missing tried: {missing_tries}, fast failures: {backoff_errors}");
    within("shutdown", pool.shutdown()).await;
    let _ = std::fs::remove_dir_all(&dir);
}
