//! Per-request options and progress reports.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A progress report for a request (`notifications/progress`).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Progress so far (increases with every report).
    pub progress: f64,
    /// The total, if known.
    pub total: Option<f64>,
    /// A human-readable message (2025-03-26+).
    pub message: Option<String>,
}

/// A progress callback. It runs on the engine's reader task: keep it short.
pub type ProgressCallback = Arc<dyn Fn(Progress) + Send + Sync>;

/// Per-request options.
///
/// ```
/// # use std::time::Duration;
/// # use mcp_conn_core::RequestOptions;
/// let opts = RequestOptions::new()
///     .timeout(Duration::from_secs(5))
///     .on_progress(|p| println!("{}/{:?}", p.progress, p.total))
///     .reset_timeout_on_progress(Duration::from_secs(60));
/// ```
#[derive(Clone, Default)]
pub struct RequestOptions {
    /// The timeout; `None` uses the connection's `request_timeout`.
    pub timeout: Option<Duration>,
    /// Called for each progress notification of this request. Setting it puts
    /// a `progressToken` in `params._meta`.
    pub on_progress: Option<ProgressCallback>,
    /// When set, every progress notification restarts the timeout, but the
    /// request fails at this hard maximum after it was sent.
    pub max_total_timeout: Option<Duration>,
    /// Stateless era: the log level asked for this request
    /// (`_meta["io.modelcontextprotocol/logLevel"]`); ignored in the
    /// handshake era (use [`crate::Client::set_logging_level`]).
    pub log_level: Option<crate::protocol::LoggingLevel>,
    /// The caller's word that this `tools/call` may run twice without harm:
    /// with [`crate::ConnectionConfig::replay_after_reconnect`] on,
    /// [`crate::Connection::call_tool_with`] may send it again on the new
    /// link when the link died before the answer. Ignored otherwise.
    pub idempotent: bool,
}

impl fmt::Debug for RequestOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestOptions")
            .field("timeout", &self.timeout)
            .field("on_progress", &self.on_progress.is_some())
            .field("max_total_timeout", &self.max_total_timeout)
            .field("log_level", &self.log_level)
            .field("idempotent", &self.idempotent)
            .finish()
    }
}

impl RequestOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets a progress callback.
    #[must_use]
    pub fn on_progress(mut self, f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }

    /// Asks for server log messages at `level` for this request (stateless
    /// era).
    #[must_use]
    pub fn log_level(mut self, level: crate::protocol::LoggingLevel) -> Self {
        self.log_level = Some(level);
        self
    }

    /// Marks a tool call as safe to repeat (see
    /// [`RequestOptions::idempotent`](Self#structfield.idempotent)).
    #[must_use]
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Restarts the timeout on every progress report, up to `max_total`.
    #[must_use]
    pub fn reset_timeout_on_progress(mut self, max_total: Duration) -> Self {
        self.max_total_timeout = Some(max_total);
        self
    }
}
