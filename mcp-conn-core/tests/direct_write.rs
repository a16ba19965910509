//! A lone request is written by its caller, with no hand-off to the link
//! task; with other requests in flight, messages are queued and written in
//! batches; and nothing is ever written before a message queued ahead of it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mcp_conn_core::jsonrpc::Message;
use mcp_conn_core::testing::MockTransport;
use mcp_conn_core::{Connection, LinkTx, RequestOptions, TransportError};
use parking_lot::Mutex;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// Written by the sender (`try_send_now`).
    Direct,
    /// Queued and written by the link task (`send`).
    Queued,
}

type Log = Arc<Mutex<Vec<(Way, String)>>>;

/// The mock link's sending half, recording which way each message went.
struct RecordingTx {
    inner: Box<dyn LinkTx>,
    log: Log,
}

fn label(msg: &Message) -> String {
    match msg {
        Message::Request(r) => r.method.clone(),
        Message::Notification(n) => n.method.clone(),
        Message::Response(_) => "response".into(),
    }
}

#[async_trait]
impl LinkTx for RecordingTx {
    async fn send(&mut self, msg: &Message) -> Result<(), TransportError> {
        self.log.lock().push((Way::Queued, label(msg)));
        self.inner.send(msg).await
    }

    fn try_send_now(&mut self, msg: &Message) -> bool {
        let sent = self.inner.try_send_now(msg);
        if sent {
            self.log.lock().push((Way::Direct, label(msg)));
        }
        sent
    }

    async fn close(&mut self, grace: Duration) -> Result<(), TransportError> {
        self.inner.close(grace).await
    }
}

fn recording() -> (Connection, mcp_conn_core::testing::MockServer, Log) {
    let (inner, server) = MockTransport::pair();
    let log = Log::default();
    let transport = common::WrapTx::new(inner, {
        let log = log.clone();
        move |inner| {
            Box::new(RecordingTx {
                inner,
                log: log.clone(),
            })
        }
    });
    let conn = Connection::with_config("direct", transport, common::config());
    (conn, server, log)
}

#[tokio::test(start_paused = true)]
async fn a_lone_request_is_written_by_its_caller() {
    let (conn, mut server, log) = recording();
    let (client, mut link) = common::connect(&conn, &mut server).await;
    for _ in 0..3 {
        common::ping_answered(&client, &mut link).await;
    }
    let log = log.lock().clone();
    let pings: Vec<_> = log.iter().filter(|(_, m)| m == "ping").collect();
    assert_eq!(pings.len(), 3, "{log:?}");
    assert!(
        pings.iter().all(|(way, _)| *way == Way::Direct),
        "sequential requests skip the link task: {log:?}"
    );
    // The handshake's first request went the same way (one at a time).
    assert!(
        log.first().is_some_and(|(way, _)| *way == Way::Direct),
        "{log:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn with_others_in_flight_nothing_overtakes_a_queued_message() {
    let (conn, mut server, recorded) = recording();
    let (client, mut link) = common::connect(&conn, &mut server).await;

    // A is alone: written at once; the server holds its answer.
    let a = tokio::spawn({
        let client = client.clone();
        async move { client.ping().await }
    });
    let a_req = common::within("A", link.expect_method("ping")).await;

    // B, with A in flight, is queued: polled once, it is in the queue and
    // waits for its answer, and the link task has not run yet.
    let opts = RequestOptions::default();
    let b = client.request_raw("tools/list", None, &opts);
    tokio::pin!(b);
    tokio::select! {
        biased;
        _ = &mut b => panic!("B cannot be answered yet"),
        () = std::future::ready(()) => {}
    }
    // A notification now may be written at once only if nothing is queued:
    // B is, so it queues behind B.
    common::within(
        "notify",
        client.notify("notifications/roots/list_changed", None),
    )
    .await
    .expect("queued");

    // The server sees B, then the notification.
    let b_req = common::within("B", link.expect_method("tools/list")).await;
    let next = common::within("the notification", link.recv())
        .await
        .expect("a message");
    assert!(
        matches!(&next, Message::Notification(n) if n.method == "notifications/roots/list_changed"),
        "{next:?}"
    );
    let log = recorded.lock().clone();
    let tail: Vec<_> = log.iter().rev().take(3).rev().cloned().collect();
    assert_eq!(
        tail,
        vec![
            (Way::Direct, "ping".to_owned()),
            (Way::Queued, "tools/list".to_owned()),
            (Way::Queued, "notifications/roots/list_changed".to_owned()),
        ],
        "{log:?}"
    );

    // Both answered; afterwards a lone request is written directly again.
    link.respond(a_req.id, json!({})).await;
    link.respond(b_req.id, json!({"tools": []})).await;
    common::within("A", a).await.expect("task").expect("A");
    common::within("B", &mut b).await.expect("B");
    common::ping_answered(&client, &mut link).await;
    let last = recorded.lock().last().cloned();
    assert_eq!(last, Some((Way::Direct, "ping".to_owned())));
}
