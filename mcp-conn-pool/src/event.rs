//! What the pool reports: [`PoolEvent`]s as they happen, and [`PoolHealth`]
//! snapshots.

use std::time::Duration;

use mcp_conn_core::{ConnectionInfo, ConnectionStatus};

/// Something that happened in the pool, as [`crate::ConnectionPool::subscribe`]
/// delivers it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PoolEvent {
    /// A server was added.
    Added {
        /// Its name.
        name: String,
    },
    /// A server was removed.
    Removed {
        /// Its name.
        name: String,
    },
    /// A connection's status changed (in order, per connection).
    StatusChanged {
        /// The server.
        name: String,
        /// The old status.
        from: ConnectionStatus,
        /// The new status.
        to: ConnectionStatus,
    },
    /// A config was applied ([`crate::ConnectionPool::apply_config_str`]).
    ConfigApplied(crate::ConfigChanges),
    /// A config change was refused (the file could not be read or parsed,
    /// or a server in it could not be built); nothing was changed.
    ConfigRejected {
        /// Why.
        error: String,
    },
    /// A server's tool set changed: seen after a reconnect or a
    /// `tools/list_changed` (by the monitor, while it runs), or by
    /// [`crate::ConnectionPool::list_tools`]. Not sent for the first
    /// listing of a server: there is nothing to compare it with.
    ToolsChanged {
        /// The server.
        name: String,
        /// What changed.
        diff: crate::ToolSetDiff,
    },
    /// The monitor probed a server.
    Probed {
        /// The server.
        name: String,
        /// Whether it answered.
        ok: bool,
        /// How long it took, when it answered.
        latency: Option<Duration>,
        /// Why it failed.
        error: Option<String>,
    },
}

/// Every connection's snapshot plus pool totals.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct PoolHealth {
    /// One entry per server, by name.
    pub connections: Vec<ConnectionInfo>,
    /// How many servers.
    pub total: usize,
    /// How many are connected.
    pub connected: usize,
    /// How many are connected with a score at or above the threshold.
    pub healthy: usize,
    /// How many are in `Error`.
    pub in_error: usize,
}
