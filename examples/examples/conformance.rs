//! The client the official MCP conformance suite drives
//! (`scripts/conformance.sh`): the server URL is the last argument and the
//! scenario is in `MCP_CONFORMANCE_SCENARIO`. Built only on the public API:
//! `Connection` + `HttpTransport`.

use std::process::ExitCode;
use std::sync::Arc;

use async_trait::async_trait;
use mcp_conn_core::jsonrpc::JsonRpcError;
use mcp_conn_core::protocol::{ElicitAction, ElicitRequestParams, ElicitResult, Implementation};
use mcp_conn_core::{ClientHandlers, Connection, ConnectionConfig, ElicitationHandler};
use mcp_transport_http::HttpTransport;
use serde_json::{json, Value};

/// Accepts every form, filled with the defaults its schema gives (SEP-1034).
struct AcceptDefaults;

#[async_trait]
impl ElicitationHandler for AcceptDefaults {
    async fn elicit(&self, params: ElicitRequestParams) -> Result<ElicitResult, JsonRpcError> {
        Ok(ElicitResult {
            action: ElicitAction::Accept,
            content: Some(params.defaults()),
        })
    }
}

async fn run(url: &str, scenario: &str) -> Result<(), Box<dyn std::error::Error>> {
    let config = ConnectionConfig {
        auto_reconnect: false,
        client_info: Implementation::new("mcp-conn-conformance", env!("CARGO_PKG_VERSION")),
        handlers: ClientHandlers {
            elicitation: Some(Arc::new(AcceptDefaults)),
            ..Default::default()
        },
        ..Default::default()
    };
    let connection = Connection::with_config("conformance", HttpTransport::new(url)?, config);
    let client = connection.connect().await?;
    eprintln!(
        "connected: {:?} (protocol {:?})",
        client.server_info().map(|s| &s.name),
        client.protocol_version()
    );
    let call = |tool: &'static str, args: Value| {
        let client = client.clone();
        async move {
            let tools = client.list_tools().await?;
            eprintln!(
                "tools: {:?}",
                tools.iter().map(|t| &t.name).collect::<Vec<_>>()
            );
            let result = client.call_tool(tool, args).await?;
            eprintln!("{tool}: {}", result.text());
            Ok::<_, mcp_conn_core::Error>(())
        }
    };
    match scenario {
        "initialize" => {}
        "tools_call" => call("add_numbers", json!({"a": 5, "b": 3})).await?,
        "elicitation-sep1034-client-defaults" => {
            call("test_client_elicitation_defaults", json!({})).await?
        }
        "sse-retry" => call("test_reconnection", json!({})).await?,
        other => eprintln!("scenario {other:?}: nothing beyond initialize"),
    }
    connection.disconnect().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(url) = std::env::args().skip(1).last() else {
        eprintln!("usage: conformance <server url> (scenario in MCP_CONFORMANCE_SCENARIO)");
        return ExitCode::from(2);
    };
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    match run(&url, &scenario).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conformance client failed: {e}");
            ExitCode::FAILURE
        }
    }
}
