//! Garbage, unknown ids and id-less errors are dropped without harming the
//! requests in flight.

mod common;

use mcp_conn_core::jsonrpc::RequestId;
use mcp_conn_core::ConnectionStatus;
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn junk_between_answers_harms_nothing() {
    let (conn, _transport, mut server) = common::scripted(common::config());
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let a = tokio::spawn({
        let c = client.clone();
        async move { c.call_tool("echo", json!({"text": "a"})).await }
    });
    let req_a = common::within("a", link.expect_method("tools/call")).await;
    let b = tokio::spawn({
        let c = client.clone();
        async move { c.call_tool("echo", json!({"text": "b"})).await }
    });
    let req_b = common::within("b", link.expect_method("tools/call")).await;

    let RequestId::Int(n) = req_a.id else {
        panic!("integer ids")
    };
    link.send_raw("this is not json").await;
    link.send_raw("{\"jsonrpc\":\"2.0\"").await;
    link.send_raw(r#"{"foo": 1}"#).await;
    link.send_raw(r#"{"jsonrpc":"1.0","id":1,"result":{}}"#)
        .await;
    // The same id as a string must not match the integer id.
    link.respond(RequestId::Str(n.to_string()), json!({"content": []}))
        .await;
    link.respond(RequestId::Int(987_654), json!({"content": []}))
        .await;
    link.send_raw(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#)
        .await;
    link.respond(
        req_a.id.clone(),
        json!({"content": [{"type": "hologram"}, {"type": "text", "text": "a"}], "extra": 1}),
    )
    .await;
    link.respond(
        req_b.id,
        json!({"content": [{"type": "text", "text": "b"}]}),
    )
    .await;
    // A duplicate (late) answer for a finished request is dropped as well.
    link.respond(req_a.id, json!({"content": []})).await;

    assert_eq!(
        common::within("a", a)
            .await
            .expect("task")
            .expect("a answered")
            .text(),
        "a"
    );
    assert_eq!(
        common::within("b", b)
            .await
            .expect("task")
            .expect("b answered")
            .text(),
        "b"
    );
    client
        .notify("notifications/roots/list_changed", None)
        .await
        .expect("still writable");
    let ping = tokio::spawn({
        let c = client.clone();
        async move { c.ping().await }
    });
    // Skip the notification, answer the ping.
    link.recv().await;
    let req = common::within("ping", link.expect_method("ping")).await;
    link.respond(req.id, json!({})).await;
    common::within("ping", ping)
        .await
        .expect("task")
        .expect("the session still works");

    let metrics = conn.info().metrics;
    assert_eq!(
        metrics.unmatched_responses, 3,
        "string id, unknown id, late duplicate"
    );
    assert_eq!(metrics.invalid_messages, 1, "the id-less error");
    assert_eq!(conn.status(), ConnectionStatus::Connected);
}
