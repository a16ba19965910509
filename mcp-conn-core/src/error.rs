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
    /// error sent by the server (checklist item 9).
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
    /// was not sent (checklist item 18).
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
            | Error::Closed { connection } => connection,
        }
    }

    /// Whether the same call may succeed later (after a reconnect, or when
    /// the server is less busy). Errors the server sent on purpose, protocol
    /// violations, refused capabilities and a closed connection are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::NotConnected { .. } | Error::Timeout { .. } => true,
            // A link lost to a refusal (401, 403, a missing program) will be
            // refused again; anything else may heal on a new link.
            Error::ConnectionLost { reason, .. } => !matches!(
                reason,
                TransportError::Unauthorized { .. }
                    | TransportError::NotFound { .. }
                    | TransportError::Http {
                        status: 400..=407 | 409..=428 | 430..=499,
                        ..
                    }
            ),
            Error::Connect { source, .. } => source.is_retryable(),
            Error::Rpc { error, .. } => {
                error.code == crate::jsonrpc::codes::URL_ELICITATION_REQUIRED
            }
            Error::Protocol { .. }
            | Error::UnsupportedVersion { .. }
            | Error::CapabilityNotSupported { .. }
            | Error::Closed { .. } => false,
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
}
