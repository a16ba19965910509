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
//! tokens and no refresh tokens. For refresh, a second server
//! (`js/oauth_refresh_server.mjs`) is made of the same SDK's authorization
//! router, token endpoint and bearer middleware, with token bookkeeping of
//! ours that issues refresh tokens.

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

/// Starts a node server and waits (bounded) for its `ready` line on stdout.
async fn start_node(mut command: tokio::process::Command, ready: &str) -> tokio::process::Child {
    let mut server = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut stdout = BufReader::new(server.stdout.take().expect("stdout")).lines();
    within("the server listening", async {
        while let Some(line) = stdout.next_line().await.expect("stdout") {
            if line.contains(ready) {
                return;
            }
        }
        panic!("the server exited before listening");
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
    server
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
    call(url, oauth, "greet", json!({"name": "mcp-conn"})).await
}

async fn call(url: &str, oauth: &OAuthProvider, tool: &str, args: serde_json::Value) -> String {
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
        within(tool, client.call_tool(tool, args)).await
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
    let mut command = tokio::process::Command::new("node");
    command
        .arg(&script)
        .arg("--oauth")
        .env("MCP_PORT", mcp_port.to_string())
        .env("MCP_AUTH_PORT", auth_port.to_string());
    let mut server = start_node(command, "MCP Streamable HTTP Server listening").await;

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

/// `METHOD path` on 127.0.0.1:`port` (the refresh server's control
/// endpoints); the answer's body.
async fn control(port: u16, method: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("writes");
    let mut answer = String::new();
    within("the control answer", stream.read_to_string(&mut answer))
        .await
        .expect("reads");
    answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// The TypeScript SDK's own authorization router, token endpoint (with its
/// `refresh_token` grant) and bearer middleware
/// (`mcp-conn-testkit/js/oauth_refresh_server.mjs`; only its token
/// bookkeeping is ours, since the SDK's demo issues no refresh tokens):
/// consent once, a restarted client reuses the file store, an access token
/// the server expired is refreshed on the 401 without consent, and a revoked
/// refresh token leads to consent again.
#[tokio::test]
async fn the_typescript_sdk_auth_router_refreshes_and_asks_again_when_refresh_fails() {
    let Some(router) = common::everything(
        "oauth_interop",
        "@modelcontextprotocol/sdk/dist/esm/server/auth/router.js",
    ) else {
        return;
    };
    let node_modules = common::workspace().join(".cache/npm/node_modules");
    assert!(router.starts_with(&node_modules));
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js/oauth_refresh_server.mjs");
    let port = free_port();
    let mut command = tokio::process::Command::new("node");
    command
        .arg(&script)
        .arg(&node_modules)
        .arg(port.to_string());
    let mut server = start_node(command, "listening on").await;

    let url = format!("http://localhost:{port}/mcp");
    let dir = std::env::temp_dir().join(format!("mcp-oauth-refresh-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = dir.join("tokens.json");
    let whoami = |oauth: OAuthProvider| {
        let url = url.clone();
        async move {
            let text = call(&url, &oauth, "whoami", json!({})).await;
            (text, oauth.consent_count())
        }
    };
    let counts = || async {
        let body = control(port, "GET", "/test/counts").await;
        let doc: serde_json::Value = serde_json::from_str(&body).expect("counts");
        (doc["authorizations"].as_u64(), doc["refreshes"].as_u64())
    };

    let (text, consents) = whoami(provider(&url, &store)).await;
    assert!(text.starts_with("client "), "{text}");
    assert_eq!(consents, 1, "first connect: one consent");
    assert_eq!(counts().await, (Some(1), Some(0)));

    let (_, consents) = whoami(provider(&url, &store)).await;
    assert_eq!(
        consents, 0,
        "restarted client: the stored token, no consent"
    );

    control(port, "POST", "/test/expire-access-tokens").await;
    let (_, consents) = whoami(provider(&url, &store)).await;
    assert_eq!(
        consents, 0,
        "an expired access token is refreshed, no consent"
    );
    assert_eq!(counts().await, (Some(1), Some(1)));

    control(port, "POST", "/test/expire-access-tokens").await;
    control(port, "POST", "/test/revoke-refresh-tokens").await;
    let (_, consents) = whoami(provider(&url, &store)).await;
    assert_eq!(consents, 1, "the refresh token was refused: consent again");
    assert_eq!(counts().await, (Some(2), Some(1)));

    let _ = std::fs::remove_dir_all(&dir);
    let _ = server.kill().await;
}
