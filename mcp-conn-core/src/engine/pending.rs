//! The pending-request table: one slot per request in flight, answered
//! once by the reader, or failed all at once when the session ends.

use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot, Notify};

use super::options::ProgressCallback;
use super::session::LinkLostHook;
use crate::error::Error;
use crate::jsonrpc::{JsonRpcError, Message, RequestId};
use crate::metrics::Counters;
use crate::notification::Notifier;
use crate::protocol::*;
use crate::transport::TransportError;

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

pub(super) struct ClientInner {
    pub(super) name: Arc<str>,
    pub(super) out: mpsc::Sender<Queued>,
    /// Replies to server requests: a queue of their own, drained first, so
    /// that neither the reader nor the server waits behind our requests.
    pub(super) replies: mpsc::Sender<Queued>,
    pub(super) pending: Mutex<Pending>,
    pub(super) next_id: AtomicI64,
    pub(super) request_timeout: Duration,
    pub(super) server: OnceLock<InitializeResult>,
    pub(super) notifications: Arc<Notifier>,
    pub(super) counters: Arc<Counters>,
    pub(super) on_link_lost: Option<LinkLostHook>,
    /// Set when the session speaks the stateless era: what every request's
    /// `_meta` carries.
    pub(super) stateless: OnceLock<super::stateless::StatelessMeta>,
    /// Answer the input requests of `input_required` results.
    pub(super) handlers: crate::handler::ClientHandlers,
    /// The tools' replay hints, shared by the connection's sessions.
    pub(super) tool_hints: Arc<super::ToolHints>,
}

impl ClientInner {
    pub(super) fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock()
    }

    /// Ends the session for callers: sets the terminal error (first one wins)
    /// and fails every pending request with it.
    pub(super) fn fail_all(&self, error: Error) {
        let (drained, error, newly_lost) = {
            let mut p = self.pending();
            let newly_lost = p.terminal.is_none() && matches!(error, Error::ConnectionLost { .. });
            let error = p.terminal.get_or_insert(error).clone();
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
        if self.out.try_send(Box::new(note)).is_err() {
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
