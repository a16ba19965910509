//! The conformance client's authorization scenarios (`auth/*`): an
//! [`OAuthProvider`] with headless consent, configured from
//! `MCP_CONFORMANCE_CONTEXT` (pre-registered credentials) and with this
//! client's Client ID Metadata Document URL.
//!
//! Runs on its own (`cargo run -p examples --example conformance_auth --
//! <url>`, the scenario in `MCP_CONFORMANCE_SCENARIO`), and is also meant to
//! be included by `conformance.rs` with `#[path = "conformance_auth.rs"] mod
//! conformance_auth;`, which then builds its transport with
//! [`transport`] instead of `HttpTransport::new`.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use mcp_transport_http::oauth::{HeadlessConsent, MemoryStore, OAuthProvider};
use mcp_transport_http::HttpTransport;
use serde_json::Value;

/// The Client ID Metadata Document URL the suite expects (`auth/basic-cimd`).
pub(crate) const CLIENT_METADATA_URL: &str = "https://conformance-test.local/client-metadata.json";

/// Whether `scenario` needs authorization.
#[allow(dead_code)]
pub(crate) fn is_auth(scenario: &str) -> bool {
    scenario.starts_with("auth/")
}

/// The OAuth provider for a scenario: headless consent, in-memory store,
/// the context's pre-registered client if it gives one.
pub(crate) fn provider(url: &str) -> Result<OAuthProvider, Box<dyn Error>> {
    let context: Value = std::env::var("MCP_CONFORMANCE_CONTEXT")
        .ok()
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_default();
    let mut builder = OAuthProvider::builder(url)
        .consent(HeadlessConsent::new())
        .store(Arc::new(MemoryStore::new()))
        .client_name("mcp-conn-conformance")
        .client_metadata_url(CLIENT_METADATA_URL)
        .consent_timeout(Duration::from_secs(20))
        .http_timeout(Duration::from_secs(10));
    if let Some(id) = context.get("client_id").and_then(Value::as_str) {
        builder = builder.client_id(id);
        if let Some(secret) = context.get("client_secret").and_then(Value::as_str) {
            builder = builder.client_secret(secret);
        }
        let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
        if scenario.contains("client-credentials") {
            builder = builder.client_credentials();
        }
    }
    Ok(builder.build()?)
}

/// The transport for `url`: with OAuth for `auth/*` scenarios.
#[allow(dead_code)]
pub(crate) fn transport(url: &str, scenario: &str) -> Result<HttpTransport, Box<dyn Error>> {
    if !is_auth(scenario) {
        return Ok(HttpTransport::new(url)?);
    }
    Ok(HttpTransport::builder(url)
        .token_provider(provider(url)?)
        .build()?)
}

/// Run as its own program: connect, list the tools, call the first one.
#[allow(dead_code)]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    use mcp_conn_core::protocol::Implementation;
    use mcp_conn_core::{Connection, ConnectionConfig};

    let Some(url) = std::env::args().skip(1).last() else {
        eprintln!("usage: conformance_auth <server url> (scenario in MCP_CONFORMANCE_SCENARIO)");
        return std::process::ExitCode::from(2);
    };
    let run = async {
        let oauth = provider(&url)?;
        let transport = HttpTransport::builder(&url)
            .token_provider(oauth.clone())
            .build()?;
        let config = ConnectionConfig {
            auto_reconnect: false,
            client_info: Implementation::new("mcp-conn-conformance", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let connection = Connection::with_config("conformance", transport, config);
        let outcome = async {
            let client = connection.connect().await?;
            let tools = client.list_tools().await?;
            if let Some(tool) = tools.first() {
                let result = client.call_tool(&tool.name, serde_json::json!({})).await?;
                eprintln!("{}: {}", tool.name, result.text());
            }
            Ok::<_, mcp_conn_core::Error>(())
        }
        .await;
        connection.disconnect().await;
        if let Err(e) = outcome {
            match oauth.last_error() {
                Some(why) => eprintln!("authorization failed: {why}"),
                None => eprintln!("failed: {e}"),
            }
            return Err(Box::<dyn Error>::from(e.to_string()));
        }
        Ok::<_, Box<dyn Error>>(())
    };
    match run.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conformance client failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
