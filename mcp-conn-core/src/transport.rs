//! The seam between the engine and the wire.
//!
//! A [`Transport`] is a factory: every [`Transport::connect`] makes a fresh
//! [`Link`] (a child process, an HTTP session, …). A reconnect calls `connect`
//! again; nothing of an old link is reused. A link is split into a send half
//! and a receive half so that reading never waits on writing.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::jsonrpc::Message;

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
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for Arc<T> {
    async fn connect(&self) -> Result<Link, TransportError> {
        (**self).connect().await
    }

    fn kind(&self) -> &'static str {
        (**self).kind()
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

    /// Shuts the link down gracefully, taking at most about `grace` before
    /// forcing it (stdio: close stdin, wait, SIGTERM, wait, SIGKILL; HTTP:
    /// DELETE the session). Must be idempotent.
    async fn close(&mut self, grace: Duration) -> Result<(), TransportError>;
}

/// The receive half of a link.
#[async_trait]
pub trait LinkRx: Send + 'static {
    /// The next message. `Ok(None)` is an orderly end (EOF); `Err` says why
    /// the link broke. Must be cancel-safe: the engine uses it in `select!`.
    async fn recv(&mut self) -> Result<Option<Message>, TransportError>;
}

/// Why a transport failed. Cheap to clone: the engine hands the same reason to
/// every request that was pending when a link broke.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The program to run was not found.
    #[error("program not found: {program}")]
    NotFound {
        /// The program as configured.
        program: String,
    },
    /// The link could not be opened (spawn failed, connection refused, …).
    #[error("could not connect: {message}")]
    Connect {
        /// What happened.
        message: String,
        /// Whether trying again later may succeed.
        retryable: bool,
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
    #[error("HTTP {status}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) })]
    Http {
        /// The status code.
        status: u16,
        /// The start of the body, if any.
        body: String,
    },
    /// The server wants credentials (HTTP 401).
    #[error("unauthorized{}", .www_authenticate.as_ref().map(|w| format!(" ({w})")).unwrap_or_default())]
    Unauthorized {
        /// The `WWW-Authenticate` header, if any.
        www_authenticate: Option<String>,
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

impl TransportError {
    /// Whether trying again (reconnecting) may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            TransportError::NotFound { .. }
            | TransportError::Unauthorized { .. }
            | TransportError::Protocol(_) => false,
            TransportError::Connect { retryable, .. } => *retryable,
            TransportError::Http { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            _ => true,
        }
    }
}

impl From<std::io::Error> for TransportError {
    fn from(e: std::io::Error) -> Self {
        TransportError::Io(Arc::new(e))
    }
}
