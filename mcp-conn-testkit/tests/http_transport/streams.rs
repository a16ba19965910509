//! Event streams: JSON and SSE replies, messages on a reply stream,
//! resumption with `Last-Event-ID`, the GET stream, and requests from the
//! server answered by POST.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::Method;
use mcp_conn_core::jsonrpc::JsonRpcError;
use mcp_conn_core::protocol::{ListRootsResult, LoggingLevel, Root};
use mcp_conn_core::{
    ClientHandlers, Connection, ConnectionConfig, RootsProvider, ServerNotification, TransportError,
};
use mcp_conn_testkit::http_server::{Behavior, Fault, Reply};
use mcp_transport_http::HttpTransport;
use serde_json::json;

use crate::common::{self, within};
use crate::{connection, echo, handshake_error, server, transport_error};

#[tokio::test]
async fn json_and_sse_replies_are_both_handled() {
    for reply in [Reply::Json, Reply::Sse] {
        let (_srv, conn) = crate::replying(reply).await;
        let client = within("connect", conn.connect()).await.expect("connects");
        assert_eq!(client.protocol_version(), Some("2025-11-25"), "{reply:?}");
        assert_eq!(
            within("tools", client.list_tools())
                .await
                .expect("tools")
                .len(),
            2
        );
        assert_eq!(echo(&conn, "both").await, "both", "{reply:?}");
    }
}

#[tokio::test]
async fn messages_on_a_reply_stream_are_routed() {
    let srv = server(Behavior {
        reply: Reply::Sse,
        ..Default::default()
    })
    .await;
    let conn = connection(&srv.url());
    let mut notes = conn.notifications();
    let client = within("connect", conn.connect()).await.expect("connects");
    // Once the handshake's `initialized` is delivered, calls run their own
    // exchanges.
    within("warm up", client.ping()).await.expect("ping");
    // The server sends a log notification on the reply stream, then the result.
    let r = within("notify", client.call_tool("notify", json!({})))
        .await
        .expect("answered");
    assert_eq!(r.text(), "notified");
    // Routed before the result was returned (the caller runs the exchange,
    // but a response that follows a notification goes the same way): no
    // wait.
    let note = notes
        .try_recv()
        .expect("the notification, before the result");
    assert!(
        matches!(
            note,
            ServerNotification::Log {
                level: LoggingLevel::Info,
                ..
            }
        ),
        "{note:?}"
    );
}

#[tokio::test]
async fn a_broken_reply_stream_is_resumed_after_retry_with_last_event_id() {
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    within("connect", conn.connect()).await.expect("connects");
    srv.push_fault(Fault::PrimeAndClose { retry_ms: 500 });
    assert_eq!(echo(&conn, "resumed").await, "resumed");
    let reqs = srv.requests();
    let post = reqs
        .iter()
        .rev()
        .find(|r| r.rpc_method() == Some("tools/call"))
        .expect("the POST");
    let get = reqs
        .iter()
        .rev()
        .find(|r| r.method == Method::GET && r.header("last-event-id").is_some())
        .expect("a resume");
    assert!(get
        .header("last-event-id")
        .is_some_and(|id| id.starts_with("ev-")));
    let waited = get.at.duration_since(post.at);
    assert!(
        waited >= Duration::from_millis(450) && waited <= Duration::from_millis(1000),
        "waited {waited:?}"
    );
    assert_eq!(conn.info().connection_count, 1, "not a lost link");
}

#[tokio::test]
async fn a_405_get_stream_is_not_retried_and_a_real_one_delivers() {
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    within("connect", conn.connect()).await.expect("connects");
    common::eventually("one GET", || {
        srv.requests().iter().any(|r| r.method == Method::GET)
    })
    .await;
    for i in 0..3 {
        echo(&conn, &i.to_string()).await;
    }
    let gets: Vec<_> = srv
        .requests()
        .into_iter()
        .filter(|r| r.method == Method::GET)
        .collect();
    assert_eq!(gets.len(), 1, "405 turns it off");
    assert_eq!(gets[0].header("accept"), Some("text/event-stream"));

    let srv = server(Behavior {
        get_stream: true,
        ..Default::default()
    })
    .await;
    let conn = connection(&srv.url());
    let mut notes = conn.notifications();
    within("connect", conn.connect()).await.expect("connects");
    common::eventually("the stream is open", || {
        srv.push_message(&json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}))
            > 0
    })
    .await;
    assert_eq!(
        within("note", notes.recv()).await.expect("note"),
        ServerNotification::ToolsListChanged
    );
}

struct Roots;

#[async_trait]
impl RootsProvider for Roots {
    async fn list_roots(&self) -> Result<ListRootsResult, JsonRpcError> {
        Ok(ListRootsResult {
            roots: vec![Root {
                uri: "file:///srv".into(),
                name: None,
            }],
        })
    }
}

#[tokio::test]
async fn server_requests_on_a_stream_are_answered_by_post() {
    let srv = server(Behavior {
        reply: Reply::Sse,
        ..Default::default()
    })
    .await;
    let config = ConnectionConfig {
        handlers: ClientHandlers {
            roots: Some(Arc::new(Roots)),
            ..Default::default()
        },
        ..common::config()
    };
    let conn = Connection::with_config("web", HttpTransport::new(&srv.url()).expect("url"), config);
    let client = within("connect", conn.connect()).await.expect("connects");
    let r = within("ask_roots", client.call_tool("ask_roots", json!({})))
        .await
        .expect("answered");
    assert!(r.text().contains("file:///srv"), "{}", r.text());
    let answers: Vec<_> = srv
        .requests()
        .into_iter()
        .filter(|r| r.body.as_ref().is_some_and(|b| b.get("result").is_some()))
        .collect();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].body.as_ref().expect("body")["id"], "srv-roots-1");
}

#[tokio::test]
async fn a_busy_get_stream_ends_the_link_with_retry_after() {
    let srv = server(Behavior {
        get_stream: true,
        get_busy: Some((503, Some("2".into()))),
        ..Default::default()
    })
    .await;
    let conn = Connection::with_config(
        "web",
        HttpTransport::new(&srv.url()).expect("url"),
        ConnectionConfig {
            auto_reconnect: false,
            ..common::config()
        },
    );
    let err = handshake_error(&conn).await;
    match transport_error(&err) {
        TransportError::Http {
            status: 503,
            retry_after,
            ..
        } => assert_eq!(*retry_after, Some(Duration::from_secs(2))),
        other => panic!("{other:?}"),
    }
    assert!(err.is_retryable());
}
