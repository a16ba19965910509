//! [`TransportError`]: why a link could not open or broke, with its cause
//! kept, its kind classified once ([`ConnectFailure`], [`TlsFailure`]) and
//! the one table of what is worth retrying.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A cause kept behind a [`TransportError`]: any error, shared so that the
/// same reason can be handed to every request a broken link failed.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of failure kept a link from opening. The transport classifies
/// it (it knows its own error types); [`TransportError`]'s predicates read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// The peer refused the connection (nothing listens there).
    Refused,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed, for a reason the transport cannot tell
    /// apart (transports that can say more report [`TransportError::Tls`]).
    Tls,
    /// The proxy could not open a tunnel to the server (it answered 5xx,
    /// or closed the connection). It may heal, like any other network
    /// failure.
    Proxy,
    /// The proxy refused the tunnel for good: it wants credentials, or
    /// refused the ones given (`407`), or does not allow the destination
    /// (`403`, another 4xx). Trying again cannot help.
    ProxyRefused,
    /// Connecting took longer than allowed.
    Timeout,
    /// The configuration makes connecting impossible (a working directory
    /// that does not exist, an invalid URL…): trying again cannot help.
    Invalid,
    /// Anything else (reset, unreachable network…).
    Other,
}

/// Why a TLS handshake (or the first exchange after it) failed. None of
/// these heal by trying again: they need another certificate, another
/// trusted authority, or another setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server's certificate is signed by an authority we do not trust
    /// (a private or self-signed authority: add its certificate as a root).
    UnknownIssuer,
    /// The server's certificate has expired.
    Expired,
    /// The server's certificate is not valid yet.
    NotYetValid,
    /// The server's certificate is not for the host name we dialled.
    NameMismatch,
    /// The server's certificate was revoked.
    Revoked,
    /// Something else is wrong with the server's certificate (bad encoding,
    /// bad signature, wrong usage…).
    BadCertificate,
    /// The server requires a client certificate and we sent none.
    ClientCertificateRequired,
    /// The server refused the client certificate we sent.
    ClientCertificateRejected,
    /// The handshake broke: the peer does not speak TLS there, or we share
    /// no protocol version or cipher suite with it.
    Handshake,
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFailure::UnknownIssuer => "certificate signed by an unknown authority",
            TlsFailure::Expired => "certificate expired",
            TlsFailure::NotYetValid => "certificate not valid yet",
            TlsFailure::NameMismatch => "certificate is not valid for this host name",
            TlsFailure::Revoked => "certificate revoked",
            TlsFailure::BadCertificate => "invalid certificate",
            TlsFailure::ClientCertificateRequired => "the server requires a client certificate",
            TlsFailure::ClientCertificateRejected => "the server refused our client certificate",
            TlsFailure::Handshake => "TLS handshake failed",
        })
    }
}

/// Why a transport failed. Cheap to clone: the engine hands the same reason to
/// every request that was pending when a link broke.
///
/// Match on the variant, or ask a predicate: [`TransportError::is_retryable`]
/// (the one table of what may heal by trying again, which
/// [`crate::Error::is_retryable`] delegates to), [`TransportError::is_refused`],
/// [`TransportError::is_timeout`], [`TransportError::is_tls`],
/// [`TransportError::http_status`], [`TransportError::retry_after`]. Causes are
/// kept: [`std::error::Error::source`] walks them.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The program to run was not found.
    #[error("program not found: {program}")]
    NotFound {
        /// The program as configured.
        program: String,
    },
    /// The program was found but could not be started (permission denied,
    /// not an executable, argument list too long, out of processes…).
    #[error("could not start {program}: {source}")]
    Spawn {
        /// The program as resolved.
        program: String,
        /// The operating system's error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The link could not be opened (connection refused, DNS, TLS, …).
    #[error("could not connect to {target}: {kind:?}{}", cause_suffix(.source))]
    Connect {
        /// What kind of failure.
        kind: ConnectFailure,
        /// Where to (a URL, a program, a path).
        target: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Cause>,
    },
    /// TLS with the server failed, for a reason the transport could tell
    /// ([`TlsFailure`]). Never retryable.
    #[error("TLS with {target} failed: {reason}{}", cause_suffix(.source))]
    Tls {
        /// What went wrong.
        reason: TlsFailure,
        /// Where to (a URL, without credentials or query).
        target: String,
        /// The TLS library's error.
        #[source]
        source: Option<Cause>,
    },
    /// An I/O error on an open link.
    #[error("i/o error: {0}")]
    Io(#[source] Arc<std::io::Error>),
    /// The server process exited.
    #[error("server exited with {status}{}", stderr_suffix(.stderr_tail))]
    Exited {
        /// How it exited (`status 1`, `signal 9`, …).
        status: String,
        /// Its last lines of stderr, oldest first.
        stderr_tail: Vec<String>,
    },
    /// The server closed the link (EOF) without saying why.
    #[error("the server closed the connection")]
    Eof,
    /// An HTTP error status.
    #[error("HTTP {status}{}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) }, .retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    Http {
        /// The status code.
        status: u16,
        /// The start of the body, if any.
        body: String,
        /// The server's `Retry-After` (429, 503), if it sent one.
        retry_after: Option<Duration>,
    },
    /// The server wants credentials (HTTP 401).
    #[error("unauthorized{}", .www_authenticate.as_ref().map(|w| format!(" ({w})")).unwrap_or_default())]
    Unauthorized {
        /// The `WWW-Authenticate` header, if any.
        www_authenticate: Option<String>,
    },
    /// A reply whose content type is neither JSON nor an event stream.
    #[error("HTTP {status} with content type {content_type:?} (expected JSON or an event stream): {body_start:?}")]
    UnexpectedContent {
        /// The status code.
        status: u16,
        /// The content type as sent (empty when missing).
        content_type: String,
        /// The first bytes of the body (bounded), lossily decoded.
        body_start: String,
    },
    /// The legacy HTTP+SSE `endpoint` event named another origin; posting
    /// there would send this link's credentials to a third party.
    #[error("the server's endpoint {endpoint} is not on the origin of {origin}")]
    CrossOrigin {
        /// The endpoint the server named.
        endpoint: String,
        /// The origin of the URL this transport was given.
        origin: String,
    },
    /// A message exceeded the configured size limit.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The size seen (at least).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Something the transport waited for did not happen in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What timed out.
        what: String,
        /// After how long.
        after: Duration,
    },
    /// The link was already closed.
    #[error("the link is closed")]
    Closed,
    /// The peer broke the transport's rules.
    #[error("transport protocol error: {0}")]
    Protocol(String),
}

fn stderr_suffix(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {}", tail.join("\n"))
    }
}

fn cause_suffix(cause: &Option<Cause>) -> String {
    cause.as_ref().map(|c| format!(": {c}")).unwrap_or_default()
}

/// Spawn failures that no retry can fix: the program is missing, may not be
/// executed, is not an executable, or the arguments do not fit.
fn spawn_is_permanent(e: &std::io::Error) -> bool {
    const E2BIG: i32 = 7;
    const ENOENT: i32 = 2;
    const EACCES: i32 = 13;
    const ENOEXEC: i32 = 8;
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
    ) || matches!(e.raw_os_error(), Some(E2BIG | ENOENT | EACCES | ENOEXEC))
}

impl TransportError {
    /// Whether trying again (reconnecting, re-sending) may succeed. This is
    /// the one table of retryability: a missing or unstartable program, a
    /// refused credential, a client error status (4xx but 408 and 429), a
    /// link to another origin and a broken protocol will fail the same way
    /// again; anything that may be load, a restart or the network may heal.
    pub fn is_retryable(&self) -> bool {
        match self {
            TransportError::NotFound { .. }
            | TransportError::Unauthorized { .. }
            | TransportError::CrossOrigin { .. }
            | TransportError::UnexpectedContent { .. }
            | TransportError::Tls { .. }
            | TransportError::Protocol(_) => false,
            TransportError::Spawn { source, .. } => !spawn_is_permanent(source),
            TransportError::Connect { kind, .. } => !matches!(
                kind,
                ConnectFailure::Invalid | ConnectFailure::Tls | ConnectFailure::ProxyRefused
            ),
            TransportError::Http { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            TransportError::Io(_)
            | TransportError::Exited { .. }
            | TransportError::Eof
            | TransportError::MessageTooLarge { .. }
            | TransportError::Timeout { .. }
            | TransportError::Closed => true,
        }
    }

    /// Whether the peer refused the connection.
    pub fn is_refused(&self) -> bool {
        matches!(
            self,
            TransportError::Connect {
                kind: ConnectFailure::Refused,
                ..
            }
        )
    }

    /// Whether something timed out (connecting, a reply, an idle stream).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            TransportError::Timeout { .. }
                | TransportError::Connect {
                    kind: ConnectFailure::Timeout,
                    ..
                }
        )
    }

    /// Whether TLS with the server failed ([`TransportError::Tls`], or a
    /// connect failure of kind [`ConnectFailure::Tls`]).
    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            TransportError::Tls { .. }
                | TransportError::Connect {
                    kind: ConnectFailure::Tls,
                    ..
                }
        )
    }

    /// What failed in TLS, when the transport could tell.
    pub fn tls_failure(&self) -> Option<TlsFailure> {
        match self {
            TransportError::Tls { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// Whether the proxy refused the tunnel or the credentials.
    pub fn is_proxy(&self) -> bool {
        matches!(
            self,
            TransportError::Connect {
                kind: ConnectFailure::Proxy | ConnectFailure::ProxyRefused,
                ..
            }
        )
    }

    /// Whether the server refused the credentials (HTTP 401).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, TransportError::Unauthorized { .. })
    }

    /// The HTTP status this error carries, if any.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            TransportError::Http { status, .. }
            | TransportError::UnexpectedContent { status, .. } => Some(*status),
            TransportError::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }

    /// How long the server asked us to wait (`Retry-After` on 429 or 503).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TransportError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A spawn failure, classified: `ENOENT` is [`TransportError::NotFound`].
    pub fn spawn(program: impl Into<String>, e: std::io::Error) -> Self {
        let program = program.into();
        if e.kind() == std::io::ErrorKind::NotFound {
            TransportError::NotFound { program }
        } else {
            TransportError::Spawn {
                program,
                source: Arc::new(e),
            }
        }
    }

    /// A connect failure of `kind` to `target`, keeping `source`.
    pub fn connect(
        kind: ConnectFailure,
        target: impl Into<String>,
        source: impl Into<Option<Cause>>,
    ) -> Self {
        TransportError::Connect {
            kind,
            target: target.into(),
            source: source.into(),
        }
    }
}

impl From<std::io::Error> for TransportError {
    fn from(e: std::io::Error) -> Self {
        TransportError::Io(Arc::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_failures_that_cannot_heal_are_not_retryable() {
        for errno in [7, 2, 13, 8] {
            let e = TransportError::spawn("p", std::io::Error::from_raw_os_error(errno));
            assert!(!e.is_retryable(), "errno {errno}: {e}");
        }
        // EAGAIN (out of processes for now) may heal.
        let e = TransportError::spawn("p", std::io::Error::from_raw_os_error(11));
        assert!(e.is_retryable(), "{e}");
        assert!(matches!(
            TransportError::spawn("p", std::io::Error::from_raw_os_error(2)),
            TransportError::NotFound { .. }
        ));
    }

    #[test]
    fn predicates_read_the_variant() {
        let refused = TransportError::connect(
            ConnectFailure::Refused,
            "http://127.0.0.1:1/",
            Some(Arc::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)) as Cause),
        );
        assert!(refused.is_refused() && refused.is_retryable() && !refused.is_tls());
        assert!(
            std::error::Error::source(&refused).is_some(),
            "the cause is kept"
        );
        let tls = TransportError::connect(ConnectFailure::Tls, "https://x/", None);
        assert!(tls.is_tls() && !tls.is_retryable());
        for reason in [
            TlsFailure::UnknownIssuer,
            TlsFailure::ClientCertificateRequired,
        ] {
            let tls = TransportError::Tls {
                reason,
                target: "https://x/".into(),
                source: Some(Arc::new(std::io::Error::other("handshake")) as Cause),
            };
            assert!(tls.is_tls() && !tls.is_retryable() && !tls.is_refused());
            assert_eq!(tls.tls_failure(), Some(reason));
            assert!(
                std::error::Error::source(&tls).is_some(),
                "the cause is kept"
            );
            assert!(tls.to_string().contains(&reason.to_string()), "{tls}");
        }
        let proxy = TransportError::connect(ConnectFailure::Proxy, "http://127.0.0.1:1/", None);
        assert!(
            proxy.is_proxy() && proxy.is_retryable(),
            "a proxy refusal may heal"
        );
        let auth =
            TransportError::connect(ConnectFailure::ProxyRefused, "http://127.0.0.1:1/", None);
        assert!(
            auth.is_proxy() && !auth.is_retryable(),
            "407 will fail again"
        );
        assert_eq!(refused.tls_failure(), None);
        let busy = TransportError::Http {
            status: 429,
            body: String::new(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert!(busy.is_retryable());
        assert_eq!(busy.http_status(), Some(429));
        assert_eq!(busy.retry_after(), Some(Duration::from_secs(3)));
        assert!(!TransportError::Http {
            status: 404,
            body: String::new(),
            retry_after: None
        }
        .is_retryable());
        assert!(TransportError::Timeout {
            what: "x".into(),
            after: Duration::ZERO
        }
        .is_timeout());
    }
}
