//! Stateless era: the `subscriptions/listen` stream feeds the notification
//! channel and the `tools/list_changed` counter, and is opened again after a
//! reconnect.

mod common;

use mcp_conn_core::testing::MockLink;
use mcp_conn_core::{ConnectionStatus, ServerNotification, TransportError};
use serde_json::json;

const V: &str = "2026-07-28";

async fn discover(link: &mut MockLink) {
    let probe = link.expect_method("server/discover").await;
    link.respond(
        probe.id,
        json!({"supportedVersions": [V], "capabilities": {"tools": {"listChanged": true}}}),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_listen_stream_feeds_the_channel_and_reopens_after_a_reconnect() {
    let (conn, _t, mut server) = common::scripted(common::config());
    let (client, mut link) = common::within("connect", async {
        tokio::join!(conn.connect(), async {
            let mut link = server.accept().await;
            discover(&mut link).await;
            link
        })
    })
    .await;
    client.expect("connects");
    let mut notes = conn.notifications(); // someone subscribes: listen
    let listen = common::within("listen", link.expect_method("subscriptions/listen")).await;
    let params = listen.params.clone().unwrap_or_default();
    assert_eq!(params["notifications"]["toolsListChanged"], true);
    assert_eq!(
        params["_meta"]["io.modelcontextprotocol/protocolVersion"],
        V
    );
    let sub = json!({"io.modelcontextprotocol/subscriptionId": listen.id});
    link.notify(
        "notifications/subscriptions/acknowledged",
        Some(json!({"notifications": {"toolsListChanged": true}, "_meta": sub})),
    )
    .await;
    link.notify(
        "notifications/tools/list_changed",
        Some(json!({"_meta": sub})),
    )
    .await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let n = common::within("notification", notes.recv())
            .await
            .expect("open");
        seen.push(match n {
            ServerNotification::ToolsListChanged => "tools/list_changed".to_owned(),
            ServerNotification::Other(other) => other.method,
            other => format!("{other:?}"),
        });
    }
    assert_eq!(
        seen,
        [
            "notifications/subscriptions/acknowledged",
            "tools/list_changed"
        ]
    );
    assert_eq!(conn.info().metrics.tools_list_changed, 1);

    // The server dies; after the reconnect the stream is opened again.
    link.fail(TransportError::Eof).await;
    let mut link = common::within("reconnect", server.accept()).await;
    discover(&mut link).await;
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    let again = common::within("listen again", link.expect_method("subscriptions/listen")).await;
    assert_ne!(again.params, None);

    // A resource subscription reopens it with the URI.
    conn.listen_to_resource("file:///a").await;
    // The old stream is cancelled first (on HTTP: its stream is closed).
    let cancel = common::within("cancel", link.recv()).await;
    assert!(
        matches!(&cancel, Some(mcp_conn_core::jsonrpc::Message::Notification(n))
            if n.method == "notifications/cancelled"
                && n.params.as_ref().map(|p| p["requestId"].clone()) == Some(json!(again.id))),
        "{cancel:?}"
    );
    let with_uri = common::within(
        "listen with uri",
        link.expect_method("subscriptions/listen"),
    )
    .await;
    assert_eq!(
        with_uri.params.unwrap_or_default()["notifications"]["resourceSubscriptions"],
        json!(["file:///a"])
    );
}
