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

mod error;

pub use error::{Cause, ConnectFailure, TlsFailure, TransportError};

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
/// `mcp-transport-http`); `testing::MockTransport` (feature `test-util`)
/// plays a server in memory for tests.
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
