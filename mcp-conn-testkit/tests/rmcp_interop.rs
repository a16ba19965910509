//! Interop with a server built on rmcp, the official Rust SDK
//! (`interop/rmcp-server`, built into `.cache/bin` by
//! `scripts/install-test-servers.sh`), over stdio and Streamable HTTP (SSE
//! replies and JSON replies). rmcp 3.9 speaks both eras on the same endpoint,
//! so the same server is spoken to in each. Skipped with a printed reason
//! when the binary is missing; CI sets `MCP_CONN_REQUIRE_INTEROP=1`, which
//! makes that a failure.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{within, PidFile};
use mcp_conn_core::{
    Connection, ConnectionConfig, ConnectionStatus, ProtocolEra, ProtocolPreference,
};
use mcp_transport_http::HttpTransport;
use mcp_transport_stdio::StdioTransport;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

fn server(test: &str) -> Option<PathBuf> {
    let bin = common::workspace().join(".cache/bin/rmcp-interop-server");
    let found = if bin.exists() {
        Ok(bin)
    } else {
        Err("the rmcp server is not built (run scripts/install-test-servers.sh)")
    };
    common::interop(test, found)
}

fn config(protocol: ProtocolPreference) -> ConnectionConfig {
    ConnectionConfig {
        protocol,
        reconnect_delay: Duration::from_millis(100),
        max_reconnect_delay: Duration::from_millis(500),
        max_reconnect_attempts: 50,
        reconnect_jitter: 0.0,
        health_check_interval: Duration::from_millis(200),
        close_grace: Duration::from_millis(500),
        ..Default::default()
    }
}

/// The era and version the server is expected to speak.
#[derive(Clone, Copy)]
struct Expect(ProtocolEra, &'static str);

/// rmcp 3.9 answers `server/discover` offering 2026-07-28.
const STATELESS: Expect = Expect(ProtocolEra::Stateless, "2026-07-28");
/// `initialize` offering our newest handshake version, which rmcp echoes.
const HANDSHAKE: Expect = Expect(ProtocolEra::Handshake, "2025-11-25");

async fn exercise(conn: &Connection, Expect(era, version): Expect) {
    let client = within("connect", conn.connect()).await.expect("connects");
    assert_eq!(client.protocol_era(), Some(era));
    assert_eq!(client.protocol_version(), Some(version));
    assert_eq!(conn.info().protocol_era, Some(era));
    assert_eq!(
        client
            .server_info()
            .map(|s| (s.name.as_str(), s.version.as_str())),
        Some(("rmcp-interop", "1.0.0"))
    );
    let tools = within("tools/list", client.list_tools())
        .await
        .expect("tools");
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["add", "echo"]);
    let r = within(
        "echo",
        client.call_tool("echo", json!({"text": "from rust"})),
    )
    .await
    .expect("echo");
    assert_eq!(r.text(), "from rust");
    let r = within("add", client.call_tool("add", json!({"a": 2, "b": 3.5})))
        .await
        .expect("add");
    assert_eq!(r.text(), "5.5");
    // A tool that does not exist is the server's error, not a lost link.
    let missing = within("a missing tool", client.call_tool("nope", json!({}))).await;
    assert!(
        missing.as_ref().map_or(true, |r| r.is_error == Some(true)),
        "{missing:?}"
    );
    within("ping", client.ping()).await.expect("pong");
}

fn kill9(pid: i32) {
    let ok = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -9 {pid}");
}

async fn stdio_and_a_restart(test: &str, protocol: ProtocolPreference, expect: Expect) {
    let Some(bin) = server(test) else {
        return;
    };
    let pids = PidFile::new();
    let transport = StdioTransport::builder(&bin)
        .args(["stdio"])
        .env("PIDFILE", &pids.0)
        .build()
        .expect("valid settings");
    let conn = Connection::with_config("rmcp-stdio", transport, config(protocol));
    exercise(&conn, expect).await;
    let (first, _) = pids.pids().await;
    kill9(first);
    // The Connection notices the exit and starts a new process by itself,
    // which speaks the same era.
    common::eventually("a new process", || {
        mcp_conn_testkit::leaks::read_pidfile(&pids.0).is_some_and(|(p, _)| p != first)
    })
    .await;
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    exercise(&conn, expect).await;
    assert_eq!(conn.info().metrics.reconnects, 1);
    within("disconnect", conn.disconnect()).await;
    common::assert_dead("the rmcp server", pids.pids().await.0).await;
    common::assert_dead("the first rmcp server", first).await;
}

#[tokio::test]
async fn the_rmcp_server_over_stdio_is_detected_stateless_and_survives_a_restart() {
    stdio_and_a_restart("rmcp_interop stdio", ProtocolPreference::Auto, STATELESS).await;
}

#[tokio::test]
async fn the_rmcp_server_over_stdio_also_speaks_the_handshake_era() {
    stdio_and_a_restart(
        "rmcp_interop stdio handshake",
        ProtocolPreference::Handshake,
        HANDSHAKE,
    )
    .await;
}

/// The server over HTTP, as our child; `port` 0 lets it pick one.
async fn start_http(bin: &PathBuf, port: u16, json: bool) -> (tokio::process::Child, u16) {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(["http", &port.to_string()]);
    if json {
        cmd.arg("--json");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the rmcp server starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let port = within("the server listening", async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let addr: std::net::SocketAddr = addr.parse().expect("an address");
                return addr.port();
            }
        }
        panic!("the rmcp server exited before listening");
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, port)
}

/// The content type of the server's reply to one stateless `tools/call`,
/// read off the wire (our client does not say which one it got).
async fn reply_content_type(port: u16) -> String {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "x"}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}}}
    })
    .to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n\
         Mcp-Method: tools/call\r\nMcp-Name: echo\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    within("a raw POST", async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connects");
        s.write_all(request.as_bytes()).await.expect("writes");
        let mut reply = String::new();
        s.read_to_string(&mut reply).await.expect("reads");
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        reply
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-type")
                    .then(|| value.trim().to_owned())
            })
            .expect("a content type")
    })
    .await
}

async fn http_and_a_restart(test: &str, json: bool, protocol: ProtocolPreference, expect: Expect) {
    let Some(bin) = server(test) else {
        return;
    };
    let (mut child, port) = start_http(&bin, 0, json).await;
    let content_type = reply_content_type(port).await;
    let wanted = if json {
        "application/json"
    } else {
        "text/event-stream"
    };
    assert_eq!(content_type, wanted);
    let transport = HttpTransport::new(&format!("http://127.0.0.1:{port}/mcp")).expect("url");
    let conn = Connection::with_config("rmcp-http", transport, config(protocol));
    exercise(&conn, expect).await;
    conn.start_monitoring().await;

    let mut status = conn.subscribe();
    let _ = child.kill().await; // SIGKILL
                                // Noticed by the health monitor (stateless: no stream stays open);
                                // the Connection keeps trying until the server is back.
    within(
        "reconnecting",
        status.wait_for(|s| *s == ConnectionStatus::Reconnecting),
    )
    .await
    .expect("status");
    let (mut child, again) = start_http(&bin, port, json).await;
    assert_eq!(again, port);
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    exercise(&conn, expect).await;
    assert!(conn.info().metrics.reconnects >= 1);
    within("disconnect", conn.disconnect()).await;
    let _ = child.kill().await;
}

#[tokio::test]
async fn the_rmcp_server_over_http_with_sse_replies_is_detected_stateless_and_survives_a_restart() {
    http_and_a_restart(
        "rmcp_interop http sse",
        false,
        ProtocolPreference::Auto,
        STATELESS,
    )
    .await;
}

#[tokio::test]
async fn the_rmcp_server_over_http_with_json_replies_is_detected_stateless_and_survives_a_restart()
{
    http_and_a_restart(
        "rmcp_interop http json",
        true,
        ProtocolPreference::Auto,
        STATELESS,
    )
    .await;
}

#[tokio::test]
async fn the_rmcp_server_over_http_also_speaks_the_handshake_era() {
    http_and_a_restart(
        "rmcp_interop http handshake",
        false,
        ProtocolPreference::Handshake,
        HANDSHAKE,
    )
    .await;
}
