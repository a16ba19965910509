//! The typed calls: capability gating, pagination, tool errors.

mod common;

use mcp_conn_core::jsonrpc::Message;
use mcp_conn_core::protocol::{CompletionReference, LoggingLevel};
use mcp_conn_core::testing::{FakeServer, MockTransport};
use mcp_conn_core::{Connection, Error};
use serde_json::json;

#[tokio::test]
async fn calls_the_server_did_not_declare_fail_locally() {
    let (conn, _t, mut server) = common::scripted(common::config());
    let (client, mut link) = common::within("join", async {
        tokio::join!(conn.connect(), async {
            let mut link = server.accept().await;
            link.handshake_with("2025-06-18", json!({"tools": {}}))
                .await;
            link
        })
    })
    .await;
    let client = client.expect("connects");
    let refused = [
        client.list_prompts().await.map(drop),
        client.list_resources().await.map(drop),
        client.read_resource("file:///x").await.map(drop),
        client.subscribe_resource("file:///x").await,
        client.set_logging_level(LoggingLevel::Debug).await,
        client
            .complete(CompletionReference::Prompt { name: "p".into() }, "a", "b")
            .await
            .map(drop),
        client.get_prompt("p", []).await.map(drop),
    ];
    for r in refused {
        assert!(
            matches!(r, Err(Error::CapabilityNotSupported { .. })),
            "{r:?}"
        );
    }
    // Nothing of that reached the server: the next message is this ping.
    let ping = tokio::spawn({
        let c = client.clone();
        async move { c.ping().await }
    });
    match common::within("ping", link.recv()).await {
        Some(Message::Request(r)) if r.method == "ping" => link.respond(r.id, json!({})).await,
        other => panic!("the server saw {other:?}"),
    }
    ping.await.expect("task").expect("pong");
}

#[tokio::test]
async fn list_tools_follows_every_page() {
    let conn = Connection::new(
        "paged",
        MockTransport::serving(FakeServer {
            page_size: 1,
            ..Default::default()
        }),
    );
    let client = conn.connect().await.expect("connects");
    let names: Vec<String> = client
        .list_tools()
        .await
        .expect("tools")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["echo", "add"]);
}

#[tokio::test]
async fn a_cursor_loop_is_a_protocol_error() {
    let (conn, _t, mut server) = common::scripted(common::config());
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let list = tokio::spawn(async move { client.list_tools().await });
    let first = common::within("page", link.expect_method("tools/list")).await;
    assert!(first.params.is_none(), "the first page has no cursor");
    link.respond(
        first.id,
        json!({"tools": [{"name": "a", "inputSchema": {}}], "nextCursor": "c1"}),
    )
    .await;
    let second = common::within("page", link.expect_method("tools/list")).await;
    assert_eq!(
        second.params.expect("params")["cursor"],
        "c1",
        "cursor sent back unchanged"
    );
    link.respond(second.id, json!({"tools": [], "nextCursor": "c1"}))
        .await;
    let err = common::within("list", list)
        .await
        .expect("task")
        .expect_err("loop");
    assert!(matches!(err, Error::Protocol { .. }), "{err}");
}

#[tokio::test]
async fn a_tool_error_is_a_result_and_a_bad_result_is_a_protocol_error() {
    let (conn, _t, mut server) = common::scripted(common::config());
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let call = tokio::spawn({
        let c = client.clone();
        async move { c.call_tool("fail", json!({})).await }
    });
    let req = common::within("call", link.expect_method("tools/call")).await;
    link.respond(
        req.id,
        json!({"content": [{"type": "text", "text": "disk full"}], "isError": true}),
    )
    .await;
    let result = call.await.expect("task").expect("an RPC success (item 30)");
    assert!(result.is_error());
    assert_eq!(result.text(), "disk full");

    let call = tokio::spawn(async move { client.list_tools().await });
    let req = common::within("list", link.expect_method("tools/list")).await;
    link.respond(req.id, json!({"tools": "not a list"})).await;
    let err = call.await.expect("task").expect_err("bad shape");
    assert!(matches!(err, Error::Protocol { .. }), "{err}");
    assert!(err.to_string().contains("tools/list"), "{err}");
}

#[tokio::test]
async fn tool_arguments_that_are_not_an_object_are_refused_before_sending() {
    let conn = mcp_conn_core::Connection::new(
        "fake",
        mcp_conn_core::testing::MockTransport::serving(
            mcp_conn_core::testing::FakeServer::default(),
        ),
    );
    let client = conn.connect().await.expect("connect");
    let before = conn.info().metrics;
    for bad in [json!([1, 2]), json!("text"), json!(3)] {
        match client.call_tool("echo", bad).await {
            Err(mcp_conn_core::Error::InvalidArguments { method, .. }) => {
                assert_eq!(method, "tools/call")
            }
            other => panic!("expected InvalidArguments, got {other:?}"),
        }
    }
    let after = conn.info().metrics;
    assert_eq!(
        (after.requests_ok, after.requests_failed),
        (before.requests_ok, before.requests_failed),
        "nothing sent"
    );
    assert!(client
        .call_tool("echo", json!({"text": "ok"}))
        .await
        .is_ok());
    conn.disconnect().await;
}
