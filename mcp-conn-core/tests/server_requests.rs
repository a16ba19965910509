//! Requests and notifications from the server.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mcp_conn_core::jsonrpc::{JsonRpcError, Message, RequestId};
use mcp_conn_core::protocol::{
    ElicitAction, ElicitRequestParams, ElicitResult, ListRootsResult, LoggingLevel, Root,
};
use mcp_conn_core::testing::MockLink;
use mcp_conn_core::{
    ClientHandlers, ConnectionConfig, ElicitationHandler, RootsProvider, ServerNotification,
};
use serde_json::{json, Value};

struct Roots;

#[async_trait]
impl RootsProvider for Roots {
    async fn list_roots(&self) -> Result<ListRootsResult, JsonRpcError> {
        Ok(ListRootsResult {
            roots: vec![Root {
                uri: "file:///work".into(),
                name: Some("work".into()),
            }],
        })
    }
}

/// Accepts forms with the schema's defaults; panics on "crash"; never
/// returns on "hang".
struct Forms;

#[async_trait]
impl ElicitationHandler for Forms {
    async fn elicit(&self, params: ElicitRequestParams) -> Result<ElicitResult, JsonRpcError> {
        match params.message.as_str() {
            "crash" => panic!("handler bug"),
            "hang" => std::future::pending().await,
            _ => {}
        }
        Ok(ElicitResult {
            action: ElicitAction::Accept,
            content: Some(params.defaults()),
        })
    }
}

async fn ask(
    link: &mut MockLink,
    id: RequestId,
    method: &str,
    params: Value,
) -> Result<Value, JsonRpcError> {
    link.send(Message::request(id.clone(), method, Some(params)))
        .await;
    match common::within(method, link.recv()).await {
        Some(Message::Response(r)) => {
            assert_eq!(r.id, Some(id), "the id is echoed unchanged (item 4)");
            r.into_value()
        }
        other => panic!("expected a response, got {other:?}"),
    }
}

fn with_handlers() -> ConnectionConfig {
    ConnectionConfig {
        handlers: ClientHandlers {
            roots: Some(Arc::new(Roots)),
            elicitation: Some(Arc::new(Forms)),
            sampling: None,
        },
        ..common::config()
    }
}

#[tokio::test]
async fn registered_handlers_answer_and_declare_capabilities() {
    let (conn, _t, mut server) = common::scripted(with_handlers());
    let (_client, mut link) = common::within("join", async {
        tokio::join!(conn.connect(), async {
            let mut link = server.accept().await;
            let init = link.handshake().await;
            let caps = &init.params.as_ref().expect("params")["capabilities"];
            assert_eq!(caps["roots"], json!({}));
            assert_eq!(caps["elicitation"], json!({"form": {}}));
            assert!(
                caps.get("sampling").is_none(),
                "no sampling handler, no sampling capability"
            );
            link
        })
    })
    .await;
    let roots = ask(&mut link, RequestId::Int(1), "roots/list", json!({}))
        .await
        .expect("roots");
    assert_eq!(
        roots,
        json!({"roots": [{"uri": "file:///work", "name": "work"}]})
    );

    let schema = json!({"type": "object", "properties": {"name": {"type": "string", "default": "Ada"}, "n": {"type": "integer"}}});
    let answer = ask(
        &mut link,
        RequestId::Str("e-1".into()),
        "elicitation/create",
        json!({"message": "Who?", "requestedSchema": schema}),
    )
    .await
    .expect("elicit");
    assert_eq!(
        answer,
        json!({"action": "accept", "content": {"name": "Ada"}})
    );

    let url = ask(
        &mut link,
        RequestId::Int(2),
        "elicitation/create",
        json!({"mode": "url", "message": "Log in", "url": "https://x", "elicitationId": "1"}),
    )
    .await;
    assert_eq!(url.expect_err("undeclared mode").code, -32602, "item 37");

    let sampling = ask(
        &mut link,
        RequestId::Int(3),
        "sampling/createMessage",
        json!({"messages": [], "maxTokens": 1}),
    )
    .await;
    assert_eq!(sampling.expect_err("no handler").code, -32601);
    let unknown = ask(&mut link, RequestId::Int(4), "tasks/list", json!({})).await;
    assert_eq!(unknown.expect_err("unknown").code, -32601, "item 5");
    let bad = ask(
        &mut link,
        RequestId::Int(5),
        "elicitation/create",
        json!({"message": 5}),
    )
    .await;
    assert_eq!(bad.expect_err("bad params").code, -32602);
    let crash = ask(
        &mut link,
        RequestId::Int(6),
        "elicitation/create",
        json!({"message": "crash"}),
    )
    .await;
    assert_eq!(crash.expect_err("handler panicked").code, -32603, "item 5");
}

#[tokio::test]
async fn without_handlers_server_requests_get_method_not_found() {
    let (conn, _t, mut server) = common::scripted(common::config());
    let (_client, mut link) = common::connect(&conn, &mut server).await;
    for method in ["roots/list", "sampling/createMessage", "elicitation/create"] {
        let err = ask(&mut link, RequestId::Int(9), method, json!({}))
            .await
            .expect_err("no handler");
        assert_eq!(err.code, -32601, "{method} (item 36/37)");
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_server_request_gets_no_answer() {
    let (conn, _t, mut server) = common::scripted(with_handlers());
    let (_client, mut link) = common::connect(&conn, &mut server).await;
    link.send(Message::request(
        RequestId::Int(77),
        "elicitation/create",
        Some(json!({"message": "hang"})),
    ))
    .await;
    link.notify(
        "notifications/cancelled",
        Some(json!({"requestId": 77, "reason": "user gave up"})),
    )
    .await;
    link.notify("notifications/cancelled", Some(json!({"requestId": 12345})))
        .await; // unknown: ignored
                // The next thing the server hears is the answer to a later ping, not 77's.
    let pong = ask(&mut link, RequestId::Int(78), "ping", json!({}))
        .await
        .expect("pong");
    assert_eq!(pong, json!({}));
    let quiet = tokio::time::timeout(Duration::from_secs(600), link.recv()).await;
    assert!(
        quiet.is_err(),
        "no late answer to the cancelled request: {quiet:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn notifications_reach_subscribers_across_reconnects() {
    let (conn, _t, mut server) = common::scripted(common::config());
    let mut notes = conn.notifications();
    let (_client, link) = common::connect(&conn, &mut server).await;
    link.notify("notifications/tools/list_changed", None).await;
    link.notify(
        "notifications/message",
        Some(json!({"level": "warning", "logger": "db", "data": {"x": 1}})),
    )
    .await;
    link.notify(
        "notifications/resources/updated",
        Some(json!({"uri": "file:///a"})),
    )
    .await;
    link.notify("notifications/brand_new", Some(json!({"k": true})))
        .await;
    assert_eq!(
        common::within("note", notes.recv()).await.expect("note"),
        ServerNotification::ToolsListChanged
    );
    assert_eq!(
        common::within("note", notes.recv()).await.expect("note"),
        ServerNotification::Log {
            level: LoggingLevel::Warning,
            logger: Some("db".into()),
            data: json!({"x": 1})
        }
    );
    assert_eq!(
        common::within("note", notes.recv()).await.expect("note"),
        ServerNotification::ResourceUpdated {
            uri: "file:///a".into()
        }
    );
    assert!(
        matches!(common::within("note", notes.recv()).await.expect("note"), ServerNotification::Other(n) if n.method == "notifications/brand_new")
    );

    drop(link);
    let link2 = common::handshake_next(&mut server).await;
    common::wait_status(&conn, mcp_conn_core::ConnectionStatus::Connected).await;
    link2
        .notify("notifications/prompts/list_changed", None)
        .await;
    assert_eq!(
        common::within("note", notes.recv()).await.expect("note"),
        ServerNotification::PromptsListChanged
    );
}

#[tokio::test]
async fn responses_keep_flowing_while_handlers_are_busy_and_the_writer_is_stuck() {
    let config = ConnectionConfig {
        queue_capacity: 8,
        max_concurrent_server_requests: 32,
        ..with_handlers()
    };
    let (conn, _transport, mut server) = common::scripted(config);
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let call = tokio::spawn(async move { client.list_tools().await });
    let request = common::within("tools/list", link.expect_method("tools/list")).await;

    // From now on the server reads nothing we write: the link's buffer, our
    // outgoing queue and the reply queue fill up.
    for n in 0..4500 {
        link.send(Message::request(RequestId::Int(10_000 + n), "ping", None))
            .await;
    }
    // 32 handlers that never finish, and 40 more requests that wait for them.
    for n in 0..72 {
        link.send(Message::request(
            RequestId::Int(20_000 + n),
            "elicitation/create",
            Some(
                json!({"message": "hang", "requestedSchema": {"type": "object", "properties": {}}}),
            ),
        ))
        .await;
    }
    link.respond(
        request.id,
        json!({"tools": [{"name": "late", "inputSchema": {}}]}),
    )
    .await;
    let tools = common::within("the answer routed past the busy handlers", call)
        .await
        .expect("task")
        .expect("tools/list succeeds");
    assert_eq!(tools[0].name, "late");
}
