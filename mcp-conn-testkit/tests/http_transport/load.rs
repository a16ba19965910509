//! Load: many concurrent requests, large responses, connection reuse.

use http::Method;
use mcp_conn_testkit::http_server::{Behavior, Reply};
use serde_json::json;

use crate::common::within;
use crate::{common, connection, echo, server};

#[tokio::test]
async fn a_thousand_concurrent_requests_share_one_session() {
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    let client = within("connect", conn.connect()).await.expect("connects");
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let c = client.clone();
        calls.spawn(async move { (i, c.call_tool("echo", json!({"text": i.to_string()})).await) });
    }
    within("all answers", async {
        while let Some(done) = calls.join_next().await {
            let (i, r) = done.expect("task");
            assert_eq!(r.expect("answered").text(), i.to_string());
        }
    })
    .await;
    assert_eq!(srv.requests_for("initialize").len(), 1);
    assert!(srv
        .requests_for("tools/call")
        .iter()
        .all(|r| r.header("mcp-session-id") == Some("sess-0")));
}

#[tokio::test]
async fn a_10_mib_response_arrives_whole() {
    for reply in [Reply::Json, Reply::Sse] {
        let (_srv, conn) = crate::replying(reply).await;
        let client = within("connect", conn.connect()).await.expect("connects");
        let r = within(
            "big",
            client.call_tool("big", json!({"bytes": 10 * 1024 * 1024})),
        )
        .await
        .expect("answered");
        assert_eq!(r.text().len(), 10 * 1024 * 1024, "{reply:?}");
    }
}

/// With SSE replies too: a reply whose end has arrived with its response
/// is finished at once, one whose end comes later by a task (below); either
/// way its connection goes back to the pool.
#[tokio::test]
async fn requests_reuse_one_kept_alive_connection() {
    for reply in [Reply::Json, Reply::Sse] {
        let (srv, conn) = crate::replying(reply).await;
        within("connect", conn.connect()).await.expect("connects");
        echo(&conn, "warm").await;
        common::eventually("the GET attempt", || {
            srv.requests().iter().any(|r| r.method == Method::GET)
        })
        .await;
        // The handshake's concurrent POSTs may have opened a second pooled
        // connection; from here on, sequential calls must reuse them.
        let before = srv.connections();
        for i in 0..20 {
            echo(&conn, &i.to_string()).await;
        }
        assert_eq!(
            srv.connections(),
            before,
            "20 calls opened new connections ({reply:?})"
        );
        assert!(before <= 3, "{before} connections ({reply:?})");
    }
}

/// An SSE reply is read to its end after its response, so that its
/// connection goes back to the pool even when the server writes the last
/// chunk a little later (rmcp does): dropped before its end, the reply would
/// close its connection, and the next call would have to open one.
#[tokio::test]
async fn sse_replies_are_read_to_their_end() {
    let srv = server(Behavior {
        reply: Reply::Sse,
        sse_end_delay: Some(std::time::Duration::from_millis(20)),
        ..Default::default()
    })
    .await;
    let conn = connection(&srv.url());
    let client = within("connect", conn.connect()).await.expect("connects");
    for i in 0..5 {
        echo(&conn, &i.to_string()).await;
    }
    // A reply whose response follows a notification (so it goes through
    // the link, not straight to its caller) is read to its end too.
    for _ in 0..2 {
        let r = within("notify", client.call_tool("notify", json!({})))
            .await
            .expect("answered");
        assert_eq!(r.text(), "notified");
    }
    // Each reply's end (initialize's and the calls') comes 20 ms after its
    // response; the client reads on, so the server writes every one to its
    // end.
    let replies =
        (srv.requests_for("initialize").len() + srv.requests_for("tools/call").len()) as u64;
    assert_eq!(replies, 8);
    common::eventually("every reply's end", || {
        let (through, cut) = srv.late_ends();
        through + cut >= replies
    })
    .await;
    assert_eq!(
        srv.late_ends(),
        (replies, 0),
        "(read to the end, closed before)"
    );
    conn.disconnect().await;
}
