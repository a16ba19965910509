//! The link task: one per session, it reads and writes the link.
//!
//! Reading never waits on writing: a write in progress is polled beside the
//! link's `recv` and the handlers, so what arrives is routed while a write is
//! pending (both stdio pipes full cannot deadlock), and routing itself never
//! awaits (a reply to the server is only `try_send` to the reply queue).
//! When reading ends (the link ended, or a write failed) the session's
//! `closed()` hears of it at once, before the link is closed.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::pending::Queued;
use super::reader::Reader;
use super::session::ReaderExit;
use crate::error::Error;
use crate::jsonrpc::Message;
use crate::transport::{Inbound, LinkRx, LinkTx, TransportError};

/// The link's sending half, taken from the senders' slot for a write (or
/// the close) and put back after it.
fn take_writer(reader: &Reader) -> Option<Box<dyn LinkTx>> {
    reader.inner.writer.lock().tx.take()
}

/// How many messages the writer hands to the link at most in one batch.
const MAX_BATCH: usize = 128;

/// What the writing half drains: replies to the server first, then our
/// messages.
pub(super) struct Outgoing {
    pub(super) requests: mpsc::Receiver<Queued>,
    pub(super) replies: mpsc::Receiver<Queued>,
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

/// What one write hands the link.
enum Batch {
    One(Message),
    Many(Vec<Message>),
}

impl Batch {
    fn as_slice(&self) -> &[Message] {
        match self {
            Batch::One(msg) => std::slice::from_ref(msg),
            Batch::Many(msgs) => msgs,
        }
    }
}

/// Everything the link task owns.
pub(super) struct LinkTask {
    pub(super) reader: Reader,
    pub(super) rx: Box<dyn LinkRx>,
    pub(super) out: Outgoing,
    /// Ends (its sender dropped) when the session stops: stop writing,
    /// close the link.
    pub(super) stop: oneshot::Receiver<()>,
    pub(super) grace: Duration,
    /// How reading ended, for `Session::closed`.
    pub(super) exit: oneshot::Sender<ReaderExit>,
}

type Received = (Box<dyn LinkRx>, Result<Option<Inbound>, TransportError>);

/// The reading half's state, while it reads.
struct Reading {
    reader: Reader,
    /// The link's `recv` in progress: it owns the receiving half and hands
    /// it back with what it got. Kept across wakeups of the task (a write,
    /// a handler), so `recv` is called once per message, not once per
    /// wakeup. `None` once reading ended.
    rx: Option<Pin<Box<dyn Future<Output = Received> + Send>>>,
    exit: Option<oneshot::Sender<ReaderExit>>,
}

fn receive(mut rx: Box<dyn LinkRx>) -> Pin<Box<dyn Future<Output = Received> + Send>> {
    Box::pin(async move {
        let got = rx.recv().await;
        (rx, got)
    })
}

enum Read {
    Handler(Result<(tokio::task::Id, ()), tokio::task::JoinError>),
    Inbound(Result<Option<Inbound>, TransportError>),
}

/// Takes the sending half out of the senders' slot when the link task ends
/// or is dropped (a runtime shutting down, a panic), so it never outlives
/// the task: no sender writes into a link nobody reads, and the half's own
/// `Drop` (HTTP: cancel the exchanges) runs with the task, not with the
/// last `Client`. (On `Reading`, which the task holds to its end, so that
/// an idle task's state grows by nothing.)
impl Drop for Reading {
    fn drop(&mut self) {
        // Dropped after the lock is released (its own `Drop` may take time).
        drop(take_writer(&self.reader));
    }
}

impl Reading {
    /// The next thing to read: a handler that finished or what the link
    /// brings. Pending forever once reading ended. Cancel-safe.
    async fn next(&mut self) -> Read {
        let Some(rx) = self.rx.as_mut() else {
            return std::future::pending().await;
        };
        let running = &mut self.reader.running;
        tokio::select! {
            biased;
            Some(done) = running.join_next_with_id(), if !running.is_empty() => Read::Handler(done),
            (link, got) = rx.as_mut() => {
                *rx = receive(link);
                Read::Inbound(got)
            }
        }
    }

    fn handle(&mut self, read: Read) {
        match read {
            Read::Handler(done) => self.reader.reap(done),
            Read::Inbound(got) => {
                if let Some(reason) = self.reader.on_recv(got) {
                    self.end(Some(reason));
                }
            }
        }
    }

    /// Stops reading (once) and tells the session how the link ended.
    fn end(&mut self, lost: Option<TransportError>) {
        if self.rx.take().is_none() {
            return;
        }
        let exit = self.reader.finish(lost);
        if let Some(tx) = self.exit.take() {
            let _ = tx.send(exit);
        }
    }
}

impl LinkTask {
    pub(super) async fn run(self) {
        let LinkTask {
            reader,
            rx,
            mut out,
            mut stop,
            grace,
            exit,
        } = self;
        let mut reading = Reading {
            reader,
            rx: Some(receive(rx)),
            exit: Some(exit),
        };
        'run: loop {
            // Not biased: a server that never stops sending must not starve
            // our writes, nor our writes its reading.
            let first = tokio::select! {
                _ = &mut stop => break 'run,
                read = reading.next() => {
                    reading.handle(read);
                    continue 'run;
                }
                msg = out.recv() => match msg {
                    Some(msg) => msg,
                    None => break 'run,
                },
            };
            // A lone message (the common case: one caller at a time) is
            // written as it is; a batch is made only when more wait, and
            // dropped after the write: an idle session holds no buffer.
            let batch = match out.try_recv() {
                None => Batch::One(first),
                Some(second) => {
                    let mut batch = vec![first, second];
                    while batch.len() < MAX_BATCH {
                        match out.try_recv() {
                            Some(msg) => batch.push(msg),
                            None => break,
                        }
                    }
                    Batch::Many(batch)
                }
            };
            // Senders write directly only while the half is in its slot and
            // nothing is unwritten: this batch counts as unwritten until it
            // is put back, so nothing overtakes it.
            let Some(mut tx) = take_writer(&reading.reader) else {
                break 'run;
            };
            let sent = {
                let write = tx.send_batch(batch.as_slice());
                tokio::pin!(write);
                loop {
                    // The write first, so that a flood of incoming messages
                    // cannot keep it from finishing; reading goes on while
                    // it is pending.
                    tokio::select! {
                        biased;
                        // A write in progress is abandoned, as the link is
                        // closed next anyway.
                        _ = &mut stop => break None,
                        sent = &mut write => break Some(sent),
                        read = reading.next() => reading.handle(read),
                    }
                }
            };
            {
                let mut w = reading.reader.inner.writer.lock();
                w.unwritten = w.unwritten.saturating_sub(batch.as_slice().len());
                w.tx = Some(tx);
                if sent.is_none() {
                    // Stopped mid-write: no sender writes after what may
                    // be a half-written line; the close comes next.
                    w.closing = true;
                }
            }
            let Some(sent) = sent else {
                break 'run;
            };
            if let Err(e) = sent {
                let inner = &reading.reader.inner;
                tracing::debug!(connection = %inner.name, error = %e, "write failed; the link is lost");
                inner.fail_all(Error::ConnectionLost {
                    connection: inner.name.clone(),
                    reason: e,
                });
                // The session hears of the loss now, not after the close.
                reading.end(None);
                break 'run;
            }
        }
        drop(out);
        // Close the link, still reading what comes meanwhile (a process
        // that flushes its output before it exits). Taken for good: senders
        // now queue, and the closed queue fails them.
        let Some(mut tx) = take_writer(&reading.reader) else {
            reading.end(None);
            return;
        };
        let closed = {
            let close = tx.close(grace);
            tokio::pin!(close);
            loop {
                tokio::select! {
                    biased;
                    closed = &mut close => break closed,
                    read = reading.next() => reading.handle(read),
                }
            }
        };
        if let Err(e) = closed {
            tracing::debug!(connection = %reading.reader.inner.name, error = %e, "closing the link failed");
        }
        reading.end(None);
    }
}
