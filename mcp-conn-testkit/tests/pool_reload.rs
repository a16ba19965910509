//! Hot reload: applying a changed config touches only what changed, with
//! real server processes; a bad config changes nothing; a watched file is
//! applied when it changes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::within;
use mcp_conn_core::ConnectionStatus;
use mcp_conn_pool::{ConfigChanges, ConnectionPool, PoolEvent};
use serde_json::json;

fn doc(servers: &[(&str, &str)]) -> String {
    let fake = env!("CARGO_BIN_EXE_fake-mcp-server");
    let entries: Vec<String> = servers
        .iter()
        .map(|(name, mode)| format!(r#""{name}": {{"command": "{fake}", "args": ["{mode}"]}}"#))
        .collect();
    format!(r#"{{"mcpServers": {{{}}}}}"#, entries.join(","))
}

async fn next_applied(events: &mut tokio::sync::broadcast::Receiver<PoolEvent>) -> PoolEvent {
    within("a config event", async {
        loop {
            match events.recv().await {
                Ok(e @ (PoolEvent::ConfigApplied(_) | PoolEvent::ConfigRejected { .. })) => {
                    return e
                }
                Ok(_) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_a_config_touches_only_what_changed() {
    let pool = ConnectionPool::from_config_str(&doc(&[
        ("keep", "normal"),
        ("change", "normal"),
        ("drop", "normal"),
    ]))
    .expect("config");
    assert!(within("connect_all", pool.connect_all())
        .await
        .values()
        .all(Result::is_ok));
    let kept = pool.get("keep").expect("keep");
    let mut events = pool.subscribe();

    let changes = within(
        "apply",
        pool.apply_config_str(&doc(&[
            ("keep", "normal"),
            ("change", "garbage"),
            ("new", "normal"),
        ])),
    )
    .await
    .expect("applied");
    assert_eq!(
        (changes.added, changes.removed, changes.changed),
        (
            vec!["new".to_owned()],
            vec!["drop".to_owned()],
            vec!["change".to_owned()]
        )
    );
    assert_eq!(pool.names(), ["change", "keep", "new"]);
    assert!(
        Arc::ptr_eq(&kept, &pool.get("keep").expect("keep")),
        "the unchanged server is the same connection"
    );
    assert_eq!(kept.info().connection_count, 1, "not even reconnected");
    for name in ["change", "new"] {
        let conn = pool.get(name).expect(name);
        assert_eq!(conn.status(), ConnectionStatus::Connected, "{name}");
    }
    let r = within(
        "call",
        pool.call_tool_on("change", "echo", json!({"text": "x"})),
    )
    .await
    .expect("the replaced server answers");
    assert_eq!(r.text(), "x");
    // What happened, as events: no status change of `keep`.
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, PoolEvent::StatusChanged { name, .. } if name == "keep")),
        "{seen:?}"
    );
    assert!(seen
        .iter()
        .any(|e| matches!(e, PoolEvent::ConfigApplied(c) if c.added == ["new"])));

    // The same config again: nothing changes.
    let again = within(
        "apply again",
        pool.apply_config_str(&doc(&[
            ("keep", "normal"),
            ("change", "garbage"),
            ("new", "normal"),
        ])),
    )
    .await
    .expect("applied");
    assert_eq!(again, ConfigChanges::default());

    // A bad config changes nothing.
    let err = within(
        "apply bad",
        pool.apply_config_str(r#"{"mcpServers": {"keep": {"command": 7}}}"#),
    )
    .await
    .expect_err("refused");
    assert!(err.to_string().contains("mcpServers.keep.command"), "{err}");
    assert_eq!(pool.names(), ["change", "keep", "new"]);
    within("shutdown", pool.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_file_is_applied_when_it_changes() {
    let dir = std::env::temp_dir().join(format!("mcp-conn-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("mcp.json");
    std::fs::write(&path, doc(&[("a", "normal")])).expect("write");
    let pool = ConnectionPool::from_config_file(&path).expect("config");
    let mut events = pool.subscribe();
    let watcher = pool.watch_config_file(&path, Duration::from_millis(20));

    std::fs::write(&path, doc(&[("a", "normal"), ("b", "normal")])).expect("write");
    match next_applied(&mut events).await {
        PoolEvent::ConfigApplied(c) => assert_eq!(c.added, ["b"]),
        other => panic!("{other:?}"),
    }
    std::fs::write(&path, "{ not json").expect("write");
    assert!(matches!(
        next_applied(&mut events).await,
        PoolEvent::ConfigRejected { .. }
    ));
    assert_eq!(pool.names(), ["a", "b"], "a bad file changes nothing");
    within("stop watching", watcher.stop()).await;
    within("shutdown", pool.shutdown()).await;
    let _ = std::fs::remove_dir_all(&dir);
}
