//! One HTTP exchange: building a request, sending it (asking the token
//! provider again on 401 and 403 `insufficient_scope`), and what one POSTed
//! message's answer means: a JSON or SSE reply, a renewed session, the
//! legacy fallback, or a failure of the request or of the link.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use mcp_conn_core::jsonrpc::{Message, RequestId};
use mcp_conn_core::TransportError;
use url::Url;

use crate::answer::{read_body, split, status_error, unexpected, www_authenticate};
use crate::auth::AuthChallenge;
use crate::config::{bearer, Credentials, HttpMode};
use crate::direct::Direct;
use crate::failure;
use crate::link::Shared;
use crate::session::{Stage, Wire, SESSION_HEADER};
use crate::stream::{messages, violation};

const ACCEPT_BOTH: &str = "application/json, text/event-stream";
const EVENT_STREAM: &str = "text/event-stream";
/// Step-ups (403 `insufficient_scope`) tried for one message.
const MAX_STEP_UPS: u32 = 2;

/// A failure, and what it ends.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Fails the one request it happened to (its caller gets the error);
    /// the link lives on. For a message that is not a request, this ends
    /// the link too.
    Request(TransportError),
    /// The link is unusable: it ends, failing everything in flight.
    Link(TransportError),
}

impl Failure {
    pub(crate) fn into_error(self) -> TransportError {
        match self {
            Failure::Request(e) | Failure::Link(e) => e,
        }
    }
}

/// The network failed (unreachable, refused, reset): the link is lost.
impl From<TransportError> for Failure {
    fn from(e: TransportError) -> Self {
        Failure::Link(e)
    }
}

/// What an HTTP request is.
#[derive(Debug, Clone)]
pub(crate) enum Outgoing {
    /// POST a JSON-RPC message.
    Post {
        /// The message, serialised.
        body: Bytes,
        /// Which session headers it carries.
        stage: Stage,
        /// The stateless era's headers (empty in the handshake era).
        extra: Vec<(HeaderName, HeaderValue)>,
    },
    /// GET an event stream (the GET stream, a resumption, the legacy
    /// stream).
    Get {
        /// Resume after this event.
        last_event_id: Option<String>,
    },
    /// DELETE the session.
    Delete,
}

/// A message ready to POST (see [`Shared::prepare`]).
#[derive(Debug)]
pub(crate) struct Prepared {
    kind: Kind,
    post: Outgoing,
    stateless: bool,
    /// A notification's (or response's) method, for a timeout's message.
    notice: Option<String>,
}

impl Prepared {
    /// Whether it is a request of the stateless era.
    pub(crate) fn is_stateless(&self) -> bool {
        self.stateless
    }

    /// The id of the request it is, if it is one.
    pub(crate) fn request_id(&self) -> Option<&RequestId> {
        match &self.kind {
            Kind::Request(id) | Kind::Initialize(id) => Some(id),
            Kind::Initialized | Kind::Other => None,
        }
    }
}

/// What a body is, by its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Content {
    Json,
    EventStream,
    /// No content type (an empty 202).
    Missing,
    /// Anything else, as sent.
    Other(String),
}

impl Content {
    pub(crate) fn of(resp: &Response<Incoming>) -> Self {
        let Some(value) = resp.headers().get(CONTENT_TYPE) else {
            return Content::Missing;
        };
        let bytes = value.as_bytes();
        let essence = bytes.split(|b| *b == b';').next().unwrap_or_default();
        let essence = essence.trim_ascii();
        if essence.eq_ignore_ascii_case(b"application/json") {
            Content::Json
        } else if essence.eq_ignore_ascii_case(EVENT_STREAM.as_bytes()) {
            Content::EventStream
        } else {
            Content::Other(String::from_utf8_lossy(bytes).to_ascii_lowercase())
        }
    }
}

/// What kind of message is POSTed: it decides the session headers, what a
/// failure ends, and what waits for the answer.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// `initialize`: everything about it is the link's.
    Initialize(RequestId),
    /// Any other request: its failures are its own.
    Request(RequestId),
    /// `notifications/initialized`: the GET stream opens after it.
    Initialized,
    /// Another notification, or a response to the server.
    Other,
}

impl Kind {
    fn of(msg: &Message) -> Self {
        match msg {
            Message::Request(r) if r.method == "initialize" => Kind::Initialize(r.id.clone()),
            Message::Request(r) => Kind::Request(r.id.clone()),
            Message::Notification(n) if n.method == "notifications/initialized" => {
                Kind::Initialized
            }
            _ => Kind::Other,
        }
    }

    /// `error`, as a failure of this request alone when the message is a
    /// plain request, else of the link.
    pub(crate) fn failure(&self, error: TransportError) -> Failure {
        match self {
            Kind::Request(_) => Failure::Request(error),
            _ => Failure::Link(error),
        }
    }

    fn request_id(&self) -> Option<&RequestId> {
        match self {
            Kind::Initialize(id) | Kind::Request(id) => Some(id),
            Kind::Initialized | Kind::Other => None,
        }
    }
}

impl Shared {
    /// Where POSTs go now.
    fn post_url(&self) -> Cow<'_, Url> {
        match self.session.wire() {
            Wire::Streamable => Cow::Borrowed(&self.settings.url),
            Wire::Legacy { endpoint } => Cow::Owned(endpoint),
        }
    }

    /// An HTTP request with the static headers, the token and the session's
    /// headers.
    pub(crate) fn build(
        &self,
        url: &Url,
        out: &Outgoing,
    ) -> Result<Request<Full<Bytes>>, TransportError> {
        let method = match out {
            Outgoing::Post { .. } => Method::POST,
            Outgoing::Get { .. } => Method::GET,
            Outgoing::Delete => Method::DELETE,
        };
        // The configured URL is parsed once, in `build()`; a legacy endpoint
        // each time.
        let uri = if *url == self.settings.url {
            self.settings.uri.clone()
        } else {
            url.as_str().parse::<http::Uri>().map_err(|e| {
                TransportError::Protocol(format!(
                    "cannot build a request for {}: {e}",
                    crate::config::redacted(url)
                ))
            })?
        };
        let proxy_auth = self.settings.proxies.forwarding_auth(url, &uri);
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(headers) = req.headers_mut() {
            if !self.settings.headers.is_empty() {
                headers.extend(self.settings.headers.clone());
            }
            if let Some(token) = self.token.lock().clone() {
                headers.insert(AUTHORIZATION, token);
            }
            if let Some(auth) = proxy_auth {
                headers.insert(http::header::PROXY_AUTHORIZATION, auth);
            }
            let stage = match out {
                Outgoing::Post { stage, .. } => *stage,
                Outgoing::Get { .. } | Outgoing::Delete => Stage::Established,
            };
            self.session.apply(headers, stage);
            match out {
                Outgoing::Post { extra, .. } => {
                    for (name, value) in extra {
                        headers.insert(name.clone(), value.clone());
                    }
                    headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_BOTH));
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                Outgoing::Get { last_event_id } => {
                    headers.insert(ACCEPT, HeaderValue::from_static(EVENT_STREAM));
                    if let Some(v) = last_event_id
                        .as_deref()
                        .and_then(|l| HeaderValue::from_str(l).ok())
                    {
                        headers.insert(HeaderName::from_static("last-event-id"), v);
                    }
                }
                Outgoing::Delete => {
                    headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_BOTH));
                }
            }
        }
        let body = match out {
            Outgoing::Post { body, .. } => body.clone(),
            Outgoing::Get { .. } | Outgoing::Delete => Bytes::new(),
        };
        req.body(Full::new(body)).map_err(|e| {
            TransportError::Protocol(format!(
                "cannot build a request for {}: {e}",
                crate::config::redacted(url)
            ))
        })
    }

    /// Sends one request as it is (no redirect is followed).
    pub(crate) async fn send(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, TransportError> {
        // Named in the error only, so kept as the URI (cheap to clone) and
        // written out only when the request fails.
        let uri = req.uri().clone();
        self.client
            .request(req)
            .await
            .map_err(|e| failure::client_error(e, &failure::target(&uri)))
    }

    /// Sends `out` to `url` and returns the answer, whatever its status,
    /// after asking the token provider for a new token on 401 (once) and
    /// for a wider one on 403 `insufficient_scope` (at most twice). This is
    /// the one place that reads `WWW-Authenticate` for a retry.
    pub(crate) async fn exchange(
        &self,
        url: &Url,
        out: &Outgoing,
    ) -> Result<Response<Incoming>, TransportError> {
        let (mut refreshed, mut step_ups) = (false, 0);
        loop {
            let resp = self.send(self.build(url, out)?).await?;
            let Credentials::Provider(provider) = &self.settings.credentials else {
                return Ok(resp);
            };
            let status = resp.status();
            let www = www_authenticate(resp.headers()).unwrap_or_default();
            let challenge = AuthChallenge::parse(status.as_u16(), &www);
            let step_up = status == StatusCode::FORBIDDEN
                && challenge.error.as_deref() == Some("insufficient_scope");
            let unauthorized = status == StatusCode::UNAUTHORIZED;
            if !((unauthorized && !refreshed) || (step_up && step_ups < MAX_STEP_UPS)) {
                return Ok(resp);
            }
            if unauthorized {
                refreshed = true;
            } else {
                step_ups += 1;
            }
            let (status, headers, body) = split(resp).await;
            match provider.refresh(&challenge).await.map(|t| bearer(&t)) {
                Some(Ok(token)) => *self.token.lock() = Some(token),
                Some(Err(_)) | None => return Err(status_error(status, &headers, &body)),
            }
        }
    }

    /// Makes a message ready to POST: serialises it once and notes what
    /// its exchange needs (an `initialize`'s params, a stateless request's
    /// headers). Done by the send half itself, so that the exchange task
    /// needs no copy of the message.
    pub(crate) fn prepare(&self, msg: &Message) -> Prepared {
        let kind = Kind::of(msg);
        let stage = match (&kind, msg) {
            (Kind::Initialize(id), Message::Request(r)) => {
                self.session.remember_initialize(id, r.params.as_ref());
                Stage::Initialize
            }
            _ => Stage::Established,
        };
        // A stateless request: its headers, and no session machinery.
        let stateless = match msg {
            Message::Request(r) => self.tools.stateless_headers(r),
            _ => None,
        };
        let is_stateless = stateless.is_some();
        let notice = match kind {
            Kind::Initialized | Kind::Other => Some(method(msg).to_owned()),
            Kind::Initialize(_) | Kind::Request(_) => None,
        };
        Prepared {
            post: Outgoing::Post {
                body: Bytes::from(msg.to_vec()),
                stage,
                extra: stateless.unwrap_or_default(),
            },
            kind,
            stateless: is_stateless,
            notice,
        }
    }

    /// POSTs one message and handles its answer.
    pub(crate) async fn deliver(self: &Arc<Self>, msg: &Message) -> Result<(), Failure> {
        self.deliver_prepared(&self.prepare(msg), None).await
    }

    /// POSTs one prepared message and handles its answer; a request run by
    /// its caller keeps its response in `direct`.
    pub(crate) async fn deliver_prepared(
        self: &Arc<Self>,
        p: &Prepared,
        mut direct: Option<&mut Direct>,
    ) -> Result<(), Failure> {
        let (kind, post, is_stateless) = (&p.kind, &p.post, p.stateless);
        let mut renewed = false;
        loop {
            let sent_session = self.session.id();
            let url = self.post_url();
            let answer = self.exchange(&url, post);
            let resp = match kind {
                // Bounded by the request's own timeout: the engine cancels
                // it, which drops this exchange.
                Kind::Initialize(_) | Kind::Request(_) => answer.await?,
                Kind::Initialized | Kind::Other => {
                    let after = self.settings.response_timeout;
                    tokio::time::timeout(after, answer).await.map_err(|_| {
                        TransportError::Timeout {
                            what: format!(
                                "the server's answer to a POSTed `{}`",
                                p.notice.as_deref().unwrap_or("message")
                            ),
                            after,
                        }
                    })??
                }
            };
            let status = resp.status();
            let legacy = self.session.is_legacy();
            let initialize = matches!(kind, Kind::Initialize(_));
            if is_stateless {
                return self.settle(resp, kind, true, direct).await;
            }
            if status == StatusCode::NOT_FOUND
                && sent_session.is_some()
                && !renewed
                && !initialize
                && !legacy
            {
                // The session expired. Start a fresh one, then send this
                // message once more.
                tracing::info!("the server ended the session (404); starting a new one");
                self.renew_session(sent_session.as_ref()).await?;
                if matches!(kind, Kind::Initialized) {
                    return Ok(()); // the fresh session sent its own (once)
                }
                renewed = true;
                continue;
            }
            if initialize
                && !legacy
                && self.settings.mode == HttpMode::Auto
                && matches!(status.as_u16(), 400 | 404 | 405)
            {
                // An old server: use HTTP+SSE.
                tracing::info!(%status, "initialize was refused; trying the HTTP+SSE transport");
                self.open_legacy().await?;
                return Box::pin(self.deliver_prepared(p, direct.as_deref_mut())).await;
            }
            return self.settle(resp, kind, false, direct).await;
        }
    }

    /// Handles the answer to a POSTed message.
    async fn settle(
        self: &Arc<Self>,
        resp: Response<Incoming>,
        kind: &Kind,
        stateless: bool,
        mut direct: Option<&mut Direct>,
    ) -> Result<(), Failure> {
        let status = resp.status();
        if !status.is_success() {
            return self.refusal(resp, kind, stateless, direct).await;
        }
        if matches!(kind, Kind::Initialize(_)) {
            self.session.set_id(resp.headers().get(SESSION_HEADER));
        }
        if self.session.is_legacy() {
            return Ok(()); // the answer comes on the legacy stream
        }
        let content = Content::of(&resp);
        match (content, kind.request_id()) {
            (Content::EventStream, _) => {
                let id = kind.request_id().cloned();
                return self
                    .read_reply_stream(resp.into_body(), id, kind, stateless, direct)
                    .await;
            }
            (Content::Json, _) => {
                let body = read_body(resp.into_body(), self.settings.max_message_size)
                    .await
                    .map_err(|e| kind.failure(e))?;
                match messages(&body) {
                    Ok(msgs) => {
                        for m in msgs {
                            self.hand_on(m, direct.as_deref_mut()).await;
                        }
                    }
                    Err(e) if kind.request_id().is_some() => {
                        return Err(kind.failure(TransportError::Protocol(format!(
                            "the reply is not JSON-RPC: {e}"
                        ))));
                    }
                    Err(e) => violation(&e, &body),
                }
            }
            (Content::Missing | Content::Other(_), None) => {} // 202 to a notification
            (Content::Missing | Content::Other(_), Some(_)) => {
                return Err(kind.failure(unexpected(resp).await));
            }
        }
        if matches!(kind, Kind::Initialized) {
            self.open_get_stream().await;
        }
        Ok(())
    }

    /// A POST that got anything but 2xx. 401, 403 and 5xx other than 503
    /// end the link; 429 and 503 (busy: retry later) and anything else fail
    /// the request alone, unless the server sent a JSON-RPC answer, which is
    /// passed on. On `initialize` and on notifications everything ends the
    /// link (there is no request to fail alone).
    ///
    /// A stateless request's refusal that carries a JSON-RPC error with a
    /// null id (many servers answer a request they cannot read so) is that
    /// request's error.
    async fn refusal(
        &self,
        resp: Response<Incoming>,
        kind: &Kind,
        stateless: bool,
        mut direct: Option<&mut Direct>,
    ) -> Result<(), Failure> {
        let (status, headers, body) = split(resp).await;
        let error = status_error(status, &headers, &body);
        match status.as_u16() {
            401 | 403 => Err(Failure::Link(error)),
            429 | 503 => Err(kind.failure(error)),
            500..=599 => Err(Failure::Link(error)),
            _ => {
                if let Ok(mut msgs) = messages(&body) {
                    if let (true, Some(id), [Message::Response(r)]) =
                        (stateless, kind.request_id(), msgs.as_mut_slice())
                    {
                        if r.id.is_none() {
                            r.id = Some(id.clone());
                        }
                    }
                    let answers = msgs.iter().any(|m| {
                        matches!((m, kind.request_id()), (Message::Response(r), Some(id)) if r.id.as_ref() == Some(id))
                    });
                    if answers {
                        for m in msgs {
                            self.hand_on(m, direct.as_deref_mut()).await;
                        }
                        return Ok(());
                    }
                }
                Err(kind.failure(error))
            }
        }
    }
}

fn method(msg: &Message) -> &str {
    match msg {
        Message::Request(r) => &r.method,
        Message::Notification(n) => &n.method,
        Message::Response(_) => "response",
    }
}
