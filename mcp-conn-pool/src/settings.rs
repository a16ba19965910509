//! [`PoolConfig`]: the pool's settings.

use std::time::Duration;

use mcp_conn_core::ConnectionConfig;

/// Settings of a [`ConnectionPool`](crate::ConnectionPool). Plain data: write only what you change.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The settings of connections added without their own. Default: the
    /// core defaults.
    pub default_connection: ConnectionConfig,
    /// Connects run at once by [`crate::ConnectionPool::connect_all`]. Default 16.
    pub max_concurrent_connects: usize,
    /// Health probes run at once by the monitor. Default 16.
    pub max_concurrent_probes: usize,
    /// Random spread of each probe interval, as a fraction. Default 0.1.
    pub probe_jitter: f64,
    /// Between server and tool in qualified tool names. Default `"__"`.
    pub tool_separator: String,
    /// How long [`crate::ConnectionPool::shutdown`] may take. Default 10 s.
    pub shutdown_timeout: Duration,
    /// Events a slow subscriber may fall behind by. Default 1024.
    pub event_buffer: usize,
    /// The score below which a connected server does not count as healthy
    /// in [`crate::ConnectionPool::health_report`]. Default 0.7 (the Python original's).
    pub healthy_threshold: f64,
    /// The credential store the servers with `"auth"` share (feature
    /// `oauth`). Default: [`crate::auth::SharedCredentials::default_location`].
    #[cfg(feature = "oauth")]
    pub credentials: crate::auth::SharedCredentials,
    /// Whether a server that needs a new consent asks the user (opens the
    /// browser, or prints the URL). When `false` (checks, services) such a
    /// server fails to connect with a 401 and
    /// [`crate::ConnectionPool::authorization_error`] says
    /// `ConsentRequired`; stored tokens are still used and refreshed.
    /// Default `true`.
    #[cfg(feature = "oauth")]
    pub ask_for_consent: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            default_connection: ConnectionConfig::default(),
            max_concurrent_connects: 16,
            max_concurrent_probes: 16,
            probe_jitter: 0.1,
            tool_separator: "__".into(),
            shutdown_timeout: Duration::from_secs(10),
            event_buffer: 1024,
            healthy_threshold: 0.7,
            #[cfg(feature = "oauth")]
            credentials: crate::auth::SharedCredentials::default(),
            #[cfg(feature = "oauth")]
            ask_for_consent: true,
        }
    }
}
