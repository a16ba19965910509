//! OAuth requests take the transport's way to the server: through its
//! proxy (with the proxy's credentials), not around it.

mod common;

use std::time::Duration;

use mcp_conn_core::{Connection, ConnectionConfig};
use mcp_conn_testkit::auth_server::{AuthServer, AuthServerConfig};
use mcp_conn_testkit::proxy::{ProxyBehavior, TestProxy};
use mcp_transport_http::oauth::{HeadlessConsent, OAuthProvider};
use mcp_transport_http::HttpTransport;
use serde_json::json;

use common::within;

#[tokio::test]
async fn discovery_registration_and_tokens_go_through_the_transports_proxy() {
    let srv = AuthServer::start(AuthServerConfig::default())
        .await
        .expect("the server starts");
    let proxy = TestProxy::start(ProxyBehavior {
        credentials: Some(("dave".into(), "pw".into())),
        ..Default::default()
    })
    .await
    .expect("the proxy starts");
    let oauth = OAuthProvider::builder(srv.mcp_url())
        .consent(HeadlessConsent::with_redirect_uri(
            "http://127.0.0.1:9/callback",
        ))
        .http_timeout(Duration::from_secs(5))
        .build()
        .expect("valid settings");
    let transport = HttpTransport::builder(srv.mcp_url())
        .token_provider(oauth.clone())
        .proxy(proxy.url(Some(("dave", "pw"))))
        .no_proxy("")
        .build()
        .expect("valid");
    let conn = Connection::with_config(
        "proxied-oauth",
        transport,
        ConnectionConfig {
            auto_reconnect: false,
            ..common::config()
        },
    );
    let client = within("connect", conn.connect())
        .await
        .expect("authorized through the proxy");
    let result = within("echo", client.call_tool("echo", json!({"text": "hi"})))
        .await
        .expect("echo");
    assert_eq!(result.text(), "hi");
    let targets = proxy.targets();
    assert!(
        targets.iter().any(|t| t.contains("/.well-known/")),
        "the OAuth client's connections went through the proxy: {targets:?}"
    );
    assert_eq!(proxy.refused(), 0, "with the proxy's credentials");
    conn.disconnect().await;
}
