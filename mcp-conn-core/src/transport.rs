//! The seam between the engine and the wire.
//!
//! A [`Transport`] is a factory: every [`Transport::connect`] makes a fresh
//! [`Link`] (a child process, an HTTP session, …). A reconnect calls `connect`
//! again; nothing of an old link is reused. A link is split into a send half
//! and a receive half so that reading never waits on writing.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::jsonrpc::{Message, RequestId, Response};

/// A request's exchange, run by the task that sent the request (see
/// [`LinkTx::try_exchange_now`]). It resolves to the request's response
/// when the transport hands it straight to its caller, or to `None` when
/// everything the exchange brought (the response too, or a failure) went to
/// the link's receive half as usual. Dropping it abandons the exchange, as
/// cancelling the request would.
pub type DirectExchange = Pin<Box<dyn Future<Output = Option<Response>> + Send + 'static>>;

/// Makes links to one MCP server.
///
/// Implementations live in the transport crates (`mcp-transport-stdio`,
/// `mcp-transport-http`); [`crate::testing::MockTransport`] plays a server in
/// memory for tests.
#[async_trait]
pub trait Transport: fmt::Debug + Send + Sync + 'static {
    /// Opens a fresh link: spawns the process, opens the session.
    async fn connect(&self) -> Result<Link, TransportError>;

    /// A short name of the transport kind (`"stdio"`, `"http"`, …), used in
    /// reports such as [`crate::ConnectionInfo::transport_type`].
    fn kind(&self) -> &'static str;

    /// What the last link negotiated on the wire (proxy, TLS version, HTTP
    /// version), for reports; `None` for transports without such things,
    /// or before the first link.
    fn wire_info(&self) -> Option<WireInfo> {
        None
    }
}

/// What a network transport's last link negotiated, for reports such as
/// `mcp-conn check`. Eventually consistent: the transport notes it when a
/// connection opens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WireInfo {
    /// The proxy it went through (`http://host:port`, never credentials).
    pub proxy: Option<String>,
    /// The TLS version (`TLSv1.3`), when TLS was used.
    pub tls_version: Option<String>,
    /// The application protocol (`HTTP/1.1`, `HTTP/2`).
    pub protocol: Option<String>,
}

impl WireInfo {
    /// A report of these three.
    pub fn new(
        proxy: Option<String>,
        tls_version: Option<String>,
        protocol: Option<String>,
    ) -> Self {
        WireInfo {
            proxy,
            tls_version,
            protocol,
        }
    }
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for Arc<T> {
    async fn connect(&self) -> Result<Link, TransportError> {
        (**self).connect().await
    }

    fn kind(&self) -> &'static str {
        (**self).kind()
    }

    fn wire_info(&self) -> Option<WireInfo> {
        (**self).wire_info()
    }
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for Box<T> {
    async fn connect(&self) -> Result<Link, TransportError> {
        (**self).connect().await
    }

    fn kind(&self) -> &'static str {
        (**self).kind()
    }

    fn wire_info(&self) -> Option<WireInfo> {
        (**self).wire_info()
    }
}

/// One live link to a server, in two halves.
pub struct Link {
    /// The send half.
    pub tx: Box<dyn LinkTx>,
    /// The receive half.
    pub rx: Box<dyn LinkRx>,
}

impl Link {
    /// A link from its two halves.
    pub fn new(tx: impl LinkTx, rx: impl LinkRx) -> Self {
        Link {
            tx: Box::new(tx),
            rx: Box::new(rx),
        }
    }
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link").finish_non_exhaustive()
    }
}

/// The send half of a link.
#[async_trait]
pub trait LinkTx: Send + 'static {
    /// Sends one message.
    async fn send(&mut self, msg: &Message) -> Result<(), TransportError>;

    /// Sends several messages, in order, in as few writes as the transport
    /// can. The engine calls this with whatever is queued.
    async fn send_batch(&mut self, msgs: &[Message]) -> Result<(), TransportError> {
        for msg in msgs {
            self.send(msg).await?;
        }
        Ok(())
    }

    /// Sends `msg` at once if the link can take it without waiting: a
    /// write that completes now (stdio: one non-blocking write of the whole
    /// line), an exchange started now (HTTP). `false`: nothing was sent, and
    /// the engine queues the message for [`LinkTx::send_batch`], which also
    /// reports any failure. The default never can.
    ///
    /// The engine calls it from the sending task, under a short lock, only
    /// while no `send`, `send_batch` or `close` runs and nothing queued is
    /// still unwritten (so order is kept), and only for a message sent while
    /// no other request waits for its answer: a sequential caller (or a
    /// health probe) skips the hand-off to the link's task, while
    /// concurrent callers still have their messages written in batches.
    fn try_send_now(&mut self, msg: &Message) -> bool {
        let _ = msg;
        false
    }

    /// Starts the exchange of request `msg` now, for the task that sent it
    /// to run: a transport whose every request is an exchange of its own
    /// (HTTP: a POST and its reply) can so hand the response to its caller
    /// without a hop through the link's task or one of its own. `None`:
    /// nothing was sent, and the engine goes on as for
    /// [`LinkTx::try_send_now`]. The default never does.
    ///
    /// Called under the same conditions as [`LinkTx::try_send_now`], but
    /// for every request, not only a lone one (there is no batch to gain).
    /// The exchange may give the response itself only if nothing else of
    /// its reply went to the receive half before it (so that a request's
    /// notifications are routed before its result is returned); what comes
    /// after the response goes to the receive half. A transport must
    /// finish on its own whatever the exchange still has to read when it
    /// resolves: the caller drops it then.
    fn try_exchange_now(&mut self, msg: &Message) -> Option<DirectExchange> {
        let _ = msg;
        None
    }

    /// Shuts the link down gracefully, taking at most about `grace` before
    /// forcing it (stdio: close stdin, wait, SIGTERM, wait, SIGKILL; HTTP:
    /// DELETE the session). Must be idempotent.
    async fn close(&mut self, grace: Duration) -> Result<(), TransportError>;
}

/// The receive half of a link.
#[async_trait]
pub trait LinkRx: Send + 'static {
    /// The next thing the link delivers. `Ok(None)` is an orderly end (EOF);
    /// `Err` says why the whole link broke. Must be cancel-safe: the engine
    /// uses it in `select!`.
    async fn recv(&mut self) -> Result<Option<Inbound>, TransportError>;
}

/// What a link delivers to the engine.
#[derive(Debug)]
#[non_exhaustive]
pub enum Inbound {
    /// A message from the server.
    Message(Message),
    /// The transport failed one request, and only that one (its reply was
    /// larger than the limit, was cut short, or was not JSON-RPC at all);
    /// the link lives on. The caller of that request gets
    /// [`crate::Error::Transport`] with `error`.
    Failed {
        /// The request that failed.
        id: RequestId,
        /// Why.
        error: TransportError,
    },
}

impl From<Message> for Inbound {
    fn from(msg: Message) -> Self {
        Inbound::Message(msg)
    }
}

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
