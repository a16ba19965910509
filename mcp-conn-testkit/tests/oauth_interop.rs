//! Interop: the OAuth client against a real OAuth-protected MCP server that
//! we did not write: the official TypeScript SDK's example server
//! (`@modelcontextprotocol/sdk`, `examples/server/simpleStreamableHttp.js
//! --oauth`, with its demo authorization server on a second port), installed
//! with server-everything by `scripts/install-test-servers.sh`. Skipped with
//! a printed reason when it is not installed; `MCP_CONN_REQUIRE_INTEROP=1`
//! (CI) makes that a failure.
//!
//! The demo authorization server approves every authorization at once (so
//! the headless consent stands in for the user), issues one-hour access
//! tokens and no refresh tokens.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::within;
use mcp_conn_core::{Connection, ConnectionConfig};
use mcp_transport_http::oauth::{FileStore, HeadlessConsent, OAuthProvider};
use mcp_transport_http::HttpTransport;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn provider(url: &str, store: &std::path::Path) -> OAuthProvider {
    OAuthProvider::builder(url)
        .consent(HeadlessConsent::with_redirect_uri(
            "http://localhost:9/callback",
        ))
        .store(Arc::new(FileStore::new(store)))
        .http_timeout(Duration::from_secs(10))
        .consent_timeout(Duration::from_secs(10))
        .build()
        .expect("valid")
}

async fn greet(url: &str, oauth: &OAuthProvider) -> String {
    let transport = HttpTransport::builder(url)
        .token_provider(oauth.clone())
        .build()
        .expect("valid");
    let conn = Connection::with_config(
        "ts-oauth",
        transport,
        ConnectionConfig {
            auto_reconnect: false,
            ..common::config()
        },
    );
    let outcome = async {
        let client = within("connect", conn.connect()).await?;
        within(
            "greet",
            client.call_tool("greet", json!({"name": "mcp-conn"})),
        )
        .await
    }
    .await;
    conn.disconnect().await;
    match outcome {
        Ok(result) => result.text(),
        Err(e) => panic!("{e}; OAuth: {:?}", oauth.last_error()),
    }
}

#[tokio::test]
async fn the_typescript_sdk_example_server_with_oauth() {
    let Some(script) = common::everything(
        "oauth_interop",
        "@modelcontextprotocol/sdk/dist/esm/examples/server/simpleStreamableHttp.js",
    ) else {
        return;
    };
    let (mcp_port, auth_port) = (free_port(), free_port());
    let mut server = tokio::process::Command::new("node")
        .arg(&script)
        .arg("--oauth")
        .env("MCP_PORT", mcp_port.to_string())
        .env("MCP_AUTH_PORT", auth_port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut stdout = BufReader::new(server.stdout.take().expect("stdout")).lines();
    within("the server listening", async {
        while let Some(line) = stdout.next_line().await.expect("stdout") {
            if line.contains("MCP Streamable HTTP Server listening") {
                return;
            }
        }
        panic!("the server exited before listening");
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });

    // The server publishes its resource as localhost.
    let url = format!("http://localhost:{mcp_port}/mcp");
    let dir = std::env::temp_dir().join(format!("mcp-oauth-interop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = dir.join("tokens.json");

    // First connect: discovery, dynamic registration, consent, token.
    let first = provider(&url, &store);
    assert!(greet(&url, &first).await.contains("mcp-conn"));
    assert_eq!(first.consent_count(), 1);
    drop(first);

    // The client restarts: the file store's token is used, no consent.
    let second = provider(&url, &store);
    assert!(greet(&url, &second).await.contains("mcp-conn"));
    assert_eq!(second.consent_count(), 0);

    // The access token has expired (its expiry rewritten in the store): this
    // server issues no refresh token, so the client asks for consent again,
    // once, and goes on.
    let text = std::fs::read_to_string(&store).expect("stored");
    let mut doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    doc["entries"][0]["credentials"]["expires_at"] = json!(1);
    std::fs::write(&store, doc.to_string()).expect("rewritten");
    let third = provider(&url, &store);
    assert!(greet(&url, &third).await.contains("mcp-conn"));
    assert_eq!(third.consent_count(), 1);

    let _ = std::fs::remove_dir_all(&dir);
    let _ = server.kill().await;
}
