//! Safe replay with real processes: a server that dies on a request
//! (`crash-after 1`) is restarted, and an idempotent call is answered by
//! the new process; a call nobody vouched for fails with `ConnectionLost`.

mod common;

use std::time::Duration;

use common::within;
use mcp_conn_core::{ConnectionConfig, RequestOptions};
use mcp_conn_pool::{ConnectionPool, PoolConfig};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_call_answers_the_replay_from_its_new_process() {
    let fake = env!("CARGO_BIN_EXE_fake-mcp-server");
    let dir = std::env::temp_dir().join(format!("mcp-conn-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let startlog = dir.join("starts");
    let _ = std::fs::remove_file(&startlog);
    let config = PoolConfig {
        default_connection: ConnectionConfig {
            replay_after_reconnect: true,
            reconnect_delay: Duration::from_millis(20),
            reconnect_jitter: 0.0,
            close_grace: Duration::from_millis(300),
            ..Default::default()
        },
        ..Default::default()
    };
    // Each process answers one request and dies on its second.
    let doc = format!(
        r#"{{"mcpServers": {{"s": {{"command": "{fake}", "args": ["crash-after", "1"], "env": {{"FAKE_MCP_STARTLOG": "{}"}}}}}}}}"#,
        startlog.display()
    );
    let pool = ConnectionPool::from_config_str_with(&doc, config).expect("config");
    let starts = || {
        std::fs::read_to_string(&startlog)
            .unwrap_or_default()
            .lines()
            .count()
    };
    within("the scenario", async {
        let connected = pool.connect_all().await;
        assert!(connected.values().all(Result::is_ok), "{connected:?}");
        let catalog = pool.list_tools().await; // the first process's one answer
        assert!(catalog.failed.is_empty(), "{:?}", catalog.failed);
        assert_eq!(catalog.tools.len(), 5);
        assert_eq!(starts(), 1);
        // Dies under the call; the replay is the new process's first request.
        let result = pool
            .call_tool_with(
                "s__echo",
                json!({"text": "again"}),
                &RequestOptions::new().idempotent(),
            )
            .await
            .expect("answered by the replay");
        assert_eq!(result.text(), "again");
        assert_eq!(starts(), 2);
        // Not vouched for (and `echo` has no hints): lost, not replayed.
        let lost = pool.call_tool("s__echo", json!({"text": "once"})).await;
        assert!(
            matches!(
                lost,
                Err(mcp_conn_pool::Error::Connection(
                    mcp_conn_core::Error::ConnectionLost { .. }
                ))
            ),
            "{lost:?}"
        );
    })
    .await;
    pool.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
