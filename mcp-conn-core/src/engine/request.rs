//! The request path of [`Client`]: the id, the pending entry, the send
//! (written by the caller, run by it as an exchange, or queued for the link
//! task), the wait for the answer with its timeout and progress, and the
//! outcome.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use super::options::RequestOptions;
use super::pending::{ClientInner, PendingGuard, ProgressState, Reply, Slot};
use super::Client;
use crate::error::Error;
use crate::jsonrpc::{Message, Request, RequestId, Response};
use crate::metrics::{Counters, Gauge};
use crate::transport::DirectExchange;

impl Client {
    /// Sends a request and returns its raw result.
    ///
    /// On timeout, or when the returned future is dropped before the answer,
    /// the request is forgotten and `notifications/cancelled` goes to the
    /// server.
    pub async fn request_raw(
        &self,
        method: &str,
        params: Option<Value>,
        opts: &RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        let counters = &self.inner.counters;
        let timer = counters.telemetry.start(method);
        // The per-server limit: wait for a slot, within the request's own
        // timeout, instead of flooding a slow server.
        let _slot = match &counters.limit {
            Some(limit) => {
                let _queued = Gauge::up(&counters.queued);
                let timeout = opts.timeout.unwrap_or(self.inner.request_timeout);
                match tokio::time::timeout(timeout, limit.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => Some(permit),
                    Ok(Err(_)) => return Err(self.inner.closed_error()),
                    Err(_) => {
                        Counters::bump(&counters.requests_timed_out);
                        return timer.finish(Err(Error::Timeout {
                            connection: self.inner.name.clone(),
                            operation: format!("{method} (waiting for a slot under max_in_flight)"),
                            after: timeout,
                        }));
                    }
                }
            }
            None => None,
        };
        let _in_flight = Gauge::up(&counters.in_flight);
        let outcome = if self.is_stateless() {
            // Boxed: its rounds make a large future, and inline it would
            // make every request's future as large (a pool's probes copy
            // and allocate theirs thousands of times a second).
            Box::pin(self.send_with_rounds(method, params, opts)).await
        } else {
            self.send_request(method, params, opts).await
        };
        match &outcome {
            Ok(_) => {
                Counters::bump(&counters.requests_ok);
                *counters.last_ok.lock() = Some(Instant::now());
            }
            Err(e) if e.is_timeout() => Counters::bump(&counters.requests_timed_out),
            Err(_) => Counters::bump(&counters.requests_failed),
        }
        timer.finish(outcome)
    }

    /// The one place every request is built and sent: the id, the progress
    /// token, and (stateless era) the `_meta` of every request.
    pub(super) async fn send_request(
        &self,
        method: &str,
        params: Option<Value>,
        opts: &RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        self.send_request_as(method, params, None, opts, self.inner.stateless.get())
            .await
    }

    /// [`Client::send_request`] with the stateless `_meta` given (the era
    /// probe sends it before the session knows its era) and a server's
    /// `requestState` to echo, written raw.
    pub(super) async fn send_request_as(
        &self,
        method: &str,
        mut params: Option<Value>,
        request_state: Option<&RawValue>,
        opts: &RequestOptions,
        stateless: Option<&super::stateless::StatelessMeta>,
    ) -> Result<Box<RawValue>, Error> {
        let inner = &*self.inner;
        let n = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let id = RequestId::Int(n);
        let progress = opts.on_progress.clone().map(|callback| {
            set_progress_token(&mut params, n);
            Arc::new(ProgressState {
                callback,
                seen: Notify::new(),
            })
        });
        let raw_meta = stateless.and_then(|meta| {
            let raw = meta.as_raw(&params, opts);
            if raw.is_none() {
                meta.apply(&mut params, opts);
            }
            raw
        });
        let (tx, mut rx) = oneshot::channel();
        // Whether no other request waits for an answer: then this one is
        // written at once if the link can (no hand-off to the link task);
        // with others in flight it is queued, to be written in a batch.
        let alone = {
            let mut p = inner.pending();
            if let Some(e) = &p.terminal {
                return Err(e.clone());
            }
            let alone = p.map.is_empty();
            p.map.insert(
                id.clone(),
                Slot {
                    reply: tx,
                    progress: progress.clone(),
                },
            );
            alone
        };
        let mut guard = PendingGuard {
            inner,
            id: id.clone(),
            // `initialize` is never cancelled.
            cancellable: method != "initialize",
            armed: true,
        };
        let mut request = Request::new(id, method, params);
        if let Some(meta) = raw_meta {
            request = request.with_raw_param("_meta", meta);
        }
        if let Some(state) = request_state {
            request = request.with_raw_param("requestState", state.to_owned());
        }
        let msg = Message::Request(request);
        // A transport may run the exchange here (HTTP): polled beside the
        // wait below, it may hand over the response itself.
        let mut exchange = match inner.send_request(msg, alone).await {
            Ok(exchange) => exchange,
            Err(()) => {
                guard.armed = false;
                inner.pending().map.remove(&guard.id);
                return Err(inner.closed_error());
            }
        };

        let timeout = opts.timeout.unwrap_or(inner.request_timeout);
        let started = Instant::now();
        let hard_deadline = opts.max_total_timeout.map(|max| started + max);
        let idle_deadline = |now: Instant| match hard_deadline {
            Some(hard) => (now + timeout).min(hard),
            None => now + timeout,
        };
        let sleep = tokio::time::sleep_until(idle_deadline(started));
        tokio::pin!(sleep);
        let reset_on_progress = progress.is_some() && hard_deadline.is_some();
        loop {
            let progress_seen = async {
                match &progress {
                    Some(p) if reset_on_progress => p.seen.notified().await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                reply = &mut rx => {
                    guard.armed = false;
                    return outcome(inner, method, reply.ok());
                }
                direct = drive(&mut exchange) => {
                    exchange = None;
                    // The response, unless the session ended meanwhile (its
                    // error is then in `rx`).
                    let reply = direct
                        .filter(|_| inner.pending().map.remove(&guard.id).is_some())
                        .map(|resp| Reply::from(resp.payload));
                    if let Some(reply) = reply {
                        guard.armed = false;
                        return outcome(inner, method, Some(reply));
                    }
                }
                () = &mut sleep => {
                    guard.abandon("timeout");
                    return Err(Error::Timeout {
                        connection: inner.name.clone(),
                        operation: method.to_owned(),
                        after: started.elapsed(),
                    });
                }
                () = progress_seen => {
                    sleep.as_mut().reset(idle_deadline(Instant::now()));
                }
            }
        }
    }
}

/// A request's outcome from its reply (`None`: the reply channel closed,
/// the session ended).
fn outcome(
    inner: &ClientInner,
    method: &str,
    reply: Option<Reply>,
) -> Result<Box<RawValue>, Error> {
    match reply {
        Some(Reply::Result(raw)) => Ok(raw),
        Some(Reply::Rpc(error)) => Err(Error::Rpc {
            connection: inner.name.clone(),
            method: method.to_owned(),
            error,
        }),
        Some(Reply::Failed(e)) => Err(e),
        Some(Reply::Transport(source)) => Err(Error::Transport {
            connection: inner.name.clone(),
            method: method.to_owned(),
            source,
        }),
        None => Err(inner.closed_error()),
    }
}

/// Runs a request's exchange, if its transport gave one; pending forever
/// when not (or once it resolved: the caller clears it).
async fn drive(exchange: &mut Option<DirectExchange>) -> Option<Response> {
    match exchange {
        Some(exchange) => exchange.await,
        None => std::future::pending().await,
    }
}

fn set_progress_token(params: &mut Option<Value>, token: i64) {
    let obj = params.get_or_insert_with(|| Value::Object(Map::new()));
    if !obj.is_object() {
        return;
    }
    let meta = obj.as_object_mut().map(|o| {
        o.entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()))
    });
    if let Some(Value::Object(meta)) = meta {
        meta.insert("progressToken".into(), Value::from(token));
    }
}
