//! [`Session`]: one link's engine, its writer task, and how it stops.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::client::Client;
use super::pending::{ClientInner, Pending, Queued};
use super::reader::Reader;
use crate::error::Error;
use crate::handler::ClientHandlers;
use crate::jsonrpc::Message;
use crate::metrics::Counters;
use crate::notification::Notifier;
use crate::protocol::*;
use crate::transport::{Link, LinkTx, TransportError};

/// How many messages the writer hands to the link at most in one batch.
const MAX_BATCH: usize = 128;

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

/// One link's engine: the client handle plus the tasks that drive the link.
/// Dropping it stops the tasks (the writer closes the link gracefully first).
pub(crate) struct Session {
    pub(crate) client: Client,
    reader: Option<JoinHandle<ReaderExit>>,
    writer: Option<JoinHandle<()>>,
    stop_writer: CancellationToken,
    stop_reader: CancellationToken,
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
            out: out_tx,
            replies: replies_tx,
            pending: Mutex::new(Pending::default()),
            next_id: AtomicI64::new(0),
            request_timeout: config.request_timeout,
            server: OnceLock::new(),
            notifications: config.notifications.clone(),
            counters: config.counters.clone(),
            on_link_lost: config.on_link_lost.clone(),
            stateless: OnceLock::new(),
            handlers: config.handlers.clone(),
            tool_hints: config.tool_hints.clone(),
        });
        let stop_writer = CancellationToken::new();
        let stop_reader = CancellationToken::new();
        let span = tracing::Span::current();
        let writer = tokio::spawn(
            write_loop(
                link.tx,
                Outgoing {
                    requests: out_rx,
                    replies: replies_rx,
                },
                inner.clone(),
                stop_writer.clone(),
                stop_reader.clone(),
                config.close_grace,
            )
            .instrument(span.clone()),
        );
        let reader = tokio::spawn(
            Reader {
                inner: inner.clone(),
                handlers: config.handlers.clone(),
                max_server_requests: config.max_server_requests.max(1),
                running: JoinSet::new(),
                backlog: VecDeque::new(),
                by_request: HashMap::new(),
                by_task: HashMap::new(),
            }
            .run(link.rx, stop_reader.clone())
            .instrument(span),
        );
        Session {
            client: Client { inner },
            reader: Some(reader),
            writer: Some(writer),
            stop_writer,
            stop_reader,
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
        match self.reader.as_mut() {
            Some(handle) => {
                let exit = match handle.await {
                    Ok(exit) => exit,
                    Err(e) => ReaderExit::Lost(TransportError::Protocol(format!(
                        "reader task failed: {e}"
                    ))),
                };
                self.reader = None;
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
        self.stop_writer.cancel();
    }

    /// Stops the session: fails what is pending with `error`, closes the link
    /// gracefully (the writer runs the transport's close), then waits for
    /// both tasks.
    pub(crate) async fn shutdown(mut self, error: Error) {
        super::listen::stop(&mut self.listening);
        self.client.inner.fail_all(error);
        self.stop_writer.cancel();
        if let Some(writer) = self.writer.take() {
            let _ = writer.await;
        }
        self.stop_reader.cancel();
        if let Some(reader) = self.reader.take() {
            let _ = reader.await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Not shut down explicitly (e.g. a connect attempt that timed out):
        // the writer still closes the link, then stops the reader.
        super::listen::stop(&mut self.listening);
        self.stop_writer.cancel();
    }
}

/// What the writer drains: replies to the server first, then our messages.
struct Outgoing {
    requests: mpsc::Receiver<Queued>,
    replies: mpsc::Receiver<Queued>,
}

impl Outgoing {
    async fn recv(&mut self) -> Option<Message> {
        let msg = tokio::select! {
            biased;
            Some(msg) = self.replies.recv() => Some(msg),
            msg = self.requests.recv() => msg,
        };
        msg.map(|m| *m)
    }

    fn try_recv(&mut self) -> Option<Message> {
        self.replies
            .try_recv()
            .or_else(|_| self.requests.try_recv())
            .ok()
            .map(|m| *m)
    }
}

async fn write_loop(
    mut tx: Box<dyn LinkTx>,
    mut out: Outgoing,
    inner: Arc<ClientInner>,
    stop: CancellationToken,
    stop_reader: CancellationToken,
    grace: Duration,
) {
    // Grown when more than one message waits, and dropped after each write:
    // an idle session holds no buffer.
    let mut batch: Vec<Message> = Vec::new();
    loop {
        let first = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            msg = out.recv() => match msg {
                Some(msg) => msg,
                None => break,
            },
        };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match out.try_recv() {
                Some(msg) => batch.push(msg),
                None => break,
            }
        }
        let sent = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            sent = tx.send_batch(&batch) => sent,
        };
        batch = Vec::new();
        if let Err(e) = sent {
            tracing::debug!(connection = %inner.name, error = %e, "write failed; the link is lost");
            inner.fail_all(Error::ConnectionLost {
                connection: inner.name.clone(),
                reason: e,
            });
            stop_reader.cancel();
            break;
        }
    }
    drop(out);
    if let Err(e) = tx.close(grace).await {
        tracing::debug!(connection = %inner.name, error = %e, "closing the link failed");
    }
    stop_reader.cancel();
}
