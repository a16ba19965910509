//! Light health probes: a `ping` with no pending slot, no oneshot, no timer
//! and no waking of whoever sent it.
//!
//! A pool probing 10,000 servers a second cannot afford the machinery of a
//! request per probe (a pending-table entry, a reply channel, a timer, a
//! wake-up of the prober per answer). A light probe is written like any
//! message (directly when the link is idle); the reader notes its answer
//! in the session's one probe slot and wakes at most the prober's `Notify`
//! (many answers, one wake-up); the prober looks at its probes' slots when
//! it wakes, and judges a probe unanswered by its deadline as failed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::client::Client;
use super::pending::Queue;
use crate::jsonrpc::{codes, JsonRpcError, Message, Request, ResponsePayload};
use crate::transport::TransportError;

/// Why a light probe's answer says the server is not well: what a request
/// probe would have failed with.
#[derive(Debug)]
pub(crate) enum ProbeFailure {
    /// The server answered with this error.
    Rpc(JsonRpcError),
    /// The transport failed the ping alone (e.g. an HTTP 503).
    Transport(TransportError),
}

/// The session's one light probe: what was sent, and what came back.
#[derive(Debug, Default)]
pub(super) struct ProbeSlot {
    /// The id of the probe in flight, if any.
    id: Option<i64>,
    /// When its answer came, and whether it says the server is alive.
    answer: Option<(Instant, Result<(), Box<ProbeFailure>>)>,
    /// Told (`notify_one`, so many answers make one wake-up) when the
    /// answer comes, if the prober asked.
    wake: Option<Arc<Notify>>,
}

/// What a light probe came to.
#[derive(Debug)]
pub(crate) enum ProbeAnswer {
    /// Answered: the server is alive; how long it took.
    Alive(Duration),
    /// Answered with an error other than "method not found", or failed by
    /// the transport.
    Failed(Box<ProbeFailure>),
    /// No answer yet.
    Waiting,
    /// Not this session's probe any more (another probe replaced it).
    Gone,
}

impl Client {
    /// Sends a light `ping` (see the module doc). `None` when this session
    /// cannot take one: the stateless era (no `ping`), a session that
    /// ended, a full queue. The caller then probes the usual way.
    pub(crate) fn send_light_probe(&self, wake: Option<Arc<Notify>>) -> Option<i64> {
        if self.is_stateless() || !self.is_open() {
            return None;
        }
        let inner = &*self.inner;
        let id = inner
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *inner.probe.lock() = ProbeSlot {
            id: Some(id),
            answer: None,
            wake,
        };
        let ping = Message::Request(Request::new(id, "ping", None));
        match inner.try_send(Queue::Out, ping) {
            Ok(()) => Some(id),
            Err(()) => {
                inner.probe.lock().id = None;
                None
            }
        }
    }

    /// How the light probe `id`, sent at `sent`, stands. Once it is
    /// answered, the slot is cleared.
    pub(crate) fn light_probe_answer(&self, id: i64, sent: Instant) -> ProbeAnswer {
        let mut slot = self.inner.probe.lock();
        if slot.id != Some(id) {
            return ProbeAnswer::Gone;
        }
        match slot.answer.take() {
            None => ProbeAnswer::Waiting,
            Some((at, outcome)) => {
                *slot = ProbeSlot::default();
                match outcome {
                    Ok(()) => ProbeAnswer::Alive(at.saturating_duration_since(sent)),
                    Err(failure) => ProbeAnswer::Failed(failure),
                }
            }
        }
    }

    /// Why the session ended (or `Closed`).
    pub(crate) fn end_error(&self) -> crate::error::Error {
        self.inner.closed_error()
    }

    /// Forgets the light probe `id` (its deadline passed): a late answer is
    /// then dropped like any unknown one.
    pub(crate) fn forget_light_probe(&self, id: i64) {
        let mut slot = self.inner.probe.lock();
        if slot.id == Some(id) {
            *slot = ProbeSlot::default();
        }
    }
}

impl super::pending::ClientInner {
    /// Notes the answer to the light probe `id`, if it is the one in flight
    /// (`true`: the message is taken).
    pub(super) fn answer_light_probe(&self, id: i64, payload: &ResponsePayload) -> bool {
        self.settle_light_probe(id, || match payload {
            ResponsePayload::Result(_) => Ok(()),
            // A server without `ping` answered: it is alive.
            ResponsePayload::Error(e) if e.code == codes::METHOD_NOT_FOUND => Ok(()),
            ResponsePayload::Error(e) => Err(ProbeFailure::Rpc(e.clone())),
        })
    }

    /// Notes that the transport failed the light probe `id`, if it is the
    /// one in flight (`true`: taken).
    pub(super) fn fail_light_probe(&self, id: i64, error: &TransportError) -> bool {
        self.settle_light_probe(id, || Err(ProbeFailure::Transport(error.clone())))
    }

    fn settle_light_probe(
        &self,
        id: i64,
        outcome: impl FnOnce() -> Result<(), ProbeFailure>,
    ) -> bool {
        let mut slot = self.probe.lock();
        if slot.id != Some(id) || slot.answer.is_some() {
            return false;
        }
        slot.answer = Some((Instant::now(), outcome().map_err(Box::new)));
        if let Some(wake) = &slot.wake {
            wake.notify_one();
        }
        true
    }
}
