//! Timeouts and abandoned requests tell the server with
//! `notifications/cancelled`.

mod common;

use std::time::Duration;

use mcp_conn_core::jsonrpc::{Message, RequestId};
use mcp_conn_core::{Error, RequestOptions};
use serde_json::json;
use tokio::time::Instant;

async fn expect_cancel(link: &mut mcp_conn_core::testing::MockLink, id: &RequestId) -> String {
    match common::within("cancel", link.recv()).await {
        Some(Message::Notification(n)) if n.method == "notifications/cancelled" => {
            let params = n.params.expect("params");
            assert_eq!(params["requestId"], json!(id), "cancels the right request");
            params["reason"].as_str().unwrap_or_default().to_owned()
        }
        other => panic!("expected notifications/cancelled, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_request_is_cancelled_and_its_late_answer_dropped() {
    let (conn, _transport, mut server) = common::scripted(common::config());
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let started = Instant::now();
    let call = tokio::spawn({
        let c = client.clone();
        async move {
            c.call_tool_with(
                "echo",
                json!({}),
                &RequestOptions::new().timeout(Duration::from_secs(5)),
            )
            .await
        }
    });
    let req = common::within("request", link.expect_method("tools/call")).await;
    let err = common::within("timeout", call)
        .await
        .expect("task")
        .expect_err("times out");
    match &err {
        Error::Timeout {
            operation, after, ..
        } => {
            assert_eq!(operation, "tools/call");
            assert_eq!(*after, Duration::from_secs(5));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(
        err.rpc_error().is_none(),
        "a local timeout is not a server error"
    );
    assert_eq!(Instant::now() - started, Duration::from_secs(5));
    assert_eq!(expect_cancel(&mut link, &req.id).await, "timeout");

    link.respond(req.id, json!({"content": []})).await; // too late
    common::ping_answered(&client, &mut link).await;
    let m = conn.info().metrics;
    assert_eq!((m.requests_timed_out, m.unmatched_responses), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn the_default_request_timeout_applies() {
    let config = mcp_conn_core::ConnectionConfig {
        request_timeout: Duration::from_secs(7),
        ..common::config()
    };
    let (conn, _transport, mut server) = common::scripted(config);
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let started = Instant::now();
    let call = tokio::spawn(async move { client.ping().await });
    common::within("ping", link.expect_method("ping")).await;
    let err = common::within("timeout", call)
        .await
        .expect("task")
        .expect_err("times out");
    assert!(err.is_timeout());
    assert_eq!(Instant::now() - started, Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_cancels_the_request() {
    let (conn, _transport, mut server) = common::scripted(common::config());
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let call = tokio::spawn(async move { client.call_tool("echo", json!({})).await });
    let req = common::within("request", link.expect_method("tools/call")).await;
    call.abort();
    assert!(expect_cancel(&mut link, &req.id)
        .await
        .contains("stopped waiting"));
}

#[tokio::test(start_paused = true)]
async fn progress_resets_the_timeout_up_to_a_hard_maximum() {
    let (conn, _transport, mut server) = common::scripted(common::config());
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let opts = RequestOptions::new()
        .timeout(Duration::from_secs(10))
        .on_progress(move |p| {
            let _ = seen_tx.send(p);
        })
        .reset_timeout_on_progress(Duration::from_secs(25));
    let started = Instant::now();
    let call = tokio::spawn(async move { client.call_tool_with("echo", json!({}), &opts).await });
    let req = common::within("request", link.expect_method("tools/call")).await;
    let token = req.params.as_ref().expect("params")["_meta"]["progressToken"].clone();
    assert!(token.is_i64(), "a progress token was set: {token}");

    for step in 1..=3 {
        tokio::time::sleep(Duration::from_secs(8)).await;
        link.notify("notifications/progress", Some(json!({"progressToken": token, "progress": step, "total": 10, "message": "working"}))).await;
        let p = common::within("progress", seen.recv())
            .await
            .expect("callback");
        assert_eq!(
            (p.progress, p.total, p.message.as_deref()),
            (f64::from(step), Some(10.0), Some("working"))
        );
    }
    // A progress report for another token is dropped.
    link.notify(
        "notifications/progress",
        Some(json!({"progressToken": "nope", "progress": 1})),
    )
    .await;
    let err = common::within("timeout", call)
        .await
        .expect("task")
        .expect_err("hard maximum");
    assert!(err.is_timeout());
    // 24 s of progress kept it alive past 10 s; the hard maximum ended it at 25 s.
    assert_eq!(Instant::now() - started, Duration::from_secs(25));
    assert!(seen.try_recv().is_err());
}
