//! A transport may run a request's exchange in the caller's task
//! (`LinkTx::try_exchange_now`, HTTP does): the response it hands over is
//! the caller's result, with the same errors as one routed by the link;
//! one it leaves to the link is awaited as usual; and the exchange is
//! dropped with its caller (a timeout, the session's end).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mcp_conn_core::jsonrpc::{JsonRpcError, Message, RequestId, Response};
use mcp_conn_core::testing::{MockLink, MockServer, MockTransport};
use mcp_conn_core::{
    Client, Connection, DirectExchange, Error, LinkTx, RequestOptions, TransportError,
};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::oneshot;

/// How the test ends one exchange.
type Ending = oneshot::Sender<Option<Response>>;

#[derive(Default)]
struct Exchanges {
    /// Open exchanges, by request id: the test resolves them.
    open: Mutex<HashMap<RequestId, Ending>>,
    /// Exchanges dropped before they resolved.
    dropped: AtomicUsize,
}

/// Counts an exchange as dropped unless it resolved.
struct DropCount {
    exchanges: Arc<Exchanges>,
    resolved: bool,
}

impl Drop for DropCount {
    fn drop(&mut self) {
        if !self.resolved {
            self.exchanges.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The mock link's sending half, running every `tools/call` as an exchange
/// the caller drives: the request still reaches the mock server (so the
/// test sees it), and the test decides what the exchange gives.
struct ExchangingTx {
    inner: Box<dyn LinkTx>,
    exchanges: Arc<Exchanges>,
}

#[async_trait]
impl LinkTx for ExchangingTx {
    async fn send(&mut self, msg: &Message) -> Result<(), TransportError> {
        self.inner.send(msg).await
    }

    fn try_send_now(&mut self, msg: &Message) -> bool {
        self.inner.try_send_now(msg)
    }

    fn try_exchange_now(&mut self, msg: &Message) -> Option<DirectExchange> {
        let Message::Request(req) = msg else {
            return None;
        };
        if req.method != "tools/call" || !self.inner.try_send_now(msg) {
            return None;
        }
        let (end, ended) = oneshot::channel();
        self.exchanges.open.lock().insert(req.id.clone(), end);
        let count = DropCount {
            exchanges: self.exchanges.clone(),
            resolved: false,
        };
        Some(Box::pin(async move {
            // The whole guard moves in (not only the field set below).
            let mut count = count;
            let out = ended.await.ok().flatten();
            count.resolved = true;
            out
        }))
    }

    async fn close(&mut self, grace: Duration) -> Result<(), TransportError> {
        self.inner.close(grace).await
    }
}

fn exchanging() -> (Connection, MockServer, Arc<Exchanges>) {
    let (inner, server) = MockTransport::pair();
    let exchanges = Arc::new(Exchanges::default());
    let transport = common::WrapTx::new(inner, {
        let exchanges = exchanges.clone();
        move |inner| {
            Box::new(ExchangingTx {
                inner,
                exchanges: exchanges.clone(),
            })
        }
    });
    let conn = Connection::with_config("exchange", transport, common::config());
    (conn, server, exchanges)
}

/// Starts a `tools/call echo` and waits until the server has it.
async fn call(
    client: &Client,
    link: &mut MockLink,
    opts: RequestOptions,
) -> (
    RequestId,
    tokio::task::JoinHandle<Result<serde_json::Value, Error>>,
) {
    let task = tokio::spawn({
        let client = client.clone();
        async move {
            let raw = client
                .request_raw(
                    "tools/call",
                    Some(json!({"name": "echo", "arguments": {"text": "hi"}})),
                    &opts,
                )
                .await?;
            Ok(serde_json::from_str(raw.get()).expect("JSON"))
        }
    });
    let req = common::within("the call", link.expect_method("tools/call")).await;
    (req.id, task)
}

fn end(exchanges: &Exchanges, id: &RequestId, with: Option<Response>) {
    let end = exchanges.open.lock().remove(id).expect("an open exchange");
    end.send(with).expect("the exchange is still running");
}

#[tokio::test(start_paused = true)]
async fn a_response_the_exchange_hands_over_is_the_callers_result() {
    let (conn, mut server, exchanges) = exchanging();
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let (id, task) = call(&client, &mut link, RequestOptions::default()).await;
    let response = Response::result(id.clone(), &json!({"direct": true})).expect("response");
    end(&exchanges, &id, Some(response));
    let got = common::within("the result", task)
        .await
        .expect("task")
        .expect("answered");
    assert_eq!(got, json!({"direct": true}));
    // The request is settled: the same answer arriving late through the
    // link is one that matches nothing.
    link.respond(id, json!({"late": true})).await;
    common::ping_answered(&client, &mut link).await;
    let m = conn.info().metrics;
    assert_eq!((m.unmatched_responses, m.requests_ok), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn an_error_the_exchange_hands_over_is_the_same_error_as_through_the_link() {
    let (conn, mut server, exchanges) = exchanging();
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let error = JsonRpcError {
        code: -32000,
        message: "overloaded".into(),
        data: None,
    };
    // Through the exchange.
    let (id, direct) = call(&client, &mut link, RequestOptions::default()).await;
    end(
        &exchanges,
        &id,
        Some(Response::error(Some(id.clone()), error.clone())),
    );
    let direct = common::within("direct", direct).await.expect("task");
    // Through the link.
    let (id, routed) = call(&client, &mut link, RequestOptions::default()).await;
    end(&exchanges, &id, None);
    link.respond_error(id, error).await;
    let routed = common::within("routed", routed).await.expect("task");
    let (Err(direct), Err(routed)) = (direct, routed) else {
        panic!("both fail");
    };
    assert_eq!(direct.to_string(), routed.to_string());
    assert!(
        matches!(&direct, Error::Rpc { error, .. } if error.code == -32000),
        "{direct:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_exchange_that_hands_over_nothing_leaves_the_answer_to_the_link() {
    let (conn, mut server, exchanges) = exchanging();
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let (id, task) = call(&client, &mut link, RequestOptions::default()).await;
    end(&exchanges, &id, None);
    link.respond(id, json!({"routed": true})).await;
    let got = common::within("the result", task)
        .await
        .expect("task")
        .expect("answered");
    assert_eq!(got, json!({"routed": true}));
    assert_eq!(exchanges.dropped.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_times_out_drops_its_exchange_and_cancels_the_request() {
    let (conn, mut server, exchanges) = exchanging();
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let opts = RequestOptions {
        timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let (id, task) = call(&client, &mut link, opts).await;
    tokio::task::yield_now().await;
    assert_eq!(exchanges.dropped.load(Ordering::SeqCst), 0, "running");
    let got = common::within("the timeout", task).await.expect("task");
    assert!(
        matches!(got, Err(Error::Timeout { .. })),
        "timed out: {got:?}"
    );
    assert_eq!(exchanges.dropped.load(Ordering::SeqCst), 1);
    match common::within("the cancellation", link.recv()).await {
        Some(Message::Notification(n)) if n.method == "notifications/cancelled" => {
            assert_eq!(n.params.expect("params")["requestId"], json!(id));
        }
        other => panic!("expected notifications/cancelled, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_session_that_ends_fails_the_caller_and_drops_its_exchange() {
    let (conn, mut server, exchanges) = exchanging();
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let (_id, task) = call(&client, &mut link, RequestOptions::default()).await;
    tokio::task::yield_now().await;
    assert_eq!(exchanges.dropped.load(Ordering::SeqCst), 0, "running");
    link.fail(TransportError::Eof).await;
    let got = common::within("the failure", task).await.expect("task");
    assert!(
        matches!(got, Err(Error::ConnectionLost { .. })),
        "lost: {got:?}"
    );
    assert_eq!(exchanges.dropped.load(Ordering::SeqCst), 1);
}
