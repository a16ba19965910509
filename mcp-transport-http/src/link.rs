//! One live link: the state its tasks share, its two halves, the task per
//! POSTed message, and the optional GET stream.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use http::header::HeaderValue;
use http::StatusCode;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::dns::Name;
use mcp_conn_core::jsonrpc::{Message, RequestId};
use mcp_conn_core::{DirectExchange, Inbound, Link, LinkRx, LinkTx, TransportError};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Credentials, HttpMode, Settings};
use crate::direct::Direct;
use crate::exchange::{Content, Failure, Outgoing, Prepared};
use crate::failure::DnsError;
use crate::stream::{EventStream, StreamItem};

/// How long opening the GET stream may hold up the handshake.
const GET_STREAM_OPEN: Duration = Duration::from_secs(5);
/// How many inbound items may wait for the engine.
const INBOUND_QUEUE: usize = 1024;

/// What the link's tasks hand the receive half.
enum Item {
    Inbound(Inbound),
    /// The link is broken; the first one is what the engine sees.
    Fatal(TransportError),
}

/// The state every task of one link shares.
pub(crate) struct Shared {
    pub(crate) settings: Arc<Settings>,
    pub(crate) client: crate::connector::HttpClient,
    /// The current `Authorization` value (fixed, or the provider's latest).
    pub(crate) token: Mutex<Option<HeaderValue>>,
    pub(crate) session: crate::session::Session,
    /// Requests whose HTTP exchange is open, to drop it when the engine
    /// cancels the request.
    in_flight: Mutex<HashMap<RequestId, CancellationToken>>,
    incoming: mpsc::Sender<Item>,
    pub(crate) cancel: CancellationToken,
    pub(crate) tasks: TaskTracker,
    permits: Arc<Semaphore>,
    /// The tools' `Mcp-Param-*` headers (stateless era).
    pub(crate) tools: crate::stateless::ToolHeaders,
    /// Whether the link speaks the stateless era (its last request carried
    /// the stateless `_meta`): then no notification is POSTed.
    stateless: AtomicBool,
}

/// Resolves host names with tokio, reporting a failure as [`DnsError`] so
/// that it is classified by type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolver;

type Resolving =
    Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, DnsError>> + Send>>;

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = DnsError;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), DnsError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found = tokio::net::lookup_host((host.clone(), 0)).await;
            match found {
                Ok(addrs) => Ok(addrs.collect::<Vec<_>>().into_iter()),
                Err(source) => Err(DnsError { host, source }),
            }
        })
    }
}

/// Opens a link: nothing is sent yet on Streamable HTTP (the engine's
/// `initialize` is the first POST); the legacy transport's stream is opened
/// here.
pub(crate) async fn open(settings: Arc<Settings>) -> Result<Link, TransportError> {
    let token = match &settings.credentials {
        Credentials::None => None,
        Credentials::Fixed(value) => Some(value.clone()),
        Credentials::Provider(p) => p.token().await.and_then(|t| crate::config::bearer(&t).ok()),
    };
    let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
    let shared = Arc::new(Shared {
        client: crate::connector::client(&settings, settings.negotiated.clone()),
        permits: Arc::new(Semaphore::new(settings.max_in_flight)),
        settings,
        token: Mutex::new(token),
        session: crate::session::Session::new(),
        in_flight: Mutex::new(HashMap::new()),
        incoming: tx,
        cancel: CancellationToken::new(),
        tasks: TaskTracker::new(),
        tools: crate::stateless::ToolHeaders::default(),
        stateless: AtomicBool::new(false),
    });
    if shared.settings.mode == HttpMode::LegacySse {
        shared.open_legacy().await?;
    }
    Ok(Link::new(
        HttpTx {
            shared,
            closed: false,
        },
        HttpRx { rx },
    ))
}

impl Shared {
    /// Hands a message to the engine.
    pub(crate) async fn push(&self, msg: Message) {
        self.note(&msg);
        self.forward(msg).await;
    }

    async fn forward(&self, msg: Message) {
        let _ = self
            .incoming
            .send(Item::Inbound(Inbound::Message(msg)))
            .await;
    }

    /// What the link learns from a message the server sent.
    fn note(&self, msg: &Message) {
        self.session.note_initialize_result(msg);
        self.tools.note_response(msg);
    }

    /// Hands a message of an exchange on: to the caller that runs the
    /// exchange if it is that caller's response and nothing of the reply
    /// went to the engine before it; to the engine otherwise.
    pub(crate) async fn hand_on(&self, msg: Message, direct: Option<&mut Direct>) {
        self.note(&msg);
        let msg = match direct {
            Some(d) => match d.offer(msg) {
                Some(msg) => msg,
                None => return,
            },
            None => msg,
        };
        self.forward(msg).await;
    }

    /// How an exchange ended, for the engine: a request failed alone, or
    /// the link lost.
    async fn report(&self, outcome: Result<(), Failure>, request_id: Option<RequestId>) {
        match (outcome, request_id) {
            (Ok(()), _) => {}
            (Err(Failure::Request(error)), Some(id)) => self.fail_request(id, error).await,
            (Err(Failure::Request(error) | Failure::Link(error)), _) => self.fatal(error).await,
        }
    }

    /// Reads what is left of a reply stream after its response, which its
    /// caller already has: at once if it has all arrived, else in a task
    /// of the link's (holding the in-flight slot until done).
    fn finish_reply(self: &Arc<Self>, mut stream: EventStream, permit: OwnedSemaphorePermit) {
        if stream.ended_now() {
            return;
        }
        let shared = self.clone();
        self.spawn_owned(async move {
            shared.read_reply_tail(&mut stream).await;
            drop(permit);
        });
    }

    /// Fails one request; the link lives on.
    async fn fail_request(&self, id: RequestId, error: TransportError) {
        tracing::debug!(%id, %error, "the transport failed one request");
        let _ = self
            .incoming
            .send(Item::Inbound(Inbound::Failed { id, error }))
            .await;
    }

    /// Ends the link with `error`.
    pub(crate) async fn fatal(&self, error: TransportError) {
        if !self.cancel.is_cancelled() {
            tracing::debug!(%error, "HTTP link lost");
            let _ = self.incoming.send(Item::Fatal(error)).await;
        }
    }

    /// Spawns a task owned by this link: cancelled with it, awaited by
    /// `close()`.
    pub(crate) fn spawn_owned<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = task => {}
            }
        });
    }

    /// Opens the optional GET stream for server-initiated messages, when the
    /// session wants one, and waits until the server has answered it, so that
    /// nothing the server sends there right after the handshake is missed;
    /// then reads it in a task.
    pub(crate) async fn open_get_stream(self: &Arc<Self>) {
        if !self.session.claim_get_stream() {
            return;
        }
        let get = Outgoing::Get {
            last_event_id: None,
        };
        let opened =
            tokio::time::timeout(GET_STREAM_OPEN, self.exchange(&self.settings.url, &get)).await;
        let first = match opened {
            Ok(Ok(resp)) => Some(resp),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "the GET stream could not be opened");
                return;
            }
            Err(_) => None, // slow to answer: the task tries again
        };
        let shared = self.clone();
        self.spawn_owned(async move { shared.run_get_stream(first).await });
    }

    /// Reads the GET stream, reopening it (with `Last-Event-ID`, after the
    /// server's `retry`) whenever it ends, until the server turns it off.
    /// A stream that breaks or idles is reopened; a server unreachable when
    /// reopening, or busy (429, 503), ends the link, so that a connection
    /// notices a dead server without waiting for a request.
    async fn run_get_stream(&self, mut first: Option<hyper::Response<Incoming>>) {
        let mut stream: Option<EventStream> = None;
        loop {
            let resp = match first.take() {
                Some(resp) => resp,
                None => {
                    let get = Outgoing::Get {
                        last_event_id: stream
                            .as_ref()
                            .and_then(|s| s.last_event_id().map(str::to_owned)),
                    };
                    match self.exchange(&self.settings.url, &get).await {
                        Ok(resp) => resp,
                        Err(e) => return self.fatal(e).await,
                    }
                }
            };
            let status = resp.status();
            if status == StatusCode::METHOD_NOT_ALLOWED {
                tracing::debug!("the server offers no GET stream (405)");
                return;
            }
            if matches!(status.as_u16(), 429 | 503) {
                let error = crate::answer::refused(resp).await;
                return self.fatal(error).await;
            }
            if !status.is_success() {
                tracing::debug!(%status, "the GET stream was refused");
                return;
            }
            if Content::of(&resp) != Content::EventStream {
                tracing::warn!(%status, "the GET stream is not an event stream; not reading it");
                return;
            }
            let body = resp.into_body();
            let stream = match &mut stream {
                Some(s) => {
                    s.continue_on(body);
                    s
                }
                None => stream.insert(EventStream::new(
                    body,
                    self.settings.idle_stream_timeout,
                    self.settings.max_message_size,
                )),
            };
            loop {
                match stream.next().await {
                    Ok(Some(StreamItem::Messages(msgs))) => {
                        for m in msgs {
                            self.push(m).await;
                        }
                    }
                    Ok(Some(StreamItem::Control(e))) => {
                        tracing::debug!(event = %e.event, "ignored an event on the GET stream");
                    }
                    Ok(None) => break,
                    Err(e @ TransportError::MessageTooLarge { .. }) => {
                        // The stream reads on after the event (the parser
                        // skips it); there is no request to fail.
                        tracing::warn!(error = %e, "dropped an event on the GET stream");
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "the GET stream broke or idled; reopening it");
                        break;
                    }
                }
            }
            tokio::time::sleep(stream.retry_delay()).await;
        }
    }
}

/// The send half.
struct HttpTx {
    shared: Arc<Shared>,
    closed: bool,
}

impl HttpTx {
    /// POSTs `msg` in a task of its own; a request's exchange can also be
    /// dropped on its own, when the engine cancels the request. The message
    /// is serialised here, so the task holds its bytes, not a copy of it.
    fn spawn(&self, prepared: Prepared, permit: OwnedSemaphorePermit) {
        let shared = self.shared.clone();
        let own = self.shared.cancel.child_token();
        let request_id = prepared.request_id().cloned();
        if let Some(id) = &request_id {
            shared.in_flight.lock().insert(id.clone(), own.clone());
        }
        self.shared.tasks.spawn(async move {
            let outcome = tokio::select! {
                () = own.cancelled() => Ok(()),
                outcome = shared.deliver_prepared(&prepared, None) => outcome,
            };
            if let Some(id) = &request_id {
                shared.in_flight.lock().remove(id);
            }
            shared.report(outcome, request_id).await;
            drop(permit);
        });
    }

    /// POSTs request `msg` in the caller's task (see
    /// [`LinkTx::try_exchange_now`]): no task of its own, no cancellation
    /// token (dropping it is the cancellation), and its response straight
    /// to the caller when it comes first in the reply.
    fn exchange_now(
        &self,
        prepared: Prepared,
        id: RequestId,
        permit: OwnedSemaphorePermit,
    ) -> DirectExchange {
        let shared = self.shared.clone();
        Box::pin(async move {
            let mut direct = Direct::new(id.clone());
            let outcome = shared.deliver_prepared(&prepared, Some(&mut direct)).await;
            shared.report(outcome, Some(id)).await;
            match direct.tail.take() {
                Some(tail) => shared.finish_reply(tail, permit),
                None => drop(permit),
            }
            direct.response
        })
    }

    /// Makes a request ready to POST, and notes whether the link speaks
    /// the stateless era (it does when its last request did).
    fn prepare(&self, msg: &Message) -> Prepared {
        let prepared = self.shared.prepare(msg);
        self.shared
            .stateless
            .store(prepared.is_stateless(), Ordering::Relaxed);
        prepared
    }

    /// Drops the exchange of the request a `notifications/cancelled` names.
    fn cancel_exchange(&self, msg: &Message) {
        let Message::Notification(n) = msg else {
            return;
        };
        if n.method != "notifications/cancelled" {
            return;
        }
        let id = n
            .params
            .as_ref()
            .and_then(|p| p.get("requestId"))
            .and_then(|id| serde_json::from_value::<RequestId>(id.clone()).ok());
        if let Some(token) = id.and_then(|id| self.shared.in_flight.lock().remove(&id)) {
            token.cancel();
        }
    }
}

#[async_trait]
impl LinkTx for HttpTx {
    async fn send(&mut self, msg: &Message) -> Result<(), TransportError> {
        if self.closed {
            return Err(TransportError::Closed);
        }
        self.cancel_exchange(msg);
        let mut prepared = None;
        match msg {
            Message::Request(_) => {
                prepared = Some(self.prepare(msg));
            }
            Message::Notification(n) if self.shared.stateless.load(Ordering::Relaxed) => {
                // The stateless era sends no notifications over HTTP; a
                // cancellation closed its request's stream above.
                tracing::debug!(method = %n.method, "not sent: no notifications in the stateless era");
                return Ok(());
            }
            _ => {}
        }
        if matches!(msg, Message::Notification(n) if n.method == "notifications/initialized") {
            // `initialized` reaches the server before any later request,
            // and so does the GET stream it opens: deliver it here, holding
            // the writer until it is done.
            return self.shared.deliver(msg).await.map_err(Failure::into_error);
        }
        let permit = self
            .shared
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| TransportError::Closed)?;
        let prepared = prepared.unwrap_or_else(|| self.shared.prepare(msg));
        self.spawn(prepared, permit);
        Ok(())
    }

    /// A request's POST starts now, in its own task, if a slot under the
    /// in-flight limit is free. Notifications take `send` (`initialized` is
    /// delivered in order, the stateless era drops them).
    fn try_send_now(&mut self, msg: &Message) -> bool {
        if !matches!(msg, Message::Request(_)) || self.closed {
            return false;
        }
        let Ok(permit) = self.shared.permits.clone().try_acquire_owned() else {
            return false;
        };
        let prepared = self.prepare(msg);
        self.spawn(prepared, permit);
        true
    }

    /// Every request's POST is run by its caller, if a slot under the
    /// in-flight limit is free.
    fn try_exchange_now(&mut self, msg: &Message) -> Option<DirectExchange> {
        let Message::Request(r) = msg else {
            return None;
        };
        if self.closed {
            return None;
        }
        let permit = self.shared.permits.clone().try_acquire_owned().ok()?;
        let prepared = self.prepare(msg);
        Some(self.exchange_now(prepared, r.id.clone(), permit))
    }

    async fn close(&mut self, grace: Duration) -> Result<(), TransportError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let shared = &self.shared;
        shared.cancel.cancel();
        shared.tasks.close();
        let _ = tokio::time::timeout(grace, shared.tasks.wait()).await;
        // End the session; 2xx, 404 and 405 are all fine.
        if shared.session.id().is_some() && !shared.session.is_legacy() {
            let req = shared.build(&shared.settings.url, &Outgoing::Delete)?;
            match tokio::time::timeout(grace, shared.send(req)).await {
                Ok(Ok(resp)) => tracing::debug!(status = %resp.status(), "session deleted"),
                Ok(Err(e)) => tracing::debug!(error = %e, "DELETE of the session failed"),
                Err(_) => tracing::debug!("DELETE of the session timed out"),
            }
        }
        Ok(())
    }
}

impl Drop for HttpTx {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

/// The receive half.
struct HttpRx {
    rx: mpsc::Receiver<Item>,
}

#[async_trait]
impl LinkRx for HttpRx {
    async fn recv(&mut self) -> Result<Option<Inbound>, TransportError> {
        match self.rx.recv().await {
            Some(Item::Inbound(inbound)) => Ok(Some(inbound)),
            Some(Item::Fatal(e)) => Err(e),
            None => Ok(None),
        }
    }
}
