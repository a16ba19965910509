//! The stateless era (2026-07-28) in the engine: the `_meta` every request
//! carries, `server/discover`, and multi round-trip requests (`input_required`
//! results answered through the registered handlers).

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::client::Client;
use super::options::RequestOptions;
use crate::era::{meta, DiscoverResult};
use crate::error::Error;
use crate::protocol::{ClientCapabilities, Implementation};
use crate::transport::TransportError;

/// How many `input_required` rounds one call may take before it fails with
/// [`Error::InputRequired`].
pub(crate) const MAX_INPUT_ROUNDS: usize = 8;

/// How many times a request whose reply stream broke is sent again.
const MAX_REISSUES: u32 = 2;

/// What the `_meta` of every stateless request carries.
#[derive(Debug, Clone)]
pub(crate) struct StatelessMeta {
    entries: Map<String, Value>,
    /// The same entries written once, as the whole `_meta` of a request
    /// that has no other (most requests): copied as text into each request
    /// instead of cloning and serialising the map every time.
    raw: Option<Box<RawValue>>,
}

impl StatelessMeta {
    pub(crate) fn new(
        version: &str,
        capabilities: &ClientCapabilities,
        client_info: &Implementation,
    ) -> Self {
        let mut entries = Map::new();
        entries.insert(meta::PROTOCOL_VERSION.into(), Value::from(version));
        entries.insert(
            meta::CLIENT_CAPABILITIES.into(),
            serde_json::to_value(capabilities).unwrap_or_else(|_| Value::Object(Map::new())),
        );
        if let Ok(info) = serde_json::to_value(client_info) {
            entries.insert(meta::CLIENT_INFO.into(), info);
        }
        let raw = serde_json::value::to_raw_value(&entries).ok();
        StatelessMeta { entries, raw }
    }

    /// The whole `_meta` of a request as text, when the request needs no
    /// other entry in it (no `_meta` of the caller's, no progress token, no
    /// log level); `None`: use [`StatelessMeta::apply`].
    pub(crate) fn as_raw(
        &self,
        params: &Option<Value>,
        opts: &RequestOptions,
    ) -> Option<Box<RawValue>> {
        if opts.log_level.is_some() {
            return None;
        }
        match params {
            None => {}
            Some(Value::Object(p)) if !p.contains_key("_meta") => {}
            Some(_) => return None,
        }
        self.raw.clone()
    }

    /// Adds the entries to `params._meta` (creating both when missing),
    /// keeping what the caller put there (e.g. `progressToken`).
    pub(crate) fn apply(&self, params: &mut Option<Value>, opts: &RequestOptions) {
        let obj = params.get_or_insert_with(|| Value::Object(Map::new()));
        let Some(obj) = obj.as_object_mut() else {
            return;
        };
        let m = obj
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = m {
            for (k, v) in &self.entries {
                m.insert(k.clone(), v.clone());
            }
            if let Some(level) = opts.log_level {
                if let Ok(level) = serde_json::to_value(level) {
                    m.insert(meta::LOG_LEVEL.into(), level);
                }
            }
        }
    }
}

/// The part of a result that says whether it is complete (borrowed: read
/// on every stateless result, it copies nothing).
#[derive(Deserialize)]
struct Kind<'a> {
    #[serde(rename = "resultType", borrow)]
    result_type: Option<&'a RawValue>,
}

/// Whether a result asks for input (`"resultType": "input_required"`).
fn input_required(result: &RawValue) -> bool {
    let Ok(Kind {
        result_type: Some(kind),
    }) = serde_json::from_str::<Kind<'_>>(result.get())
    else {
        // Missing (or not an object): complete.
        return false;
    };
    match kind.get() {
        "\"input_required\"" => true,
        // Written with escapes: read it as a string.
        text if text.contains('\\') => {
            serde_json::from_str::<String>(text).is_ok_and(|k| k == "input_required")
        }
        _ => false,
    }
}

/// What the next round carries: `inputResponses` and `requestState`.
type Round = (Map<String, Value>, Option<Box<RawValue>>);

/// An `input_required` result.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InputRequired {
    #[serde(default)]
    input_requests: Map<String, Value>,
    /// Echoed back exactly as the server sent it.
    request_state: Option<Box<RawValue>>,
}

impl Client {
    /// Whether this session speaks the stateless era.
    pub(crate) fn is_stateless(&self) -> bool {
        self.inner.stateless.get().is_some()
    }

    /// `server/discover`: the server's versions, capabilities and
    /// instructions (stateless era; in the handshake era most servers answer
    /// `-32601`).
    pub async fn discover(&self, opts: &RequestOptions) -> Result<DiscoverResult, Error> {
        self.request("server/discover", None, opts).await
    }

    /// Sends a stateless request and, while the server answers
    /// `input_required`, answers its input requests through the registered
    /// handlers and sends the request again (new id, same params, plus
    /// `inputResponses` and the server's `requestState`). Each round starts
    /// from the caller's params: nothing of one call's rounds reaches
    /// another call.
    pub(super) async fn send_with_rounds(
        &self,
        method: &str,
        params: Option<Value>,
        opts: &RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        // The answers and the server's state of the last round.
        let mut round: Option<Round> = None;
        for n in 0..=MAX_INPUT_ROUNDS {
            let mut this = params.clone();
            let mut state = None;
            if let Some((responses, request_state)) = &round {
                let obj = this.get_or_insert_with(|| Value::Object(Map::new()));
                if let Some(obj) = obj.as_object_mut() {
                    obj.insert("inputResponses".into(), Value::Object(responses.clone()));
                    // The server's exact bytes, never parsed: written raw.
                    state = request_state.as_deref();
                }
            }
            let raw = self.send_reissuing(method, this, state, opts).await?;
            if !input_required(&raw) {
                // A missing `resultType` means complete.
                return Ok(raw);
            }
            if n == MAX_INPUT_ROUNDS {
                break;
            }
            let input: InputRequired =
                serde_json::from_str(raw.get()).map_err(|e| Error::Protocol {
                    connection: self.inner.name.clone(),
                    message: format!(
                        "`{method}` returned an unreadable input_required result: {e}"
                    ),
                })?;
            let responses = self
                .answer_inputs(method, input.input_requests, opts)
                .await?;
            round = Some((responses, input.request_state));
        }
        Err(Error::InputRequired {
            connection: self.inner.name.clone(),
            method: method.to_owned(),
            message: format!("the server still asked for input after {MAX_INPUT_ROUNDS} rounds"),
        })
    }

    /// Sends a request; when its reply stream broke (HTTP: the stream
    /// ended or failed before the response; the stateless era cannot resume
    /// it), sends it again with a new id, at most [`MAX_REISSUES`] times,
    /// unless it is a `tools/call`, whose effect may already have happened:
    /// that one fails with [`Error::ReplyLost`] and the caller decides.
    async fn send_reissuing(
        &self,
        method: &str,
        params: Option<Value>,
        request_state: Option<&RawValue>,
        opts: &RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        let mut reissues = 0;
        // A `tools/call` is never sent twice: its params need no copy.
        let once = method == "tools/call";
        let mut params = Some(params);
        loop {
            let stateless = self.inner.stateless.get();
            let this = if once {
                params.take().flatten()
            } else {
                params.clone().flatten()
            };
            match self
                .send_request_as(method, this, request_state, opts, stateless)
                .await
            {
                Err(Error::Transport { source, .. })
                    if matches!(source, TransportError::Io(_) | TransportError::Eof) =>
                {
                    if method == "tools/call" || reissues == MAX_REISSUES {
                        return Err(Error::ReplyLost {
                            connection: self.inner.name.clone(),
                            method: method.to_owned(),
                            reason: source,
                        });
                    }
                    reissues += 1;
                    tracing::info!(connection = %self.inner.name, %method, error = %source, "the reply stream broke; sending the request again with a new id");
                }
                other => return other,
            }
        }
    }

    /// Answers each input request through the handlers, within the request
    /// timeout each.
    async fn answer_inputs(
        &self,
        method: &str,
        requests: Map<String, Value>,
        opts: &RequestOptions,
    ) -> Result<Map<String, Value>, Error> {
        let refuse = |message: String| Error::InputRequired {
            connection: self.inner.name.clone(),
            method: method.to_owned(),
            message,
        };
        let timeout = opts.timeout.unwrap_or(self.inner.request_timeout);
        let mut out = Map::new();
        for (key, request) in requests {
            let Some(input_method) = request.get("method").and_then(Value::as_str) else {
                return Err(refuse(format!("input request {key:?} names no method")));
            };
            if !matches!(
                input_method,
                "elicitation/create" | "sampling/createMessage" | "roots/list"
            ) {
                return Err(refuse(format!(
                    "input request {key:?} asks for `{input_method}`, which is not an input method"
                )));
            }
            let params = request.get("params").cloned();
            let answer =
                tokio::time::timeout(timeout, self.inner.handlers.handle(input_method, params))
                    .await
                    .map_err(|_| {
                        refuse(format!(
                            "the `{input_method}` handler took longer than {timeout:?}"
                        ))
                    })?
                    .map_err(|e| refuse(format!("`{input_method}` could not be answered: {e}")))?;
            out.insert(key, answer);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::input_required;
    use serde_json::value::RawValue;

    #[test]
    fn a_result_asks_for_input_only_when_it_says_so() {
        let asks = |text: &str| {
            let raw = RawValue::from_string(text.to_owned()).expect("JSON");
            input_required(&raw)
        };
        assert!(asks(r#"{"content":[],"resultType":"input_required"}"#));
        assert!(asks(r#"{"resultType":"input\u005frequired"}"#), "escaped");
        assert!(!asks(
            r#"{"content":[{"type":"text","text":"\"input_required\""}]}"#
        ));
        assert!(!asks(r#"{"resultType":"complete"}"#));
        assert!(!asks(r#"{"resultType":null}"#));
        assert!(!asks(r#"{}"#));
        assert!(!asks(r#"[1]"#));
    }
}
