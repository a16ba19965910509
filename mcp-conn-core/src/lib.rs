#![doc = include_str!("../README.md")]
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
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod telemetry;
#[cfg(not(feature = "metrics"))]
mod telemetry;
#[cfg(feature = "test-util")]
pub mod testing;
mod transport;

pub use backoff::Backoff;
pub use config::{
    ConfigError, ConnectionConfig, DuringBackoff, HealthProbe, NotificationListener, RestartBudget,
    StatusListener, MAX_DURATION,
};
pub use connection::{Connection, PendingProbe, ProbeStart};
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
pub use status::{ConnectionInfo, ConnectionStatus, HealthReport, ProbeResult};
pub use transport::{
    Cause, ConnectFailure, DirectExchange, Inbound, Link, LinkRx, LinkTx, TlsFailure, Transport,
    TransportError, WireInfo,
};
