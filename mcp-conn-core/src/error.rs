//! The one error type of this crate.

use std::sync::Arc;
use std::time::Duration;

use crate::jsonrpc::JsonRpcError;
use crate::transport::TransportError;

/// Everything that can go wrong on a connection. Every variant names the
/// connection it happened on ([`Error::connection`]).
///
/// ```
/// # use mcp_conn_core::Error;
/// fn advice(e: &Error) -> &'static str {
///     match e {
///         Error::Timeout { .. } => "the server is slow; try again",
///         Error::Rpc { error, .. } if error.code == -32602 => "fix the arguments",
///         e if e.is_retryable() => "try again after a reconnect",
///         _ => "give up",
///     }
/// }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection has no live session (never connected, disconnected, or
    /// between reconnect attempts).
    #[error("connection `{connection}` is not connected")]
    NotConnected {
        /// The connection's name.
        connection: Arc<str>,
    },
    /// The transport could not open a link.
    #[error("connection `{connection}`: connect failed: {source}")]
    Connect {
        /// The connection's name.
        connection: Arc<str>,
        /// Why.
        #[source]
        source: TransportError,
    },
    /// Something took longer than allowed. This is a local timeout, never an
    /// error sent by the server.
    #[error("connection `{connection}`: {operation} timed out after {after:?}")]
    Timeout {
        /// The connection's name.
        connection: Arc<str>,
        /// What timed out: a method name, `connect` or `health check`.
        operation: String,
        /// After how long.
        after: Duration,
    },
    /// The link broke while the request was pending or being sent.
    #[error("connection `{connection}` lost: {reason}")]
    ConnectionLost {
        /// The connection's name.
        connection: Arc<str>,
        /// Why the link broke (exit status and stderr for stdio, HTTP status…).
        #[source]
        reason: TransportError,
    },
    /// The server answered with a JSON-RPC error.
    #[error("connection `{connection}`: `{method}` failed: {error}")]
    Rpc {
        /// The connection's name.
        connection: Arc<str>,
        /// The method that failed.
        method: String,
        /// The server's error (code, message, data).
        error: JsonRpcError,
    },
    /// The server broke the protocol (e.g. a result of the wrong shape).
    #[error("connection `{connection}`: protocol violation: {message}")]
    Protocol {
        /// The connection's name.
        connection: Arc<str>,
        /// What was wrong.
        message: String,
    },
    /// The server chose a protocol version this client does not support.
    #[error("connection `{connection}`: server chose unsupported protocol version {offered:?}")]
    UnsupportedVersion {
        /// The connection's name.
        connection: Arc<str>,
        /// The version the server answered with.
        offered: String,
    },
    /// The server did not declare the capability this call needs, so the call
    /// was not sent.
    #[error("connection `{connection}`: server does not support `{method}` (capability `{capability}` not declared)")]
    CapabilityNotSupported {
        /// The connection's name.
        connection: Arc<str>,
        /// The method that was refused.
        method: String,
        /// The capability it needs.
        capability: &'static str,
    },
    /// The connection was closed on purpose (`disconnect()`, or dropped).
    #[error("connection `{connection}` is closed")]
    Closed {
        /// The connection's name.
        connection: Arc<str>,
    },
    /// The transport failed this one request (its reply was larger than the
    /// limit, was cut short, or was not JSON-RPC); the link lives on.
    #[error("connection `{connection}`: `{method}` failed in the transport: {source}")]
    Transport {
        /// The connection's name.
        connection: Arc<str>,
        /// The method of the failed request.
        method: String,
        /// Why.
        #[source]
        source: TransportError,
    },
    /// The connection is waiting out its reconnect backoff (or, in `Error`,
    /// the pause between implicit retries); nothing was sent and no connect
    /// attempt was started for this call. Try again after `retry_in`.
    #[error("connection `{connection}` is {status}: next connect attempt in {retry_in:?}{}", .cause.as_ref().map(|c| format!(" (last error: {c})")).unwrap_or_default())]
    Backoff {
        /// The connection's name.
        connection: Arc<str>,
        /// `reconnecting` (between attempts) or `error` (attempts used up).
        status: crate::ConnectionStatus,
        /// How long until the next attempt may start.
        retry_in: Duration,
        /// The failure that started the wait, if known.
        #[source]
        cause: Option<Box<Error>>,
    },
    /// The server was restarted as often as its
    /// [`crate::RestartBudget`] allows within the window, and lost again:
    /// the connection stays in `Error` until `connect()` is called.
    #[error("connection `{connection}`: restarted {restarts} times within {window:?}; not restarting again")]
    RestartBudgetExhausted {
        /// The connection's name.
        connection: Arc<str>,
        /// Restarts within the window.
        restarts: u32,
        /// The window.
        window: Duration,
        /// The loss that would have been one restart too many.
        #[source]
        last: Box<Error>,
    },
    /// The caller's arguments cannot be sent (e.g. tool arguments that are
    /// not a JSON object); nothing was sent.
    #[error("connection `{connection}`: invalid arguments for `{method}`: {message}")]
    InvalidArguments {
        /// The connection's name.
        connection: Arc<str>,
        /// The method that was refused.
        method: String,
        /// What is wrong.
        message: String,
    },
    /// A multi round-trip request (stateless era: the server answered
    /// `input_required`) could not be completed: an input request no
    /// registered handler answers, or more rounds than allowed.
    #[error("connection `{connection}`: `{method}` needs input that cannot be given: {message}")]
    InputRequired {
        /// The connection's name.
        connection: Arc<str>,
        /// The method that was called.
        method: String,
        /// Why it stopped.
        message: String,
    },
    /// The reply stream of a request broke (stateless era over HTTP) and the
    /// request is not one that may be sent again without the caller's
    /// consent (`tools/call`: its effect may already have happened). Nothing
    /// was retried; the caller decides.
    #[error("connection `{connection}`: the reply to `{method}` was lost ({reason}); not retried because it may already have taken effect")]
    ReplyLost {
        /// The connection's name.
        connection: Arc<str>,
        /// The method that was called.
        method: String,
        /// Why the reply was lost.
        reason: TransportError,
    },
    /// The connection's settings are invalid (see
    /// [`crate::ConnectionConfig::validate`]); nothing was started.
    #[error("connection `{connection}`: {source}")]
    InvalidConfig {
        /// The connection's name.
        connection: Arc<str>,
        /// What is wrong.
        #[source]
        source: crate::config::ConfigError,
    },
}

impl Error {
    /// The name of the connection this error happened on.
    pub fn connection(&self) -> &str {
        match self {
            Error::NotConnected { connection }
            | Error::Connect { connection, .. }
            | Error::Timeout { connection, .. }
            | Error::ConnectionLost { connection, .. }
            | Error::Rpc { connection, .. }
            | Error::Protocol { connection, .. }
            | Error::UnsupportedVersion { connection, .. }
            | Error::CapabilityNotSupported { connection, .. }
            | Error::Closed { connection }
            | Error::Transport { connection, .. }
            | Error::Backoff { connection, .. }
            | Error::InvalidConfig { connection, .. }
            | Error::InvalidArguments { connection, .. }
            | Error::RestartBudgetExhausted { connection, .. }
            | Error::InputRequired { connection, .. }
            | Error::ReplyLost { connection, .. } => connection,
        }
    }

    /// Whether the same call may succeed later (after a reconnect, or when
    /// the server is less busy). Errors the server sent on purpose, protocol
    /// violations, refused capabilities, invalid settings and a closed
    /// connection are not. For a transport's failure this is exactly
    /// [`TransportError::is_retryable`]: the two never disagree.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::NotConnected { .. } | Error::Timeout { .. } | Error::Backoff { .. } => true,
            Error::ConnectionLost { reason: source, .. }
            | Error::Connect { source, .. }
            | Error::Transport { source, .. } => source.is_retryable(),
            Error::Rpc { error, .. } => {
                error.code == crate::jsonrpc::codes::URL_ELICITATION_REQUIRED
            }
            Error::Protocol { .. }
            | Error::UnsupportedVersion { .. }
            | Error::CapabilityNotSupported { .. }
            | Error::InvalidConfig { .. }
            | Error::InvalidArguments { .. }
            | Error::RestartBudgetExhausted { .. }
            | Error::InputRequired { .. }
            | Error::ReplyLost { .. }
            | Error::Closed { .. } => false,
        }
    }

    /// How long to wait before trying again, when that is known: the time
    /// left of a reconnect backoff, or the server's `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Backoff { retry_in, .. } => Some(*retry_in),
            Error::ConnectionLost { reason: source, .. }
            | Error::Connect { source, .. }
            | Error::Transport { source, .. } => source.retry_after(),
            _ => None,
        }
    }

    /// The transport's error behind this one, if any.
    pub fn transport_error(&self) -> Option<&TransportError> {
        match self {
            Error::ConnectionLost { reason: source, .. }
            | Error::Connect { source, .. }
            | Error::Transport { source, .. } => Some(source),
            Error::ReplyLost { reason, .. } => Some(reason),
            Error::Backoff { cause: Some(c), .. } => c.transport_error(),
            _ => None,
        }
    }

    /// A short, stable name of the variant (`connect`, `timeout`, …), as
    /// [`ErrorKind`] gives it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotConnected { .. } => ErrorKind::NotConnected,
            Error::Connect { .. } => ErrorKind::Connect,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::ConnectionLost { .. } => ErrorKind::ConnectionLost,
            Error::Rpc { .. } => ErrorKind::Rpc,
            Error::Protocol { .. } => ErrorKind::Protocol,
            Error::UnsupportedVersion { .. } => ErrorKind::UnsupportedVersion,
            Error::CapabilityNotSupported { .. } => ErrorKind::CapabilityNotSupported,
            Error::Closed { .. } => ErrorKind::Closed,
            Error::Transport { .. } => ErrorKind::Transport,
            Error::Backoff { .. } => ErrorKind::Backoff,
            Error::InvalidConfig { .. } => ErrorKind::InvalidConfig,
            Error::InvalidArguments { .. } => ErrorKind::InvalidArguments,
            Error::RestartBudgetExhausted { .. } => ErrorKind::RestartBudgetExhausted,
            Error::InputRequired { .. } => ErrorKind::InputRequired,
            Error::ReplyLost { .. } => ErrorKind::ReplyLost,
        }
    }

    /// Whether this is a local timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// The server's JSON-RPC error, if the server sent one.
    pub fn rpc_error(&self) -> Option<&JsonRpcError> {
        match self {
            Error::Rpc { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The variant of an [`Error`], without its data: what
/// [`crate::ConnectionInfo::last_error`] keeps, and what metrics label by.
/// Serialises as snake case (`connection_lost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::NotConnected`].
    NotConnected,
    /// [`Error::Connect`].
    Connect,
    /// [`Error::Timeout`].
    Timeout,
    /// [`Error::ConnectionLost`].
    ConnectionLost,
    /// [`Error::Rpc`].
    Rpc,
    /// [`Error::Protocol`].
    Protocol,
    /// [`Error::UnsupportedVersion`].
    UnsupportedVersion,
    /// [`Error::CapabilityNotSupported`].
    CapabilityNotSupported,
    /// [`Error::Closed`].
    Closed,
    /// [`Error::Transport`].
    Transport,
    /// [`Error::Backoff`].
    Backoff,
    /// [`Error::InvalidConfig`].
    InvalidConfig,
    /// [`Error::InvalidArguments`].
    InvalidArguments,
    /// [`Error::RestartBudgetExhausted`].
    RestartBudgetExhausted,
    /// [`Error::InputRequired`].
    InputRequired,
    /// [`Error::ReplyLost`].
    ReplyLost,
}

impl ErrorKind {
    /// The kind's snake-case name, as it serialises (`connection_lost`): the
    /// `kind` label of the error metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotConnected => "not_connected",
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ConnectionLost => "connection_lost",
            ErrorKind::Rpc => "rpc",
            ErrorKind::Protocol => "protocol",
            ErrorKind::UnsupportedVersion => "unsupported_version",
            ErrorKind::CapabilityNotSupported => "capability_not_supported",
            ErrorKind::Closed => "closed",
            ErrorKind::Transport => "transport",
            ErrorKind::Backoff => "backoff",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::InvalidArguments => "invalid_arguments",
            ErrorKind::RestartBudgetExhausted => "restart_budget_exhausted",
            ErrorKind::InputRequired => "input_required",
            ErrorKind::ReplyLost => "reply_lost",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last error of a connection, as [`crate::ConnectionInfo`] reports it:
/// its kind, its message, and whether retrying may help. Serialisable.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ErrorSummary {
    /// The variant.
    pub kind: ErrorKind,
    /// The error's full message.
    pub message: String,
    /// [`Error::is_retryable`].
    pub retryable: bool,
}

impl From<&Error> for ErrorSummary {
    fn from(e: &Error) -> Self {
        ErrorSummary {
            kind: e.kind(),
            message: e.to_string(),
            retryable: e.is_retryable(),
        }
    }
}

impl std::fmt::Display for ErrorSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_connection_and_classify() {
        let c: Arc<str> = Arc::from("fs");
        let lost = Error::ConnectionLost {
            connection: c.clone(),
            reason: TransportError::Exited {
                status: "status 1".into(),
                stderr_tail: vec!["boom".into()],
            },
        };
        assert_eq!(lost.connection(), "fs");
        assert!(lost.is_retryable());
        let refused = Error::ConnectionLost {
            connection: c.clone(),
            reason: TransportError::Unauthorized {
                www_authenticate: None,
            },
        };
        assert!(!refused.is_retryable(), "a 401 will be refused again");
        assert_eq!(
            lost.to_string(),
            "connection `fs` lost: server exited with status 1: boom"
        );
        let closed = Error::Closed {
            connection: c.clone(),
        };
        assert!(!closed.is_retryable());
        let refused = Error::Connect {
            connection: c.clone(),
            source: TransportError::NotFound {
                program: "nope".into(),
            },
        };
        assert!(
            !refused.is_retryable(),
            "a missing program will not appear by retrying"
        );
        let rpc = Error::Rpc {
            connection: c,
            method: "tools/call".into(),
            error: JsonRpcError::invalid_params("bad"),
        };
        assert_eq!(rpc.rpc_error().map(|e| e.code), Some(-32602));
        assert!(!rpc.is_retryable());
    }

    #[test]
    fn kind_names_are_what_the_kinds_serialise_as() {
        use ErrorKind::*;
        let all = [
            NotConnected,
            Connect,
            Timeout,
            ConnectionLost,
            Rpc,
            Protocol,
            UnsupportedVersion,
            CapabilityNotSupported,
            Closed,
            Transport,
            Backoff,
            InvalidConfig,
            InvalidArguments,
            RestartBudgetExhausted,
            InputRequired,
            ReplyLost,
        ];
        for kind in all {
            let json = serde_json::to_value(kind).expect("serialises");
            assert_eq!(json.as_str(), Some(kind.as_str()), "{kind:?}");
            assert_eq!(kind.to_string(), kind.as_str());
        }
    }
}
