//! Interop with the official Python SDK's server (`mcp` from PyPI, the
//! `MCPServer` formerly called FastMCP) over stdio and Streamable HTTP,
//! installed into `.cache/venv` by `scripts/install-test-servers.sh`.
//! Skipped with a printed reason when it is missing; CI sets
//! `MCP_CONN_REQUIRE_INTEROP=1`, which makes that a failure.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{within, PidFile};
use mcp_conn_core::{Connection, ConnectionConfig, ConnectionStatus, ProtocolEra};
use mcp_transport_http::HttpTransport;
use mcp_transport_stdio::StdioTransport;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

fn python() -> Option<(PathBuf, PathBuf)> {
    let venv_python = common::workspace().join(".cache/venv/bin/python");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/interop_server.py");
    let has_sdk = std::process::Command::new(&venv_python)
        .args(["-c", "import mcp.server.mcpserver"])
        .output()
        .is_ok_and(|o| o.status.success());
    let found = if has_sdk {
        Ok((venv_python, script))
    } else {
        Err("the Python SDK is not installed (run scripts/install-test-servers.sh)")
    };
    common::interop("python_interop", found)
}

fn fast_reconnects() -> ConnectionConfig {
    ConnectionConfig {
        reconnect_delay: Duration::from_millis(100),
        max_reconnect_delay: Duration::from_millis(500),
        max_reconnect_attempts: 50,
        reconnect_jitter: 0.0,
        health_check_interval: Duration::from_millis(200),
        close_grace: Duration::from_millis(500),
        ..Default::default()
    }
}

async fn exercise(conn: &Connection) {
    let client = within("connect", conn.connect()).await.expect("connects");
    // mcp 2.3.0 speaks the stateless era: detected, with no setting.
    assert_eq!(client.protocol_era(), Some(ProtocolEra::Stateless));
    assert_eq!(client.protocol_version(), Some("2026-07-28"));
    assert_eq!(
        client.server_info().map(|s| s.name.as_str()),
        Some("python-interop")
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
    let r = within("add", client.call_tool("add", json!({"a": 2, "b": 3})))
        .await
        .expect("add");
    assert_eq!(r.text(), "5.0");
    within("ping", client.ping()).await.expect("pong");
}

fn kill9(pid: i32) {
    let ok = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -9 {pid}");
}

#[tokio::test]
async fn the_python_sdk_server_over_stdio_and_a_restart() {
    let Some((python, script)) = python() else {
        return;
    };
    let pids = PidFile::new();
    let transport = StdioTransport::builder(&python)
        .args([script.as_os_str(), "stdio".as_ref()])
        .env("PIDFILE", &pids.0)
        .build()
        .expect("valid settings");
    let conn = Connection::with_config("py-stdio", transport, fast_reconnects());
    // A listen stream is open the whole time (stateless era), across the
    // restart; the server acknowledges it on the notification channel.
    let mut notes = conn.notifications();
    exercise(&conn).await;
    within("the listen stream acknowledged", async {
        loop {
            match notes.recv().await {
                Ok(mcp_conn_core::ServerNotification::Other(n))
                    if n.method == "notifications/subscriptions/acknowledged" =>
                {
                    break
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    let (first, _) = pids.pids().await;
    kill9(first);
    // The Connection notices the exit and starts a new process by itself.
    common::eventually("a new process", || {
        mcp_conn_testkit::leaks::read_pidfile(&pids.0).is_some_and(|(p, _)| p != first)
    })
    .await;
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    exercise(&conn).await;
    assert_eq!(conn.info().metrics.reconnects, 1);
    within("disconnect", conn.disconnect()).await;
    common::assert_dead("the Python server", pids.pids().await.0).await;
}

async fn start_http(python: &PathBuf, script: &PathBuf, port: u16) -> tokio::process::Child {
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .args(["http", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    within("the server listening", async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Uvicorn running on") {
                return;
            }
        }
        panic!("the Python server exited before listening");
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

#[tokio::test]
async fn the_python_sdk_server_over_streamable_http_and_a_restart() {
    let Some((python, script)) = python() else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut server = start_http(&python, &script, port).await;
    let transport = HttpTransport::new(&format!("http://127.0.0.1:{port}/mcp")).expect("url");
    let conn = Connection::with_config("py-http", transport, fast_reconnects());
    conn.listen_for_changes().await;
    exercise(&conn).await;
    conn.start_monitoring().await;

    let mut status = conn.subscribe();
    let _ = server.kill().await; // SIGKILL
                                 // Noticed by the health monitor; the Connection keeps trying.
    within(
        "reconnecting",
        status.wait_for(|s| *s == ConnectionStatus::Reconnecting),
    )
    .await
    .expect("status");
    let mut server = start_http(&python, &script, port).await;
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    exercise(&conn).await;
    assert!(conn.info().metrics.reconnects >= 1);
    within("disconnect", conn.disconnect()).await;
    let _ = server.kill().await;
}
