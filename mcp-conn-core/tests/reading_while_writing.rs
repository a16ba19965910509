//! One task reads and writes a link: what arrives is routed while a write
//! is stuck (the server not reading), and a failed write is a lost link at
//! once.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mcp_conn_core::jsonrpc::Message;
use mcp_conn_core::testing::MockTransport;
use mcp_conn_core::{Connection, ConnectionStatus, LinkTx, ServerNotification, TransportError};
use serde_json::json;

/// What a [`Stalling`] link's writes do once switched on.
#[derive(Debug, Clone, Copy)]
enum Then {
    Hang,
    Fail,
}

/// A mock link's sending half whose writes hang or fail once `stalled`
/// is set.
struct StallingTx {
    inner: Box<dyn LinkTx>,
    stalled: Arc<AtomicBool>,
    then: Then,
}

#[async_trait]
impl LinkTx for StallingTx {
    async fn send(&mut self, msg: &Message) -> Result<(), TransportError> {
        if self.stalled.load(Ordering::SeqCst) {
            match self.then {
                Then::Hang => std::future::pending::<()>().await,
                Then::Fail => return Err(TransportError::Eof),
            }
        }
        self.inner.send(msg).await
    }

    async fn close(&mut self, grace: Duration) -> Result<(), TransportError> {
        self.inner.close(grace).await
    }
}

fn stalling(
    then: Then,
) -> (
    Connection,
    mcp_conn_core::testing::MockServer,
    Arc<AtomicBool>,
) {
    let (inner, server) = MockTransport::pair();
    let stalled = Arc::new(AtomicBool::new(false));
    let transport = common::WrapTx::new(inner, {
        let stalled = stalled.clone();
        move |inner| {
            Box::new(StallingTx {
                inner,
                stalled: stalled.clone(),
                then,
            })
        }
    });
    let conn = Connection::with_config("stall", transport, common::config());
    (conn, server, stalled)
}

#[tokio::test(start_paused = true)]
async fn replies_and_notifications_are_routed_while_a_write_hangs() {
    let (conn, mut server, stalled) = stalling(Then::Hang);
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let mut notes = conn.notifications();

    let first = tokio::spawn({
        let client = client.clone();
        async move { client.list_tools().await }
    });
    let list = common::within("tools/list", link.expect_method("tools/list")).await;

    // From now on every write hangs: the next request is stuck in it.
    stalled.store(true, Ordering::SeqCst);
    let stuck = tokio::spawn({
        let client = client.clone();
        async move { client.ping().await }
    });
    tokio::task::yield_now().await;

    // The server answers the first request and notifies: both get through.
    link.respond(list.id, json!({"tools": []})).await;
    link.notify("notifications/tools/list_changed", None).await;
    let tools = common::within("the answer", first)
        .await
        .expect("task")
        .expect("answered while a write hangs");
    assert!(tools.is_empty());
    let note = common::within("the notification", notes.recv())
        .await
        .expect("a notification");
    assert_eq!(note, ServerNotification::ToolsListChanged);
    assert!(!stuck.is_finished(), "the stuck write is still pending");

    // Disconnecting abandons the stuck write and closes the link.
    common::within("disconnect", conn.disconnect()).await;
    let stuck = common::within("the stuck request", stuck)
        .await
        .expect("task");
    assert!(stuck.is_err(), "{stuck:?}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_is_a_lost_link_at_once() {
    let (conn, mut server, stalled) = stalling(Then::Fail);
    let (client, _link) = common::connect(&conn, &mut server).await;
    stalled.store(true, Ordering::SeqCst);
    let failed = common::within("ping", client.ping()).await;
    assert!(
        matches!(failed, Err(mcp_conn_core::Error::ConnectionLost { .. })),
        "{failed:?}"
    );
    // The supervisor heard of it and reconnects.
    common::wait_status(&conn, ConnectionStatus::Reconnecting).await;
    stalled.store(false, Ordering::SeqCst);
    common::handshake_next(&mut server).await;
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    conn.disconnect().await;
}
