//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use mcp_conn_core::testing::{MockLink, MockServer, MockTransport};
use mcp_conn_core::{
    Client, Connection, ConnectionConfig, Link, LinkTx, Transport, TransportError,
};

/// A ping from `client`, answered by the test through `link`: everything
/// the server sent before its answer has been read when it returns.
pub async fn ping_answered(client: &Client, link: &mut MockLink) {
    let ping = tokio::spawn({
        let client = client.clone();
        async move { client.ping().await }
    });
    let req = within("ping", link.expect_method("ping")).await;
    link.respond(req.id, serde_json::json!({})).await;
    within("ping", ping)
        .await
        .expect("task")
        .expect("the ping answered");
}

/// The default config without jitter and with a short close grace.
pub fn config() -> ConnectionConfig {
    ConnectionConfig {
        reconnect_jitter: 0.0,
        close_grace: Duration::from_millis(100),
        ..Default::default()
    }
}

/// A connection over a scripted mock transport.
pub fn scripted(config: ConnectionConfig) -> (Connection, MockTransport, MockServer) {
    let (transport, server) = MockTransport::pair();
    let conn = Connection::with_config("mock", transport.clone(), config);
    (conn, transport, server)
}

/// Connects `conn` while playing the server's side of the handshake.
pub async fn connect(conn: &Connection, server: &mut MockServer) -> (Client, MockLink) {
    let (client, link) = within("connect", async {
        tokio::join!(conn.connect(), handshake_next(server))
    })
    .await;
    (client.expect("connect succeeds"), link)
}

/// Accepts the next link and completes its handshake.
pub async fn handshake_next(server: &mut MockServer) -> MockLink {
    within("handshake", async {
        let mut link = server.accept().await;
        link.handshake().await;
        link
    })
    .await
}

#[allow(unused_imports)]
pub use mcp_conn_core::testing::{wait_status, within, DEADLINE};

/// The config of the probe tests: an interval long enough to probe by hand,
/// a 1 s deadline, replaced after two failures in a row.
pub fn probing_config() -> ConnectionConfig {
    ConnectionConfig {
        health_check_interval: Duration::from_secs(5),
        health_check_timeout: Duration::from_secs(1),
        max_consecutive_health_failures: 2,
        ..config()
    }
}

type WrapFn = dyn Fn(Box<dyn LinkTx>) -> Box<dyn LinkTx> + Send + Sync;

/// A mock transport whose links' sending halves go through `wrap` (to
/// record, stall or fail what is written).
#[derive(Clone)]
pub struct WrapTx {
    inner: MockTransport,
    wrap: Arc<WrapFn>,
}

impl WrapTx {
    pub fn new(
        inner: MockTransport,
        wrap: impl Fn(Box<dyn LinkTx>) -> Box<dyn LinkTx> + Send + Sync + 'static,
    ) -> Self {
        WrapTx {
            inner,
            wrap: Arc::new(wrap),
        }
    }
}

impl std::fmt::Debug for WrapTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrapTx").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Transport for WrapTx {
    async fn connect(&self) -> Result<Link, TransportError> {
        let link = self.inner.connect().await?;
        Ok(Link {
            tx: (self.wrap)(link.tx),
            rx: link.rx,
        })
    }

    fn kind(&self) -> &'static str {
        "wrapped"
    }
}
