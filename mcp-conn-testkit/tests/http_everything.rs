//! Interop: the official reference server `@modelcontextprotocol/server-everything`
//! in its Streamable HTTP mode on loopback, installed by
//! `scripts/install-test-servers.sh`. Skipped with a printed reason when it is
//! not installed; `MCP_CONN_REQUIRE_INTEROP=1` (CI) makes that a failure.

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use common::within;
use mcp_conn_core::{Connection, ConnectionStatus};
use mcp_transport_http::HttpTransport;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

fn everything() -> Option<PathBuf> {
    common::everything(
        "http_everything",
        "@modelcontextprotocol/server-everything/dist/index.js",
    )
}

#[tokio::test]
async fn the_reference_server_over_streamable_http() {
    let Some(script) = everything() else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut server = tokio::process::Command::new("node")
        .arg(&script)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut stderr = BufReader::new(server.stderr.take().expect("stderr")).lines();
    within("the server listening", async {
        while let Some(line) = stderr.next_line().await.expect("stderr") {
            if line.contains("listening on port") {
                return;
            }
        }
        panic!("the server exited before listening");
    })
    .await;
    // Keep draining its stderr so it never blocks.
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });

    let transport = HttpTransport::new(&format!("http://127.0.0.1:{port}/mcp")).expect("url");
    let conn = Connection::new("everything-http", transport);
    let client = within("connect", conn.connect()).await.expect("connects");
    // server-everything speaks only the handshake era: the probe says so.
    assert_eq!(
        client.protocol_era(),
        Some(mcp_conn_core::ProtocolEra::Handshake)
    );
    assert_eq!(
        client.server_info().map(|s| s.name.as_str()),
        Some("mcp-servers/everything")
    );
    let tools = within("tools/list", client.list_tools())
        .await
        .expect("tools");
    assert!(
        tools.iter().any(|t| t.name == "echo"),
        "{} tools",
        tools.len()
    );
    let echo = within(
        "echo",
        client.call_tool("echo", json!({"message": "over http"})),
    )
    .await
    .expect("echo");
    assert!(echo.text().contains("over http"), "{}", echo.text());
    within("ping", client.ping()).await.expect("pong");
    within("disconnect", conn.disconnect()).await;
    assert_eq!(conn.status(), ConnectionStatus::Disconnected);

    let _ = server.kill().await;
}
