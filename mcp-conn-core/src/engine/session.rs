//! [`Session`]: one link's engine, its link task, and how it stops.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use super::client::Client;
use super::link::{LinkTask, Outgoing};
use super::pending::{ClientInner, Pending, WriterSlot};
use super::reader::Reader;
use crate::error::Error;
use crate::handler::ClientHandlers;
use crate::metrics::Counters;
use crate::notification::Notifier;
use crate::protocol::*;
use crate::transport::{Link, TransportError};

/// Replies to the server (to its `ping`s and requests) queued for the writer.
/// The reader never waits for room here: when it is full, a reply the reader
/// makes is dropped with a warning (the server stops reading what we write,
/// so it would not see it anyway); handler tasks wait for room.
const REPLY_QUEUE: usize = 256;

/// Settings of one session, given by the connection.
#[derive(Clone)]
pub(crate) struct EngineConfig {
    pub(crate) name: Arc<str>,
    pub(crate) request_timeout: Duration,
    pub(crate) handlers: ClientHandlers,
    pub(crate) notifications: Arc<Notifier>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) queue_capacity: usize,
    pub(crate) max_server_requests: usize,
    pub(crate) close_grace: Duration,
    /// Called once, when the link is first found lost (before any pending
    /// request hears of it), so the connection's status changes first.
    pub(crate) on_link_lost: Option<LinkLostHook>,
    /// Shared by the connection's sessions (safe replay reads it).
    pub(crate) tool_hints: Arc<super::ToolHints>,
}

/// See [`EngineConfig::on_link_lost`].
pub(crate) type LinkLostHook = Arc<dyn Fn(&Error) + Send + Sync>;

/// How the reader task ended.
#[derive(Debug, Clone)]
pub(crate) enum ReaderExit {
    /// The link broke or ended; the reason is what callers saw.
    Lost(TransportError),
    /// The session was stopped on purpose.
    Stopped,
}

/// One link's engine: the client handle plus the one task that drives the
/// link ([`LinkTask`]: it reads and writes). Dropping it stops the task,
/// which closes the link gracefully first.
pub(crate) struct Session {
    pub(crate) client: Client,
    task: Option<JoinHandle<()>>,
    /// How reading ended, sent by the link task the moment it does.
    exit: Option<oneshot::Receiver<ReaderExit>>,
    /// The `subscriptions/listen` task (stateless era), if listening.
    pub(super) listening: Option<JoinHandle<()>>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Starts the engine over `link`.
    pub(crate) fn start(link: Link, config: &EngineConfig) -> Session {
        let (out_tx, out_rx) = mpsc::channel(config.queue_capacity.max(1));
        let (replies_tx, replies_rx) = mpsc::channel(REPLY_QUEUE);
        let inner = Arc::new(ClientInner {
            name: config.name.clone(),
            writer: Mutex::new(WriterSlot::new(link.tx)),
            probe: Mutex::new(Default::default()),
            out: out_tx,
            replies: replies_tx,
            pending: Mutex::new(Pending::default()),
            next_id: AtomicI64::new(0),
            ended: AtomicBool::new(false),
            request_timeout: config.request_timeout,
            server: OnceLock::new(),
            notifications: config.notifications.clone(),
            counters: config.counters.clone(),
            on_link_lost: config.on_link_lost.clone(),
            stateless: OnceLock::new(),
            handlers: config.handlers.clone(),
            tool_hints: config.tool_hints.clone(),
        });
        let (exit_tx, exit) = oneshot::channel();
        let task = tokio::spawn(
            LinkTask {
                reader: Reader {
                    inner: inner.clone(),
                    handlers: config.handlers.clone(),
                    max_server_requests: config.max_server_requests.max(1),
                    running: JoinSet::new(),
                    backlog: VecDeque::new(),
                    by_request: HashMap::new(),
                    by_task: HashMap::new(),
                },
                rx: link.rx,
                out: Outgoing {
                    requests: out_rx,
                    replies: replies_rx,
                    armed: false,
                },
                grace: config.close_grace,
                exit: exit_tx,
            }
            .run()
            .instrument(tracing::Span::current()),
        );
        Session {
            client: Client { inner },
            task: Some(task),
            exit: Some(exit),
            listening: None,
        }
    }

    /// Records the server's `initialize` result on the client.
    pub(crate) fn set_server(&self, result: InitializeResult) {
        let _ = self.client.inner.server.set(result);
    }

    /// Resolves when the link ends by itself. Cancel-safe; must not be polled
    /// again after it resolved.
    pub(crate) async fn closed(&mut self) -> ReaderExit {
        match self.exit.as_mut() {
            Some(exit) => {
                // No answer: the link task is gone without saying (it
                // panicked).
                let exit = exit.await.unwrap_or_else(|_| {
                    ReaderExit::Lost(TransportError::Protocol("the link task failed".into()))
                });
                self.exit = None;
                exit
            }
            None => std::future::pending().await,
        }
    }

    /// Takes the session out of service at once: from now on every request
    /// fails with `error` (unless the link was already lost), and the writer
    /// starts closing the link. [`Session::shutdown`] then waits for it.
    pub(crate) fn begin_shutdown(&mut self, error: Error) {
        super::listen::stop(&mut self.listening);
        self.client.inner.fail_all(error);
        self.client.inner.stop_link();
    }

    /// Stops the session: fails what is pending with `error`, closes the link
    /// gracefully (the writer runs the transport's close), then waits for
    /// both tasks.
    pub(crate) async fn shutdown(mut self, error: Error) {
        super::listen::stop(&mut self.listening);
        self.client.inner.fail_all(error);
        self.client.inner.stop_link();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Not shut down explicitly (e.g. a connect attempt that timed out):
        // the link task still closes the link.
        super::listen::stop(&mut self.listening);
        self.client.inner.stop_link();
    }
}
