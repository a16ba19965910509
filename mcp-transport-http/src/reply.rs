//! A POST's SSE reply: read until the request's response arrives (resuming
//! with GET and `Last-Event-ID` when it breaks first), then on to its end so
//! that its connection goes back to the pool.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use mcp_conn_core::jsonrpc::{Message, RequestId};
use mcp_conn_core::TransportError;

use crate::answer::refused;
use crate::direct::Direct;
use crate::exchange::{Content, Failure, Kind, Outgoing};
use crate::link::Shared;
use crate::stream::{EventStream, StreamItem};

/// How long a reply stream is read on after its response, waiting for its
/// end (see [`Shared::read_reply_tail`]).
const REPLY_TAIL: Duration = Duration::from_millis(250);

impl Shared {
    /// Reads a POST's SSE reply until the response to `id` arrives,
    /// resuming with GET and `Last-Event-ID` when the stream breaks first.
    /// An event over the limit, or a stream that ends (or breaks) without a
    /// way to resume, fails this request alone; failing to reach the server
    /// again ends the link.
    pub(crate) async fn read_reply_stream(
        self: &Arc<Self>,
        body: Incoming,
        id: Option<RequestId>,
        kind: &Kind,
        stateless: bool,
        mut direct: Option<&mut Direct>,
    ) -> Result<(), Failure> {
        let mut stream = EventStream::new(
            body,
            self.settings.idle_stream_timeout,
            self.settings.max_message_size,
        );
        loop {
            let cause = match stream.next().await {
                Ok(Some(StreamItem::Messages(msgs))) => {
                    let answered = msgs.iter().any(|m| {
                        matches!((m, &id), (Message::Response(r), Some(want)) if r.id.as_ref() == Some(want))
                    });
                    for m in msgs {
                        self.hand_on(m, direct.as_deref_mut()).await;
                    }
                    if answered {
                        match direct {
                            // Run by its caller, which returns as soon as it
                            // has the response (kept here or routed by the
                            // link): the tail is read after (`finish_reply`).
                            Some(d) => d.tail = Some(stream),
                            None => self.read_reply_tail(&mut stream).await,
                        }
                        return Ok(());
                    }
                    continue;
                }
                Ok(Some(StreamItem::Control(e))) => {
                    tracing::debug!(event = %e.event, "ignored an event on a reply stream");
                    continue;
                }
                Ok(None) if id.is_none() => return Ok(()),
                Ok(None) => TransportError::Eof,
                Err(e @ TransportError::MessageTooLarge { .. }) => return Err(kind.failure(e)),
                Err(e) => e,
            };
            if let Some(id) = &id {
                tracing::debug!(%id, error = %cause, resumable = stream.resumable(), "a reply stream ended before its response");
            }
            if stateless {
                // No resumption in the stateless era: the request is lost,
                // and the engine decides whether it may be sent again.
                return Err(kind.failure(cause));
            }
            stream
                .resume(kind.failure(cause), |last| self.reopen(last, kind))
                .await?;
        }
    }

    /// Reads a reply stream on after its response (the caller has it
    /// already) until the server ends it, for at most [`REPLY_TAIL`]: a body
    /// read to its end leaves its connection to the pool, one dropped before
    /// closes it, and the next request would wait for a new one. Anything
    /// else the server sends there still reaches the engine; a failure here
    /// fails nothing.
    pub(crate) async fn read_reply_tail(&self, stream: &mut EventStream) {
        let tail = async {
            while let Ok(Some(item)) = stream.next().await {
                if let StreamItem::Messages(msgs) = item {
                    for m in msgs {
                        self.push(m).await;
                    }
                }
            }
        };
        if tokio::time::timeout(REPLY_TAIL, tail).await.is_err() {
            tracing::debug!("a reply stream stayed open after its response; dropped");
        }
    }

    /// GETs the stream again after event `last`.
    async fn reopen(&self, last: String, kind: &Kind) -> Result<Incoming, Failure> {
        let get = Outgoing::Get {
            last_event_id: Some(last),
        };
        let resp = self.exchange(&self.settings.url, &get).await?;
        let status = resp.status();
        if status.is_success() && Content::of(&resp) == Content::EventStream {
            return Ok(resp.into_body());
        }
        let error = refused(resp).await;
        // The session is gone or the credentials are refused: the link is
        // unusable. Anything else is about this stream.
        match status.as_u16() {
            401 | 403 | 404 => Err(Failure::Link(error)),
            _ => Err(kind.failure(error)),
        }
    }
}
