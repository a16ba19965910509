//! The reading half of the link task: routes what the server sends, and
//! never waits for the writing half.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::Value;
use tokio::task::{AbortHandle, JoinSet};

use super::options::Progress;
use super::pending::{ClientInner, Queue, Reply};
use super::session::ReaderExit;
use crate::error::Error;
use crate::handler::ClientHandlers;
use crate::jsonrpc::{
    JsonRpcError, Message, Notification, Request, RequestId, Response, ResponsePayload,
};
use crate::metrics::Counters;
use crate::transport::{Inbound, TransportError};

/// Server requests over `max_concurrent_server_requests` wait here for a
/// free handler slot; past this many, they are answered with an error.
const SERVER_REQUEST_BACKLOG: usize = 256;

pub(super) struct Reader {
    pub(super) inner: Arc<ClientInner>,
    pub(super) handlers: ClientHandlers,
    pub(super) max_server_requests: usize,
    pub(super) running: JoinSet<()>,
    /// Server requests waiting for a free handler slot (bounded).
    pub(super) backlog: VecDeque<Request>,
    pub(super) by_request: HashMap<RequestId, AbortHandle>,
    pub(super) by_task: HashMap<tokio::task::Id, RequestId>,
}

impl Reader {
    /// Handles what `LinkRx::recv` gave; `Some(reason)` when the link ended.
    pub(super) fn on_recv(
        &mut self,
        got: Result<Option<Inbound>, TransportError>,
    ) -> Option<TransportError> {
        match got {
            Ok(Some(Inbound::Message(msg))) => self.route(msg),
            Ok(Some(Inbound::Failed { id, error })) => self.on_failed(id, error),
            Ok(None) => return Some(TransportError::Eof),
            Err(e) => return Some(e),
        }
        None
    }

    /// Stops reading: aborts the handlers, fails what is pending (with
    /// `ConnectionLost` when the link ended by itself, `Closed` when it was
    /// stopped) and says how the link ended.
    pub(super) fn finish(&mut self, lost: Option<TransportError>) -> ReaderExit {
        self.running.abort_all();
        self.backlog.clear();
        let name = self.inner.name.clone();
        match lost {
            Some(reason) => {
                tracing::debug!(connection = %name, %reason, "link ended");
                self.inner.fail_all(Error::ConnectionLost {
                    connection: name,
                    reason,
                });
            }
            None => self.inner.fail_all(Error::Closed { connection: name }),
        }
        match self.inner.terminal() {
            Some(Error::ConnectionLost { reason, .. }) => ReaderExit::Lost(reason),
            _ => ReaderExit::Stopped,
        }
    }

    fn route(&mut self, msg: Message) {
        match msg {
            Message::Response(resp) => self.on_response(resp),
            Message::Request(req) => self.on_request(req),
            Message::Notification(n) => self.on_notification(n),
        }
    }

    /// The transport failed one request: only its caller hears of it.
    fn on_failed(&mut self, id: RequestId, error: TransportError) {
        tracing::warn!(connection = %self.inner.name, %id, %error, "the transport failed a request");
        if let RequestId::Int(n) = id {
            if self.inner.fail_light_probe(n, &error) {
                return;
            }
        }
        if let Some(slot) = self.inner.pending().map.remove(&id) {
            let _ = slot.reply.send(Reply::Transport(error));
        }
    }

    /// Queues a reply to the server without waiting: the reader must keep
    /// routing responses whatever the writer is doing.
    fn reply_now(&self, reply: Message) {
        if self.inner.try_send(Queue::Replies, reply).is_err() {
            tracing::warn!(connection = %self.inner.name, "reply queue full: dropped a reply to the server");
        }
    }

    fn on_response(&mut self, resp: Response) {
        let Some(id) = resp.id else {
            // An error without an id fails nothing pending.
            Counters::bump(&self.inner.counters.invalid_messages);
            if let ResponsePayload::Error(e) = &resp.payload {
                tracing::warn!(connection = %self.inner.name, error = %e, "server sent an error without an id");
            }
            return;
        };
        if let RequestId::Int(n) = id {
            if self.inner.answer_light_probe(n, &resp.payload) {
                return;
            }
        }
        let slot = self.inner.pending().map.remove(&id);
        match slot {
            Some(slot) => {
                let _ = slot.reply.send(Reply::from(resp.payload));
            }
            None => {
                // Unknown or late answers are dropped.
                Counters::bump(&self.inner.counters.unmatched_responses);
                tracing::debug!(connection = %self.inner.name, %id, "response matches no pending request");
            }
        }
    }

    fn on_request(&mut self, req: Request) {
        if req.method == "ping" {
            // Answered at once, even before `initialized`.
            self.reply_now(Message::Response(Response {
                id: Some(req.id),
                payload: ResponsePayload::Result(empty_object()),
            }));
            return;
        }
        if self.running.len() >= self.max_server_requests {
            if self.backlog.len() >= SERVER_REQUEST_BACKLOG {
                tracing::warn!(connection = %self.inner.name, id = %req.id, method = %req.method, "too many server requests waiting: refused");
                self.reply_now(Message::Response(Response::error(
                    Some(req.id),
                    JsonRpcError::internal("the client is busy: too many requests in progress"),
                )));
            } else {
                self.backlog.push_back(req);
            }
            return;
        }
        self.spawn_handler(req);
    }

    /// Runs a server request's handler in a slot of `running`.
    fn spawn_handler(&mut self, req: Request) {
        let handlers = self.handlers.clone();
        let inner = self.inner.clone();
        let id = req.id.clone();
        let handle = self.running.spawn(async move {
            let outcome = handlers.handle(&req.method, req.params).await;
            let payload = match outcome.map(|v| serde_json::value::to_raw_value(&v)) {
                Ok(Ok(raw)) => ResponsePayload::Result(raw),
                Ok(Err(e)) => ResponsePayload::Error(JsonRpcError::internal(e.to_string())),
                Err(e) => ResponsePayload::Error(e),
            };
            // A handler task (not the reader) may wait for room.
            let reply = Message::Response(Response {
                id: Some(req.id),
                payload,
            });
            let _ = inner.send(Queue::Replies, reply, true).await;
        });
        self.by_task.insert(handle.id(), id.clone());
        self.by_request.insert(id, handle);
    }

    /// A handler finished; a panicked one still owes the server an answer
    /// (-32603).
    pub(super) fn reap(&mut self, done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let (task, panicked) = match &done {
            Ok((task, ())) => (*task, false),
            Err(e) => (e.id(), e.is_panic()),
        };
        if let Some(id) = self.by_task.remove(&task) {
            self.by_request.remove(&id);
            if panicked {
                self.reply_now(Message::Response(Response::error(
                    Some(id),
                    JsonRpcError::internal("the client's handler failed"),
                )));
            }
        }
        // A slot is free: the oldest waiting server request takes it.
        while self.running.len() < self.max_server_requests {
            match self.backlog.pop_front() {
                Some(req) => self.spawn_handler(req),
                None => break,
            }
        }
    }

    fn on_notification(&mut self, n: Notification) {
        match n.method.as_str() {
            "notifications/progress" => self.on_progress(n.params.as_ref()),
            "notifications/tools/list_changed" => {
                Counters::bump(&self.inner.counters.tools_list_changed);
                self.inner.notifications.send(n);
            }
            "notifications/cancelled" => {
                // Abort that handler; it sends no response.
                let id = n
                    .params
                    .as_ref()
                    .and_then(|p| p.get("requestId"))
                    .and_then(|id| serde_json::from_value::<RequestId>(id.clone()).ok());
                if let Some(id) = id {
                    if let Some(handle) = self.by_request.remove(&id) {
                        self.by_task.remove(&handle.id());
                        handle.abort();
                    } else {
                        // Still waiting for a slot: drop it unanswered.
                        self.backlog.retain(|r| r.id != id);
                    }
                }
                self.inner.notifications.send(n);
            }
            _ => {
                self.inner.notifications.send(n);
            }
        }
    }

    /// Progress goes to its request's callback; progress
    /// for unknown tokens is dropped.
    fn on_progress(&self, params: Option<&Value>) {
        let Some(params) = params else { return };
        let Some(token) = params
            .get("progressToken")
            .and_then(|t| serde_json::from_value::<RequestId>(t.clone()).ok())
        else {
            return;
        };
        let Some(progress) = params.get("progress").and_then(Value::as_f64) else {
            return;
        };
        let state = self
            .inner
            .pending()
            .map
            .get(&token)
            .and_then(|slot| slot.progress.clone());
        if let Some(state) = state {
            (state.callback)(Progress {
                progress,
                total: params.get("total").and_then(Value::as_f64),
                message: params
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
            state.seen.notify_one();
        }
    }
}

pub(super) fn empty_object() -> Box<RawValue> {
    // "{}" is valid JSON.
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| unreachable!("{{}} is valid JSON"))
}
