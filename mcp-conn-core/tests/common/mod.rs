//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use mcp_conn_core::testing::{MockLink, MockServer, MockTransport};
use mcp_conn_core::{Client, Connection, ConnectionConfig};

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
