//! Many requests in flight over one link, answered in any order.

mod common;

use std::collections::HashSet;

use mcp_conn_core::jsonrpc::RequestId;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_answered_in_reverse_order() {
    let (conn, _transport, mut server) = common::scripted(common::config());
    let (client, mut link) = common::connect(&conn, &mut server).await;

    let calls: Vec<_> = (0..1000)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let r = client
                    .call_tool("echo", json!({ "text": format!("call {i}") }))
                    .await;
                (i, r)
            })
        })
        .collect();

    let mut requests = Vec::with_capacity(1000);
    let mut ids = HashSet::new();
    for _ in 0..1000 {
        let req = common::within("request", link.expect_method("tools/call")).await;
        assert!(ids.insert(req.id.clone()), "id {} reused", req.id);
        assert!(matches!(req.id, RequestId::Int(_)));
        requests.push(req);
    }
    for req in requests.into_iter().rev() {
        let text = req.params.as_ref().expect("params")["arguments"]["text"].clone();
        link.respond(
            req.id,
            json!({ "content": [{ "type": "text", "text": text }] }),
        )
        .await;
    }
    for call in calls {
        let (i, result) = common::within("answer", call).await.expect("task");
        assert_eq!(
            result.expect("answered").text(),
            format!("call {i}"),
            "call {i} got another's answer"
        );
    }
    assert_eq!(conn.info().metrics.requests_ok, 1000);
}
