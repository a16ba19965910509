//! No token, code, verifier or client secret in the logs of a whole OAuth
//! life cycle (consent, refresh, refused consent). Its own test binary: the
//! log subscriber is global.

mod common;

use mcp_conn_core::{Connection, ConnectionConfig};
use mcp_conn_testkit::auth_server::{AuthServer, AuthServerConfig};
use mcp_transport_http::oauth::{HeadlessConsent, OAuthProvider};
use mcp_transport_http::HttpTransport;
use serde_json::json;

use common::within;

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// Connects and calls once; whether that worked.
async fn attempt(srv: &AuthServer, oauth: &OAuthProvider) -> bool {
    let transport = HttpTransport::builder(srv.mcp_url())
        .token_provider(oauth.clone())
        .build()
        .expect("valid");
    let conn = Connection::with_config(
        "oauth",
        transport,
        ConnectionConfig {
            auto_reconnect: false,
            ..common::config()
        },
    );
    let outcome = async {
        let client = within("connect", conn.connect()).await?;
        within("echo", client.call_tool("echo", json!({"text": "hi"}))).await
    }
    .await;
    conn.disconnect().await;
    outcome.is_ok()
}

#[tokio::test]
async fn no_secret_in_the_logs() {
    let captured = common::CapturedLogs::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("mcp_transport_http=trace,mcp_conn_core=trace")
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let srv = AuthServer::start(AuthServerConfig {
        clients: vec![("pre-1".into(), Some("pre-secret".into()))],
        auth_methods: vec!["client_secret_post".into()],
        ..Default::default()
    })
    .await
    .expect("starts");
    let oauth = OAuthProvider::builder(srv.mcp_url())
        .consent(HeadlessConsent::with_redirect_uri(REDIRECT))
        .client_id("pre-1")
        .client_secret("pre-secret")
        .build()
        .expect("valid");
    assert!(attempt(&srv, &oauth).await);
    srv.expire_access_tokens();
    assert!(attempt(&srv, &oauth).await, "refreshed");
    srv.expire_access_tokens();
    srv.revoke_refresh_tokens();
    srv.configure(|c| c.deny = true);
    assert!(!attempt(&srv, &oauth).await);
    let logs = captured.text();
    assert!(
        logs.contains("OAuth authorization failed"),
        "the failure is logged: {logs}"
    );
    assert_no_secret(&logs);
}

fn assert_no_secret(text: &str) {
    for secret in ["access-", "refresh-", "code-", "secret-", "pre-secret"] {
        assert!(!text.contains(secret), "{secret:?} in {text}");
    }
}
