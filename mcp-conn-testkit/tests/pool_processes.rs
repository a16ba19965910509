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
