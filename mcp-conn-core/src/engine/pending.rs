//! The pending-request table: one slot per request in flight, answered
//! once by the reader, or failed all at once when the session ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Waker};
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot, Notify};

use super::options::ProgressCallback;
use super::session::LinkLostHook;
use crate::error::Error;
use crate::jsonrpc::{JsonRpcError, Message, RequestId, ResponsePayload};
use crate::metrics::Counters;
use crate::notification::Notifier;
use crate::protocol::*;
use crate::transport::{DirectExchange, LinkTx, TransportError};

/// A message waiting for the writer. Boxed: a tokio channel allocates its
/// slots 32 at a time, up front, so a slot of 8 bytes instead of a
/// `Message` (104) keeps the two queues of an idle session at ~0.6 KB
/// instead of ~7 KB.
pub(super) type Queued = Box<Message>;

/// What the reader hands a waiting caller.
pub(super) enum Reply {
    Result(Box<RawValue>),
    Rpc(JsonRpcError),
    Failed(Error),
    /// The transport failed this request alone (see [`Inbound::Failed`]).
    Transport(TransportError),
}

impl From<ResponsePayload> for Reply {
    fn from(payload: ResponsePayload) -> Self {
        match payload {
            ResponsePayload::Result(raw) => Reply::Result(raw),
            ResponsePayload::Error(e) => Reply::Rpc(e),
        }
    }
}

pub(super) struct Slot {
    pub(super) reply: oneshot::Sender<Reply>,
    pub(super) progress: Option<Arc<ProgressState>>,
}

pub(super) struct ProgressState {
    pub(super) callback: ProgressCallback,
    pub(super) seen: Notify,
}

#[derive(Default)]
pub(super) struct Pending {
    pub(super) map: HashMap<RequestId, Slot>,
    /// Set once, when the session ends: every later request fails with it.
    pub(super) terminal: Option<Error>,
}

/// The link's sending half while the link task does not use it, and how
/// many queued messages are not written yet. Senders write directly
/// ([`LinkTx::try_send_now`]) only when the half is here and nothing is
/// unwritten, so a message never overtakes one queued before it.
pub(super) struct WriterSlot {
    pub(super) tx: Option<Box<dyn LinkTx>>,
    pub(super) unwritten: usize,
    /// The link task stopped in the middle of a write: no more direct
    /// writes (the close comes next).
    pub(super) closing: bool,
    /// The session stopped: the link task stops writing and closes the
    /// link ([`ClientInner::stop_link`]).
    pub(super) stop: bool,
    /// The link task's waker, for the stop. Here, beside what the task
    /// looks at on every wake-up anyway, rather than in a channel of its
    /// own: a stop channel's state is one more cold line per wake-up.
    pub(super) task: Option<Waker>,
}

impl WriterSlot {
    /// A slot for the link's sending half.
    pub(super) fn new(tx: Box<dyn LinkTx>) -> Self {
        WriterSlot {
            tx: Some(tx),
            unwritten: 0,
            closing: false,
            stop: false,
            task: None,
        }
    }

    /// Whether the session stopped; if not, the stop will wake `cx`.
    pub(super) fn stopped(&mut self, cx: &Context<'_>) -> bool {
        if self.stop {
            return true;
        }
        if !self.task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.task = Some(cx.waker().clone());
        }
        false
    }

    /// The sending half, if a sender may use it now: it is here, nothing
    /// queued is unwritten, and the link is not closing.
    fn free(&mut self) -> Option<&mut Box<dyn LinkTx>> {
        if self.unwritten == 0 && !self.closing {
            self.tx.as_mut()
        } else {
            None
        }
    }
}

/// Which queue a message that cannot be written at once waits in.
#[derive(Clone, Copy)]
pub(super) enum Queue {
    /// Our requests and notifications.
    Out,
    /// Replies to the server's requests (drained first).
    Replies,
}

/// Counts a message as unwritten until it is queued; uncounts it if it
/// never is (the queue closed, or the sender stopped waiting for room).
struct Unwritten<'a> {
    inner: &'a ClientInner,
    armed: bool,
}

impl Unwritten<'_> {
    /// The queueing's outcome: a queued message stays counted (the link
    /// task uncounts it once written); one that was not is uncounted now.
    fn settle(mut self, queued: bool) -> Result<(), ()> {
        self.armed = !queued;
        if queued {
            Ok(())
        } else {
            Err(())
        }
    }
}

impl Drop for Unwritten<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.writer.lock().unwritten -= 1;
        }
    }
}

/// What a session's callers, its link task and its prober share.
///
/// `repr(C)`, so that the fields come in the order written: what a light
/// health probe touches (`probe.rs`) comes first and together, on about
/// three cache lines (as the allocation's start falls). A pool probing 10,000 servers a second finds each session's
/// state cold, and each line fetched costs about as much as the probe's
/// instructions.
#[repr(C)]
pub(super) struct ClientInner {
    /// The light health probe in flight (`probe.rs`).
    pub(super) probe: Mutex<super::probe::ProbeSlot>,
    /// The link's sending half (see [`WriterSlot`]).
    pub(super) writer: Mutex<WriterSlot>,
    pub(super) next_id: AtomicI64,
    /// Set once `pending.terminal` is (it never goes back): whether the
    /// session is open, read without the lock.
    pub(super) ended: AtomicBool,
    /// Set when the session speaks the stateless era: what every request's
    /// `_meta` carries.
    pub(super) stateless: OnceLock<super::stateless::StatelessMeta>,
    pub(super) pending: Mutex<Pending>,
    pub(super) name: Arc<str>,
    pub(super) out: mpsc::Sender<Queued>,
    /// Replies to server requests: a queue of their own, drained first, so
    /// that neither the reader nor the server waits behind our requests.
    pub(super) replies: mpsc::Sender<Queued>,
    pub(super) request_timeout: Duration,
    pub(super) server: OnceLock<InitializeResult>,
    pub(super) notifications: Arc<Notifier>,
    pub(super) counters: Arc<Counters>,
    pub(super) on_link_lost: Option<LinkLostHook>,
    /// Answer the input requests of `input_required` results.
    pub(super) handlers: crate::handler::ClientHandlers,
    /// The tools' replay hints, shared by the connection's sessions.
    pub(super) tool_hints: Arc<super::ToolHints>,
}

impl ClientInner {
    pub(super) fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock()
    }

    /// Writes `msg` at once when `direct` and the link can take it now;
    /// otherwise counts it as unwritten (the caller queues it). `Err` gives
    /// the message back to queue.
    fn send_now(&self, msg: Message, direct: bool) -> Result<(), Message> {
        let mut w = self.writer.lock();
        if let Some(tx) = w.free().filter(|_| direct) {
            if tx.try_send_now(&msg) {
                return Ok(());
            }
        }
        w.unwritten += 1;
        Err(msg)
    }

    fn queue(&self, queue: Queue) -> &mpsc::Sender<Queued> {
        match queue {
            Queue::Out => &self.out,
            Queue::Replies => &self.replies,
        }
    }

    /// Sends `msg`: written at once if `direct` allows and the link can,
    /// else queued for the link task, waiting for room. `Err` when the
    /// queue is closed (the session ended).
    pub(super) async fn send(&self, queue: Queue, msg: Message, direct: bool) -> Result<(), ()> {
        let Err(msg) = self.send_now(msg, direct) else {
            return Ok(());
        };
        self.enqueue(queue, msg).await
    }

    /// Sends request `msg` as [`ClientInner::send`] does (`alone`: no
    /// other request waits for an answer), but first offers the link to
    /// run its exchange in the caller's task
    /// ([`LinkTx::try_exchange_now`]), under the same rule that nothing
    /// overtakes a queued message.
    pub(super) async fn send_request(
        &self,
        msg: Message,
        alone: bool,
    ) -> Result<Option<DirectExchange>, ()> {
        let msg = {
            let mut w = self.writer.lock();
            if let Some(tx) = w.free() {
                if let Some(exchange) = tx.try_exchange_now(&msg) {
                    return Ok(Some(exchange));
                }
                if alone && tx.try_send_now(&msg) {
                    return Ok(None);
                }
            }
            w.unwritten += 1;
            msg
        };
        self.enqueue(Queue::Out, msg).await.map(|()| None)
    }

    /// Queues `msg`, already counted as unwritten, waiting for room.
    async fn enqueue(&self, queue: Queue, msg: Message) -> Result<(), ()> {
        let counted = Unwritten {
            inner: self,
            armed: true,
        };
        let queued = self.queue(queue).send(Box::new(msg)).await.is_ok();
        counted.settle(queued)
    }

    /// [`ClientInner::send`] without waiting: `Err` when the queue is full
    /// or closed.
    pub(super) fn try_send(&self, queue: Queue, msg: Message) -> Result<(), ()> {
        let Err(msg) = self.send_now(msg, true) else {
            return Ok(());
        };
        let counted = Unwritten {
            inner: self,
            armed: true,
        };
        let queued = self.queue(queue).try_send(Box::new(msg)).is_ok();
        counted.settle(queued)
    }

    /// Ends the session for callers: sets the terminal error (first one wins)
    /// and fails every pending request with it.
    pub(super) fn fail_all(&self, error: Error) {
        let (drained, error, newly_lost) = {
            let mut p = self.pending();
            let newly_lost = p.terminal.is_none() && matches!(error, Error::ConnectionLost { .. });
            let error = p.terminal.get_or_insert(error).clone();
            self.ended.store(true, Ordering::Release);
            let drained: Vec<Slot> = p.map.drain().map(|(_, slot)| slot).collect();
            (drained, error, newly_lost)
        };
        if newly_lost {
            if let Some(hook) = &self.on_link_lost {
                hook(&error);
            }
        }
        for slot in drained {
            let _ = slot.reply.send(Reply::Failed(error.clone()));
        }
    }

    /// Tells the link task to stop writing and close the link. Again does
    /// nothing.
    pub(super) fn stop_link(&self) {
        let task = {
            let mut w = self.writer.lock();
            w.stop = true;
            w.task.take()
        };
        if let Some(task) = task {
            task.wake();
        }
    }

    pub(super) fn terminal(&self) -> Option<Error> {
        self.pending().terminal.clone()
    }

    pub(super) fn closed_error(&self) -> Error {
        self.terminal().unwrap_or_else(|| Error::Closed {
            connection: self.name.clone(),
        })
    }

    /// Queues `notifications/cancelled` without waiting (used from `Drop`).
    pub(super) fn send_cancel(&self, id: &RequestId, reason: &str) {
        let note = Message::notification(
            "notifications/cancelled",
            Some(json!({"requestId": id, "reason": reason})),
        );
        if self.try_send(Queue::Out, note).is_err() {
            tracing::debug!(connection = %self.name, %id, "could not queue notifications/cancelled");
        }
    }
}

/// Removes a request's slot when its caller stops waiting (timeout or drop)
/// and tells the server, unless the answer already came.
pub(super) struct PendingGuard<'a> {
    pub(super) inner: &'a ClientInner,
    pub(super) id: RequestId,
    pub(super) cancellable: bool,
    pub(super) armed: bool,
}

impl PendingGuard<'_> {
    pub(super) fn abandon(&mut self, reason: &str) {
        if !self.armed {
            return;
        }
        self.armed = false;
        let was_pending = self.inner.pending().map.remove(&self.id).is_some();
        if was_pending && self.cancellable {
            self.inner.send_cancel(&self.id, reason);
        }
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.abandon("the caller stopped waiting");
    }
}
