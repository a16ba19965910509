//! # mcp-conn-core
//!
//! The protocol engine and [`Connection`] of mcp-conn: everything a managed
//! MCP client connection needs except a real transport.
//!
//! - [`jsonrpc`] and [`protocol`]: the JSON-RPC 2.0 envelope and the MCP types
//!   a client uses (protocol 2024-11-05 to 2025-11-25).
//! - [`Client`]: a cheap-to-clone handle to one live session; many requests in
//!   flight over one link, each with a timeout, cancellation and progress.
//! - [`Transport`]: the seam to the wire. `mcp-transport-stdio` and
//!   `mcp-transport-http` implement it; [`testing::MockTransport`] (feature
//!   `test-util`) plays a server in memory.
//! - [`Connection`]: the Python original's `MCPConnection` — status, health checks and
//!   score, auto-reconnect with backoff and jitter, metrics.
//!
//! ```
//! # use mcp_conn_core::testing::{MockTransport, FakeServer};
//! use mcp_conn_core::{Connection, ConnectionStatus};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), mcp_conn_core::Error> {
//! let connection = Connection::new("demo", MockTransport::serving(FakeServer::default()));
//! let client = connection.connect().await?;
//! assert_eq!(connection.status(), ConnectionStatus::Connected);
//! let sum = client.call_tool("add", json!({"a": 2, "b": 3})).await?;
//! assert_eq!(sum.text(), "5");
//! connection.disconnect().await;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backoff;
mod config;
mod connection;
mod engine;
pub mod era;
mod error;
mod handler;
mod health;
pub mod jsonrpc;
mod metrics;
mod notification;
pub mod protocol;
mod status;
#[cfg(feature = "test-util")]
pub mod testing;
mod transport;

pub use backoff::Backoff;
pub use config::{
    ConfigError, ConnectionConfig, DuringBackoff, HealthProbe, StatusListener, MAX_DURATION,
};
pub use connection::Connection;
pub use engine::{Client, Progress, ProgressCallback, RequestOptions};
pub use era::{
    DiscoverResult, ProtocolEra, ProtocolPreference, STATELESS_PROTOCOL_VERSION,
    STATELESS_PROTOCOL_VERSIONS,
};
pub use error::{Error, ErrorKind, ErrorSummary};
pub use handler::{ClientHandlers, ElicitationHandler, RootsProvider, SamplingHandler};
pub use health::{health_score, HEALTH_WINDOW};
pub use metrics::RequestMetrics;
pub use notification::ServerNotification;
pub use status::{ConnectionInfo, ConnectionStatus, HealthReport};
pub use transport::{
    Cause, ConnectFailure, Inbound, Link, LinkRx, LinkTx, Transport, TransportError,
};
