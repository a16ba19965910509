//! Interop: the official reference server `@modelcontextprotocol/server-everything`
//! over stdio, installed by `scripts/install-test-servers.sh`.
//!
//! Skipped, with the reason printed, when it is not installed; CI sets
//! `MCP_CONN_REQUIRE_INTEROP=1`, which turns the skip into a failure.

mod common;

use std::path::PathBuf;

use common::within;
use mcp_conn_core::{Connection, ConnectionStatus};
use mcp_conn_testkit::leaks;
use mcp_transport_stdio::StdioTransport;
use serde_json::json;

fn everything() -> Option<PathBuf> {
    common::everything("stdio_everything", ".bin/mcp-server-everything")
}

#[tokio::test]
async fn the_reference_server_over_stdio() {
    let Some(bin) = everything() else { return };
    let transport = StdioTransport::new(&bin, ["stdio"]).expect("valid settings");
    let conn = Connection::new("everything", transport);
    let client = within("connect", conn.connect()).await.expect("connects");
    assert_eq!(
        client.server_info().map(|s| s.name.as_str()),
        Some("mcp-servers/everything")
    );
    assert_eq!(client.protocol_version(), Some("2025-11-25"));
    // server-everything speaks only the handshake era: the probe says so.
    assert_eq!(
        client.protocol_era(),
        Some(mcp_conn_core::ProtocolEra::Handshake)
    );
    let node_pids = leaks::my_children();
    assert!(!node_pids.is_empty(), "node runs as our child");

    let tools = within("tools/list", client.list_tools())
        .await
        .expect("tools");
    assert!(tools.len() > 5, "{} tools", tools.len());
    assert!(tools.iter().any(|t| t.name == "echo"));
    let echo = within(
        "echo",
        client.call_tool("echo", json!({"message": "hello from mcp-conn"})),
    )
    .await
    .expect("echo");
    assert!(!echo.is_error());
    assert!(
        echo.text().contains("hello from mcp-conn"),
        "{}",
        echo.text()
    );
    within("ping", client.ping()).await.expect("pong");
    assert!(within("health", conn.health_check()).await.ok);

    within("disconnect", conn.disconnect()).await;
    assert_eq!(conn.status(), ConnectionStatus::Disconnected);
    for pid in node_pids {
        common::assert_dead("node", pid).await;
    }
    assert!(
        leaks::processes_matching(&bin.to_string_lossy()).is_empty(),
        "no server-everything left"
    );
}
