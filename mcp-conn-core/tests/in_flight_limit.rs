//! The per-server limit of requests in flight: excess calls wait for a slot
//! (within their own timeout) instead of reaching a slow server; the queue
//! depth is visible in the metrics.

mod common;

use std::time::Duration;

use mcp_conn_core::{ConnectionConfig, Error, RequestOptions};
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn excess_calls_wait_for_a_slot_and_the_queue_is_visible() {
    let config = ConnectionConfig {
        max_in_flight: Some(2),
        ..common::config()
    };
    let (conn, _transport, mut server) = common::scripted(config);
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let calls: Vec<_> = (0..5)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move { c.call_tool("echo", json!({ "text": i.to_string() })).await })
        })
        .collect();
    let first = common::within("first", link.expect_method("tools/call")).await;
    let second = common::within("second", link.expect_method("tools/call")).await;
    tokio::task::yield_now().await;
    let m = conn.info().metrics;
    assert_eq!((m.in_flight, m.queued), (2, 3), "{m:?}");
    // Nothing more reaches the server until a slot frees.
    assert!(
        tokio::time::timeout(Duration::from_secs(5), link.recv())
            .await
            .is_err(),
        "a third request was sent over the limit"
    );
    link.respond(first.id, json!({"content": []})).await;
    let third = common::within("third", link.expect_method("tools/call")).await;
    for req in [second, third] {
        link.respond(req.id, json!({"content": []})).await;
    }
    for _ in 0..2 {
        let r = common::within("next", link.expect_method("tools/call")).await;
        link.respond(r.id, json!({"content": []})).await;
    }
    for call in calls {
        assert!(common::within("call", call).await.expect("task").is_ok());
    }
    let m = conn.info().metrics;
    assert_eq!((m.in_flight, m.queued), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_call_that_cannot_get_a_slot_in_time_times_out_unsent() {
    let config = ConnectionConfig {
        max_in_flight: Some(1),
        ..common::config()
    };
    let (conn, _transport, mut server) = common::scripted(config);
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let c = client.clone();
    let _slow = tokio::spawn(async move { c.call_tool("echo", json!({"text": "slow"})).await });
    common::within("slow", link.expect_method("tools/call")).await;
    let opts = RequestOptions::new().timeout(Duration::from_secs(2));
    let err = client
        .call_tool_with("echo", json!({"text": "x"}), &opts)
        .await
        .expect_err("no slot");
    assert!(
        matches!(&err, Error::Timeout { operation, .. } if operation.contains("max_in_flight")),
        "{err}"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(1), link.recv())
            .await
            .is_err(),
        "the timed-out call was never sent"
    );
}
