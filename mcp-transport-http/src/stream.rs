//! [`EventStream`]: the one reader of a `text/event-stream` body, used for
//! POST replies, the GET stream and the legacy stream alike. It bounds each
//! event's size, times out an idle stream, keeps the resumption point
//! (`id`, `retry`) and resumes with `Last-Event-ID`; events of another type
//! than `message` are handed to the caller as control events (the legacy
//! `endpoint`). Also [`messages`], the one place a JSON text becomes
//! messages.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Body as _;
use hyper::body::Incoming;
use mcp_conn_core::jsonrpc::{parse_frame, Frame, Message, ParseError};
use mcp_conn_core::TransportError;

use crate::failure;
use crate::sse::{Event, SseParser};

/// How long to wait before resuming a stream whose server gave no `retry`.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// The longest `retry` honoured.
const MAX_RETRY: Duration = Duration::from_secs(60);
/// How many times one stream may be resumed.
const MAX_RESUMES: u32 = 5;

/// What an [`EventStream`] yields.
#[derive(Debug)]
pub(crate) enum StreamItem {
    /// The messages of one `message` event (a batch is flattened).
    Messages(Vec<Message>),
    /// An event of another type (`endpoint`, …), for the caller to act on.
    Control(Event),
}

/// One SSE stream, possibly spanning several HTTP bodies (resumed ones).
#[derive(Debug)]
pub(crate) struct EventStream {
    body: Incoming,
    parser: SseParser,
    idle: Duration,
    limit: usize,
    last_event_id: Option<String>,
    retry: Option<Duration>,
    resumes: u32,
}

impl EventStream {
    /// Reads `body` with events of at most `limit` bytes, and at most
    /// `idle` between two chunks.
    pub(crate) fn new(body: Incoming, idle: Duration, limit: usize) -> Self {
        EventStream {
            body,
            parser: SseParser::new(limit),
            idle,
            limit,
            last_event_id: None,
            retry: None,
            resumes: 0,
        }
    }

    /// The next item; `Ok(None)` when the body ended. An event over the
    /// limit is [`TransportError::MessageTooLarge`]; the stream cannot be
    /// read further after an error.
    pub(crate) async fn next(&mut self) -> Result<Option<StreamItem>, TransportError> {
        loop {
            while let Some(event) =
                self.parser
                    .next_event()
                    .map_err(|e| TransportError::MessageTooLarge {
                        size: e.size,
                        limit: self.limit,
                    })?
            {
                if let Some(ms) = event.retry {
                    self.retry = Some(Duration::from_millis(ms).min(MAX_RETRY));
                }
                if let Some(id) = &event.id {
                    self.last_event_id = Some(id.clone());
                }
                if !(event.event.is_empty() || event.event == "message") {
                    return Ok(Some(StreamItem::Control(event)));
                }
                if event.data.trim().is_empty() {
                    continue; // a priming event
                }
                match messages(event.data.as_bytes()) {
                    Ok(msgs) if msgs.is_empty() => {}
                    Ok(msgs) => return Ok(Some(StreamItem::Messages(msgs))),
                    Err(e) => violation(&e, event.data.as_bytes()),
                }
            }
            match tokio::time::timeout(self.idle, self.body.frame()).await {
                Err(_) => {
                    return Err(TransportError::Timeout {
                        what: "an idle SSE stream".into(),
                        after: self.idle,
                    })
                }
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => return Err(failure::body_error(e)),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.parser.push(&data);
                    }
                }
            }
        }
    }

    /// Whether the stream has ended already, looked at without waiting:
    /// nothing is buffered and the body's end has arrived. What arrived
    /// instead is kept for [`EventStream::next`].
    pub(crate) fn ended_now(&mut self) -> bool {
        if !self.parser.is_idle() {
            return false;
        }
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        match Pin::new(&mut self.body).poll_frame(&mut cx) {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    self.parser.push(&data);
                }
                false
            }
            // A failure is seen again by `next`; the body polled after an
            // error ends.
            Poll::Ready(Some(Err(_))) | Poll::Pending => false,
        }
    }

    /// Whether the server gave an event id to resume from.
    pub(crate) fn resumable(&self) -> bool {
        self.last_event_id.is_some()
    }

    /// The delay the server asked for before reconnecting (`retry`), or the
    /// default.
    pub(crate) fn retry_delay(&self) -> Duration {
        self.retry.unwrap_or(DEFAULT_RETRY)
    }

    /// The last event id seen, for `Last-Event-ID` when reopening.
    pub(crate) fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// Continues on a fresh body (a reopened GET stream).
    pub(crate) fn continue_on(&mut self, body: Incoming) {
        self.body = body;
        self.parser = SseParser::new(self.limit);
    }

    /// Resumes after the stream broke: waits the server's `retry` delay,
    /// then `reopen(last_event_id)` (a GET with `Last-Event-ID`) and reads
    /// on from there. `Err` with `cause` when there is nothing to resume
    /// from or the resumptions are used up; the reopen's own error when it
    /// fails.
    pub(crate) async fn resume<E, F, Fut>(&mut self, cause: E, reopen: F) -> Result<(), E>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<Incoming, E>>,
    {
        let Some(last) = self.last_event_id.clone() else {
            return Err(cause);
        };
        self.resumes += 1;
        if self.resumes > MAX_RESUMES {
            return Err(cause);
        }
        tokio::time::sleep(self.retry_delay()).await;
        let body = reopen(last).await?;
        self.continue_on(body);
        Ok(())
    }
}

/// The messages of one JSON text (a message or a batch). Batch items that
/// are not JSON-RPC are logged and dropped; `Err` when the text as a whole
/// is not JSON-RPC.
pub(crate) fn messages(bytes: &[u8]) -> Result<Vec<Message>, ParseError> {
    match parse_frame(bytes)? {
        Frame::Single(m) => Ok(vec![m]),
        Frame::Batch(items) => Ok(items
            .into_iter()
            .filter_map(|item| item.map_err(|e| violation(&e, bytes)).ok())
            .collect()),
    }
}

/// Logs something the server sent that is not JSON-RPC (its start only).
pub(crate) fn violation(why: &ParseError, bytes: &[u8]) {
    tracing::warn!(%why, start = %failure::body_start(bytes), "protocol violation: dropped what is not JSON-RPC");
}
