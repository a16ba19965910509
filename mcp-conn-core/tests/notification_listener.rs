//! `ConnectionConfig::notification_listener`, and the notification channel
//! made by its first subscriber.

mod common;

use std::sync::Arc;

use mcp_conn_core::{ConnectionConfig, ServerNotification};
use serde_json::json;
use tokio::sync::mpsc;

#[tokio::test]
async fn the_listener_sees_every_notification_in_order_before_subscribers() {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let config = ConnectionConfig {
        notification_listener: Some(Arc::new(move |name: &str, note: &ServerNotification| {
            let _ = seen_tx.send((name.to_owned(), note.clone()));
        })),
        ..common::config()
    };
    let (conn, _t, mut server) = common::scripted(config);
    let (_client, link) = common::connect(&conn, &mut server).await;

    // No subscriber yet: the listener alone hears these.
    link.notify("notifications/tools/list_changed", None).await;
    link.notify(
        "notifications/resources/updated",
        Some(json!({"uri": "file:///a"})),
    )
    .await;
    let first = common::within("listener", seen.recv()).await;
    assert_eq!(
        first,
        Some(("mock".to_owned(), ServerNotification::ToolsListChanged))
    );
    let second = common::within("listener", seen.recv()).await;
    assert_eq!(
        second,
        Some((
            "mock".to_owned(),
            ServerNotification::ResourceUpdated {
                uri: "file:///a".into()
            }
        ))
    );

    // A subscriber taken now (the channel is made here) gets what follows,
    // after the listener did.
    let mut rx = conn.notifications();
    link.notify("notifications/prompts/list_changed", None)
        .await;
    let got = common::within("subscriber", rx.recv())
        .await
        .expect("a notification");
    assert_eq!(got, ServerNotification::PromptsListChanged);
    assert_eq!(
        seen.try_recv().ok(),
        Some(("mock".to_owned(), ServerNotification::PromptsListChanged)),
        "the listener ran before the subscriber was handed the notification"
    );
    // Progress is not a notification for either of them.
    link.notify(
        "notifications/progress",
        Some(json!({"progressToken": 99, "progress": 1})),
    )
    .await;
    link.notify("notifications/tools/list_changed", None).await;
    let got = common::within("subscriber", rx.recv())
        .await
        .expect("a notification");
    assert_eq!(got, ServerNotification::ToolsListChanged);
    assert_eq!(
        seen.try_recv().ok(),
        Some(("mock".to_owned(), ServerNotification::ToolsListChanged))
    );
}

#[tokio::test]
async fn notifications_sent_before_the_first_subscriber_are_not_kept() {
    let (conn, _t, mut server) = common::scripted(common::config());
    let (client, link) = common::connect(&conn, &mut server).await;
    link.notify("notifications/resources/list_changed", None)
        .await;
    // A round trip: the notification above was read and dropped.
    let ping = tokio::spawn(async move { client.ping().await });
    let mut link = link;
    let req = common::within("ping", link.expect_method("ping")).await;
    link.respond(req.id, json!({})).await;
    ping.await.expect("task").expect("pong");

    // The session's client and the connection share one channel.
    let mut from_client = conn.client().expect("connected").notifications();
    let mut from_conn = conn.notifications();
    link.notify("notifications/tools/list_changed", None).await;
    for rx in [&mut from_client, &mut from_conn] {
        let got = common::within("subscriber", rx.recv())
            .await
            .expect("a notification");
        assert_eq!(got, ServerNotification::ToolsListChanged);
        assert!(rx.try_recv().is_err(), "nothing else was kept");
    }
}
