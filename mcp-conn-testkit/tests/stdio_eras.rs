//! Era detection over stdio with real processes: the fake server in its
//! stateless mode and in its handshake modes, `-32022` with the versions the
//! server speaks, MRTR through a handler, and a killed stateless server
//! coming back in the same era.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::{fake, within, PidFile};
use mcp_conn_core::jsonrpc::JsonRpcError;
use mcp_conn_core::protocol::{ElicitAction, ElicitRequestParams, ElicitResult};
use mcp_conn_core::{
    ClientHandlers, Connection, ConnectionConfig, ConnectionStatus, ElicitationHandler,
    ProtocolEra, ProtocolPreference,
};
use serde_json::json;

struct Accept;

#[async_trait]
impl ElicitationHandler for Accept {
    async fn elicit(&self, params: ElicitRequestParams) -> Result<ElicitResult, JsonRpcError> {
        Ok(ElicitResult {
            action: ElicitAction::Accept,
            content: Some(params.defaults()),
        })
    }
}

#[tokio::test]
async fn a_stateless_server_is_spoken_to_statelessly_and_comes_back_in_that_era() {
    let pids = PidFile::new();
    let config = ConnectionConfig {
        handlers: ClientHandlers {
            elicitation: Some(Arc::new(Accept)),
            ..Default::default()
        },
        ..common::config()
    };
    let conn = Connection::with_config("modern", fake("stateless", &pids), config);
    let client = within("connect", conn.connect()).await.expect("connects");
    assert_eq!(client.protocol_era(), Some(ProtocolEra::Stateless));
    assert_eq!(client.protocol_version(), Some("2026-07-28"));
    let tools = within("tools", client.list_tools()).await.expect("tools");
    assert!(tools.iter().any(|t| t.name == "echo"));
    let echoed = within("echo", client.call_tool("echo", json!({"text": "hi"})))
        .await
        .expect("echo");
    assert_eq!(echoed.text(), "hi");
    // Two rounds of input, answered by the handler; the caller sees one call.
    let asked = within("ask", client.call_tool("ask", json!({})))
        .await
        .expect("ask");
    assert!(asked.text().contains("\"ok\":true"), "{}", asked.text());
    // Alive, without ping.
    assert!(within("health", conn.health_check()).await.ok);

    // Killed: it comes back in the same era.
    let (pid, _) = pids.pids().await;
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    assert!(status.is_ok_and(|s| s.success()));
    within(
        "reconnected",
        conn.wait_for_status(|s| s == ConnectionStatus::Reconnecting),
    )
    .await;
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    let client = conn.client().expect("connected");
    assert_eq!(client.protocol_era(), Some(ProtocolEra::Stateless));
    let echoed = within(
        "echo again",
        client.call_tool("echo", json!({"text": "back"})),
    )
    .await
    .expect("echo");
    assert_eq!(echoed.text(), "back");
}

#[tokio::test]
async fn a_handshake_server_answers_the_probe_and_gets_initialize() {
    let pids = PidFile::new();
    let conn = Connection::with_config("old", fake("normal", &pids), common::config());
    let client = within("connect", conn.connect()).await.expect("connects");
    assert_eq!(client.protocol_era(), Some(ProtocolEra::Handshake));
    assert_eq!(client.protocol_version(), Some("2025-11-25"));
}

#[tokio::test]
async fn unsupported_version_retries_with_the_servers_version() {
    let pids = PidFile::new();
    let transport = common::fake_builder("stateless", &pids)
        .env("FAKE_MCP_VERSIONS", "2026-07-28")
        .build()
        .expect("valid settings");
    let config = ConnectionConfig {
        protocol: ProtocolPreference::Stateless(vec!["2031-01-01".into(), "2026-07-28".into()]),
        ..common::config()
    };
    let conn = Connection::with_config("picky", transport, config);
    let client = within("connect", conn.connect()).await.expect("connects");
    assert_eq!(client.protocol_version(), Some("2026-07-28"));

    // Forcing the stateless era on a handshake-era server fails, typed.
    let pids = PidFile::new();
    let config = ConnectionConfig {
        protocol: ProtocolPreference::Stateless(Vec::new()),
        auto_reconnect: false,
        ..common::config()
    };
    let conn = Connection::with_config("forced", fake("normal", &pids), config);
    let err = within("connect", conn.connect())
        .await
        .expect_err("not stateless");
    assert!(
        matches!(err, mcp_conn_core::Error::UnsupportedVersion { .. }),
        "{err}"
    );
}
