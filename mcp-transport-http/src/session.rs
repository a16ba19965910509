//! The state of one link's session, under one lock: the session id, the
//! negotiated version, the `initialize` request (to start afresh after a
//! 404), whether a GET stream is wanted, and where messages go (the
//! Streamable HTTP URL, or the legacy transport's endpoint).

use parking_lot::{Mutex, MutexGuard};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use mcp_conn_core::jsonrpc::{Message, RequestId};
use mcp_conn_core::TransportError;
use serde_json::Value;
use url::Url;

use crate::answer::read_at_most;
use crate::exchange::{Content, Outgoing};
use crate::stream::{EventStream, StreamItem};

/// The session header (`Mcp-Session-Id`; header names are case-insensitive).
pub const SESSION_HEADER: &str = "mcp-session-id";
/// The protocol-version header sent after `initialize`.
pub const VERSION_HEADER: &str = "mcp-protocol-version";

/// Which headers of the session a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// `initialize`: no protocol version yet (and no session, which it is
    /// about to get).
    Initialize,
    /// Anything after it: session id and version, when known.
    Established,
}

/// How this link talks. `Debug` shows no query: a legacy endpoint's query
/// usually holds its session id.
#[derive(Clone)]
pub(crate) enum Wire {
    /// Streamable HTTP: everything goes to the configured URL.
    Streamable,
    /// The 2024-11-05 transport: POSTs go to the `endpoint` the server
    /// named; no session headers.
    Legacy {
        /// Where to POST.
        endpoint: Url,
    },
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wire::Streamable => f.write_str("Streamable"),
            Wire::Legacy { endpoint } => f
                .debug_struct("Legacy")
                .field("endpoint", &crate::config::redacted(endpoint))
                .finish(),
        }
    }
}

/// The optional GET stream's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GetStream {
    /// Nothing can arrive unasked (or the handshake is not done).
    NotWanted,
    /// Wanted and not yet opened for this session.
    Wanted,
    /// Opened (or being opened) for this session.
    Started,
}

#[derive(Debug)]
struct State {
    id: Option<HeaderValue>,
    version: Option<HeaderValue>,
    init_params: Option<Value>,
    init_id: Option<RequestId>,
    get_stream: GetStream,
    wire: Wire,
}

/// One link's session. The lock is a `std` mutex, never held across an
/// `.await`: every method takes it, reads or writes, and lets go.
#[derive(Debug)]
pub(crate) struct Session {
    state: Mutex<State>,
    /// Serialises session renewal (see [`Session::renewal`]).
    renewal: tokio::sync::Mutex<()>,
}

impl Session {
    pub(crate) fn new() -> Self {
        Session {
            state: Mutex::new(State {
                id: None,
                version: None,
                init_params: None,
                init_id: None,
                get_stream: GetStream::NotWanted,
                wire: Wire::Streamable,
            }),
            renewal: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// The session id, if the server gave one.
    pub(crate) fn id(&self) -> Option<HeaderValue> {
        self.state().id.clone()
    }

    /// Stores the session id from an `initialize` answer (or forgets it),
    /// marked sensitive so that `Debug` and logs never show it. Every
    /// session id is stored here, the first and every renewed one.
    pub(crate) fn set_id(&self, id: Option<&HeaderValue>) {
        let id = id.cloned().map(|mut v| {
            v.set_sensitive(true);
            v
        });
        self.state().id = id;
    }

    /// Where and how messages go now.
    pub(crate) fn wire(&self) -> Wire {
        self.state().wire.clone()
    }

    pub(crate) fn is_legacy(&self) -> bool {
        matches!(self.state().wire, Wire::Legacy { .. })
    }

    /// From now on, POST to the legacy `endpoint`.
    pub(crate) fn switch_to_legacy(&self, endpoint: Url) {
        self.state().wire = Wire::Legacy { endpoint };
    }

    /// Adds the session's headers for a request at `stage` (none on the
    /// legacy transport).
    pub(crate) fn apply(&self, headers: &mut HeaderMap, stage: Stage) {
        let state = self.state();
        if matches!(state.wire, Wire::Legacy { .. }) {
            return;
        }
        if let Some(id) = &state.id {
            headers.insert(HeaderName::from_static(SESSION_HEADER), id.clone());
        }
        if let (Stage::Established, Some(v)) = (stage, &state.version) {
            headers.insert(HeaderName::from_static(VERSION_HEADER), v.clone());
        }
    }

    /// Remembers an `initialize` request: its id (to recognise its answer)
    /// and its params (to start a fresh session after a 404).
    pub(crate) fn remember_initialize(&self, id: &RequestId, params: Option<&Value>) {
        let mut state = self.state();
        state.init_id = Some(id.clone());
        state.init_params = params.cloned();
    }

    /// Reads the `initialize` result as it passes (only that response is
    /// parsed): the negotiated version, and whether a GET stream is wanted.
    pub(crate) fn note_initialize_result(&self, msg: &Message) {
        let Message::Response(r) = msg else { return };
        let mut state = self.state();
        if r.id.is_none() || r.id != state.init_id {
            return;
        }
        let Ok(v) = r.clone().into_value() else {
            return;
        };
        if let Some(version) = v.get("protocolVersion").and_then(Value::as_str) {
            state.version = HeaderValue::from_str(version).ok();
        }
        // The standalone GET stream is optional: open it only when the server
        // can send something unasked (notifications it declared, or requests
        // to capabilities the client declared).
        let caps = &v["capabilities"];
        let server_talks = caps.get("logging").is_some()
            || ["tools", "prompts", "resources"]
                .iter()
                .any(|k| caps[k]["listChanged"] == true)
            || caps["resources"]["subscribe"] == true;
        let client_listens = state
            .init_params
            .as_ref()
            .and_then(|p| p["capabilities"].as_object())
            .is_some_and(|c| {
                ["roots", "sampling", "elicitation"]
                    .iter()
                    .any(|k| c.contains_key(*k))
            });
        if server_talks || client_listens {
            state.get_stream = GetStream::Wanted;
        }
    }

    /// Whether the caller should open the GET stream now (wanted, on
    /// Streamable HTTP, not yet opened); marks it opened.
    pub(crate) fn claim_get_stream(&self) -> bool {
        let mut state = self.state();
        if matches!(state.wire, Wire::Legacy { .. }) || state.get_stream != GetStream::Wanted {
            return false;
        }
        state.get_stream = GetStream::Started;
        true
    }

    /// Starts over after the server forgot the session `expired`: returns
    /// the `initialize` params to send again, or `None` when the session
    /// has already been renewed by someone else.
    pub(crate) fn begin_renewal(&self, expired: Option<&HeaderValue>) -> Option<Option<Value>> {
        let mut state = self.state();
        if state.id.as_ref() != expired {
            return None;
        }
        state.id = None;
        if state.get_stream == GetStream::Started {
            state.get_stream = GetStream::Wanted;
        }
        Some(state.init_params.clone())
    }

    /// The gate of session renewal.
    ///
    /// It is an async mutex held across the awaits of re-initialising (a
    /// POST of `initialize`, reading its answer, a POST of `initialized`):
    /// when many requests get 404 at once, exactly one of them starts a new
    /// session and the others wait for it and then retry with the new id.
    /// Nothing simpler is correct: an atomic flag would make the others
    /// retry before the new session exists (and get 404 again), and a
    /// shared future would need the same exclusion to be started once. It
    /// guards an operation, not data (the session state has its own `std`
    /// lock, never held across an await), and it is never taken while
    /// holding it, so it cannot deadlock; a waiter that is cancelled simply
    /// stops waiting.
    pub(crate) async fn renewal(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.renewal.lock().await
    }
}

/// Session renewal: the server forgot the session (404), so the link
/// starts a fresh one, transparently to the engine.
impl crate::link::Shared {
    /// `initialize` again without a session id (the stored params), then
    /// `notifications/initialized`, then the GET stream if wanted. When
    /// several requests find the session expired at once, one renews it and
    /// the others find it renewed.
    pub(crate) async fn renew_session(
        self: &std::sync::Arc<Self>,
        expired: Option<&HeaderValue>,
    ) -> Result<(), TransportError> {
        let _gate = self.session.renewal().await;
        let Some(params) = self.session.begin_renewal(expired) else {
            return Ok(()); // someone else already did it
        };
        let url = self.settings.url.clone();
        let init = Message::request(
            RequestId::Str("mcp-conn-reinitialize".into()),
            "initialize",
            params,
        );
        let post = Outgoing::Post {
            body: init.to_vec().into(),
            stage: Stage::Initialize,
            extra: Vec::new(),
        };
        let resp = self.exchange(&url, &post).await?;
        if !resp.status().is_success() {
            return Err(crate::answer::refused(resp).await);
        }
        self.session.set_id(resp.headers().get(SESSION_HEADER));
        // The answer is ours, not the engine's: read it and drop it.
        if Content::of(&resp) == Content::EventStream {
            let mut stream = EventStream::new(
                resp.into_body(),
                self.settings.idle_stream_timeout,
                self.settings.max_message_size,
            );
            loop {
                match stream.next().await? {
                    Some(StreamItem::Messages(_)) | None => break,
                    Some(StreamItem::Control(_)) => {}
                }
            }
        } else {
            let _ = read_at_most(resp.into_body(), self.settings.max_message_size).await;
        }
        let note = Message::notification("notifications/initialized", None);
        let post = Outgoing::Post {
            body: note.to_vec().into(),
            stage: Stage::Established,
            extra: Vec::new(),
        };
        let resp = self.exchange(&url, &post).await?;
        if !resp.status().is_success() {
            return Err(crate::answer::refused(resp).await);
        }
        let _ = read_at_most(resp.into_body(), crate::failure::BODY_START).await;
        self.open_get_stream().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stored_session_id_is_sensitive() {
        let s = Session::new();
        s.set_id(Some(&HeaderValue::from_static("sess-0")));
        let first = s.id().expect("stored");
        assert!(first.is_sensitive());
        assert!(!format!("{s:?}").contains("sess-0"), "{s:?}");
        // A renewal forgets it and stores the new one the same way.
        assert_eq!(s.begin_renewal(Some(&first)), Some(None));
        assert_eq!(s.begin_renewal(Some(&first)), None, "renewed once");
        s.set_id(Some(&HeaderValue::from_static("sess-1")));
        assert!(s.id().is_some_and(|v| v.is_sensitive()));
        assert!(!format!("{s:?}").contains("sess-1"));
    }

    #[test]
    fn the_legacy_wire_carries_no_session_headers() {
        let s = Session::new();
        s.set_id(Some(&HeaderValue::from_static("sess-0")));
        let mut h = HeaderMap::new();
        s.apply(&mut h, Stage::Established);
        assert!(h.contains_key(SESSION_HEADER));
        s.switch_to_legacy(Url::parse("http://127.0.0.1/messages?session=s3cr3t").expect("url"));
        let mut h = HeaderMap::new();
        s.apply(&mut h, Stage::Established);
        assert!(h.is_empty());
        assert!(!format!("{s:?}").contains("s3cr3t"), "{s:?}");
    }
}
