//! The link task: one per session, it reads and writes the link.
//!
//! Reading never waits on writing: a write in progress is polled beside the
//! link's `recv` and the handlers, so what arrives is routed while a write is
//! pending (both stdio pipes full cannot deadlock), and routing itself never
//! awaits (a reply to the server is only `try_send` to the reply queue).
//! When reading ends (the link ended, or a write failed) the session's
//! `closed()` hears of it at once, before the link is closed.

use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::ReusableBoxFuture;

use super::pending::{ClientInner, Queued};
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

/// Resolves once the session stopped ([`ClientInner::stop_link`]).
async fn stopped(inner: &ClientInner) {
    std::future::poll_fn(|cx| {
        if inner.writer.lock().stopped(cx) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

/// How many messages the writer hands to the link at most in one batch.
const MAX_BATCH: usize = 128;

/// What the writing half drains: replies to the server first, then our
/// messages.
pub(super) struct Outgoing {
    pub(super) requests: mpsc::Receiver<Queued>,
    pub(super) replies: mpsc::Receiver<Queued>,
    /// Both queues were last polled to `Pending` (their wakers are set)
    /// and have not given a message since.
    pub(super) armed: bool,
}

impl Outgoing {
    /// The next message to write, replies first; `None` once both queues
    /// are closed and drained.
    ///
    /// Not polled while armed and nothing is unwritten (as the caller read
    /// it from the senders' slot): every message is counted unwritten
    /// (`WriterSlot`) before it is queued, and its
    /// queueing wakes the waker the queues already hold, so the queues are
    /// then empty and need no look (two channel polls per turn, the most
    /// of an idle link task's wake-up for an answer). The queues' senders
    /// live in the `ClientInner` this task's reader holds, so they cannot
    /// close unseen meanwhile. (The waker the queues hold is the link
    /// task's own, the same at every poll: this runs in that spawned task.)
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        nothing_unwritten: bool,
    ) -> Poll<Option<Message>> {
        if self.armed && nothing_unwritten {
            return Poll::Pending;
        }
        // `None` from the reply queue alone (its senders gone) is not the
        // end: requests may still come.
        if let Poll::Ready(Some(msg)) = self.replies.poll_recv(cx) {
            self.armed = false;
            return Poll::Ready(Some(*msg));
        }
        let got = self.requests.poll_recv(cx).map(|msg| msg.map(|m| *m));
        // A channel out of the task's cooperative budget answers `Pending`
        // without keeping the waker: only armed when budget is left (it is
        // spent on `Ready` only).
        self.armed = got.is_pending() && tokio::task::coop::has_budget_remaining();
        got
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
    /// wakeup; the next `recv` reuses its allocation. `None` once reading
    /// ended.
    rx: Option<ReusableBoxFuture<'static, Received>>,
    exit: Option<oneshot::Sender<ReaderExit>>,
}

async fn receive(mut rx: Box<dyn LinkRx>) -> Received {
    let got = rx.recv().await;
    (rx, got)
}

/// What the idle link task waits for, routing what it reads meanwhile.
enum Turn {
    /// A message to write.
    Write(Message),
    /// The session stopped, or nothing more will be written.
    Stop,
}

/// How many messages the link task routes in one turn before it looks at
/// its other work (and yields if there is none), so that a server that
/// never stops sending starves neither our writes nor the runtime.
const READS_PER_TURN: usize = 32;

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
        // The task's waker goes too: nothing wakes a task that ended.
        let (tx, task) = {
            let mut w = self.reader.inner.writer.lock();
            (w.tx.take(), w.task.take())
        };
        drop((tx, task));
    }
}

impl Reading {
    /// The next thing to read: a handler that finished or what the link
    /// brings. Pending forever once reading ended.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Read> {
        let Some(rx) = self.rx.as_mut() else {
            return Poll::Pending;
        };
        let running = &mut self.reader.running;
        if !running.is_empty() {
            if let Poll::Ready(Some(done)) = running.poll_join_next_with_id(cx) {
                return Poll::Ready(Read::Handler(done));
            }
        }
        rx.poll(cx).map(|(link, got)| {
            rx.set(receive(link));
            Read::Inbound(got)
        })
    }

    /// [`Reading::poll_next`] as a future. Cancel-safe.
    async fn next(&mut self) -> Read {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Routes what has been read until the next message to write (or the
    /// stop). Each message read is routed in the same turn as its wake-up,
    /// and the stop and the queues are looked at once per turn, not once
    /// per message.
    fn poll_turn(&mut self, cx: &mut Context<'_>, out: &mut Outgoing) -> Poll<Turn> {
        let mut more = true;
        for _ in 0..READS_PER_TURN {
            match self.poll_next(cx) {
                Poll::Ready(read) => self.handle(read),
                Poll::Pending => {
                    more = false;
                    break;
                }
            }
        }
        // The stop and what is unwritten, under one look at the slot.
        let nothing_unwritten = {
            let mut w = self.reader.inner.writer.lock();
            if w.stopped(cx) {
                return Poll::Ready(Turn::Stop);
            }
            w.unwritten == 0
        };
        if let Poll::Ready(msg) = out.poll_recv(cx, nothing_unwritten) {
            return Poll::Ready(msg.map_or(Turn::Stop, Turn::Write));
        }
        if more {
            // More may be ready to read: come back once others have run.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
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
            grace,
            exit,
        } = self;
        // The stop is looked at while `reading` is borrowed by its read.
        let inner = reader.inner.clone();
        let mut reading = Reading {
            reader,
            rx: Some(ReusableBoxFuture::new(receive(rx))),
            exit: Some(exit),
        };
        'run: loop {
            // A server that never stops sending does not starve our writes
            // (`READS_PER_TURN`), nor our writes its reading (the write
            // loop below reads too).
            let turn = std::future::poll_fn(|cx| reading.poll_turn(cx, &mut out));
            let first = match turn.await {
                Turn::Write(msg) => msg,
                Turn::Stop => break 'run,
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
                        () = stopped(&inner) => break None,
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
