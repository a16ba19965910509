//! The client the official MCP conformance suite drives
//! (`scripts/conformance.sh`): the server URL is the last argument, the
//! scenario is in `MCP_CONFORMANCE_SCENARIO`, scenario data (tool calls to
//! make) in `MCP_CONFORMANCE_CONTEXT`. Built only on the public API:
//! `Connection` + `HttpTransport`. The protocol era is detected, not told:
//! the connection probes with `server/discover` and falls back to
//! `initialize` by itself (`MCP_CONFORMANCE_PROTOCOL_VERSION` is only
//! printed).

use std::process::ExitCode;
use std::sync::Arc;

use async_trait::async_trait;
use mcp_conn_core::jsonrpc::JsonRpcError;
use mcp_conn_core::protocol::{
    ElicitAction, ElicitRequestParams, ElicitResult, Implementation, Tool,
};
use mcp_conn_core::{Client, ClientHandlers, Connection, ConnectionConfig, ElicitationHandler};
use serde_json::{json, Map, Value};

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

type Failure = Box<dyn std::error::Error>;

/// The `auth/*` scenarios: an OAuth provider with headless consent.
#[path = "conformance_auth.rs"]
mod conformance_auth;

/// Arguments for a tool nobody told us how to call: a plausible value for
/// each required property.
fn dummy_arguments(tool: &Tool) -> Value {
    let mut args = Map::new();
    let schema = &tool.input_schema;
    let required = schema["required"].as_array().cloned().unwrap_or_default();
    for name in required.iter().filter_map(Value::as_str) {
        let value = match schema["properties"][name]["type"].as_str() {
            Some("integer" | "number") => json!(1),
            Some("boolean") => json!(true),
            Some("object") => json!({}),
            Some("array") => json!([]),
            _ => json!("x"),
        };
        args.insert(name.to_owned(), value);
    }
    Value::Object(args)
}

async fn list_tools(client: &Client) -> Result<Vec<Tool>, Failure> {
    let tools = client.list_tools().await?;
    eprintln!(
        "tools: {:?}",
        tools.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
    Ok(tools)
}

async fn call(client: &Client, tool: &str, args: Value) -> Result<(), Failure> {
    let result = client.call_tool(tool, args).await?;
    eprintln!("{tool}: {}", result.text());
    Ok(())
}

async fn run(url: &str, scenario: &str, context: &Value) -> Result<(), Failure> {
    let config = ConnectionConfig {
        auto_reconnect: false,
        client_info: Implementation::new("mcp-conn-conformance", env!("CARGO_PKG_VERSION")),
        handlers: ClientHandlers {
            elicitation: Some(Arc::new(AcceptDefaults)),
            ..Default::default()
        },
        ..Default::default()
    };
    let transport = conformance_auth::transport(url, scenario)?;
    let connection = Connection::with_config("conformance", transport, config);
    let client = connection.connect().await?;
    eprintln!(
        "connected: {:?} (era {:?}, protocol {:?})",
        client.server_info().map(|s| &s.name),
        client.protocol_era(),
        client.protocol_version()
    );
    let caps = client.server_capabilities().cloned().unwrap_or_default();
    if let Some(calls) = context["toolCalls"].as_array() {
        // The scenario says which calls to make.
        list_tools(&client).await?;
        for c in calls {
            let name = c["name"].as_str().unwrap_or_default();
            call(&client, name, c["arguments"].clone()).await?;
        }
    } else {
        match scenario {
            "initialize" | "request-metadata" => {}
            "tools_call" => call(&client, "add_numbers", json!({"a": 5, "b": 3})).await?,
            "elicitation-sep1034-client-defaults" => {
                call(&client, "test_client_elicitation_defaults", json!({})).await?
            }
            "sse-retry" => call(&client, "test_reconnection", json!({})).await?,
            "json-schema-2020-12-preservation" => {
                let tools = list_tools(&client).await?;
                let focal = tools.iter().find(|t| t.name == "json_schema_2020_12_tool");
                if let Some(focal) = focal {
                    let schema = focal.input_schema.clone();
                    call(&client, "json_schema_echo", json!({ "schema": schema })).await?;
                }
            }
            "sep-2322-client-request-state" => {
                // Two calls in parallel with the multi-round ones: nothing of
                // one call's rounds may reach another.
                let c = &client;
                let (a, b, u) = tokio::join!(
                    call(c, "test_mrtr_echo_state", json!({})),
                    call(c, "test_mrtr_no_state", json!({})),
                    call(c, "test_mrtr_unrelated", json!({})),
                );
                a?;
                b?;
                u?;
                call(c, "test_mrtr_no_result_type", json!({})).await?;
            }
            _ => {
                // Exercise everything the server offers.
                if caps.tools.is_some() {
                    for tool in list_tools(&client).await? {
                        let args = dummy_arguments(&tool);
                        call(&client, &tool.name, args).await?;
                    }
                }
                if caps.resources.is_some() {
                    if let Some(r) = client.list_resources().await?.first() {
                        client.read_resource(&r.uri).await?;
                    }
                }
                if caps.prompts.is_some() {
                    if let Some(p) = client.list_prompts().await?.first() {
                        client.get_prompt(&p.name, []).await?;
                    }
                }
            }
        }
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
    let context: Value = std::env::var("MCP_CONFORMANCE_CONTEXT")
        .ok()
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or(Value::Null);
    if let Ok(v) = std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION") {
        eprintln!("the suite runs this scenario at {v}; the era is detected");
    }
    match run(&url, &scenario, &context).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conformance client failed: {e}");
            ExitCode::FAILURE
        }
    }
}
