//! The wire form of messages: reading JSON text into a [`Message`] (one
//! pass, then a check of which kind it is) and writing one back.

use serde::de::Deserializer;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::{
    JsonRpcError, Message, Notification, RawMembers, Request, RequestId, Response, ResponsePayload,
};

/// One message from JSON text ([`Message::from_slice`]).
pub(super) fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
    let raw: RawMessage = serde_json::from_slice(bytes).map_err(ParseError::from_json)?;
    raw.classify()
}

/// A frame of incoming text: one message or a batch (JSON-RPC arrays, which
/// only protocol version 2025-03-26 allowed).
#[derive(Debug)]
pub enum Frame {
    /// A single message.
    Single(Message),
    /// A batch, in order. Elements that failed to parse are reported in place.
    Batch(Vec<Result<Message, ParseError>>),
}

/// Parses a frame: a single message or a JSON array of messages.
pub fn parse_frame(bytes: &[u8]) -> Result<Frame, ParseError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let items: Vec<Box<RawValue>> =
            serde_json::from_slice(bytes).map_err(ParseError::from_json)?;
        Ok(Frame::Batch(
            items
                .iter()
                .map(|raw| Message::from_slice(raw.get().as_bytes()))
                .collect(),
        ))
    } else {
        Message::from_slice(bytes).map(Frame::Single)
    }
}

/// Why incoming text is not a JSON-RPC message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The text is not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The JSON is not a JSON-RPC 2.0 message.
    #[error("not a JSON-RPC 2.0 message: {0}")]
    NotJsonRpc(String),
}

impl ParseError {
    fn from_json(e: serde_json::Error) -> Self {
        if e.is_data() {
            ParseError::NotJsonRpc(e.to_string())
        } else {
            ParseError::NotJson(e.to_string())
        }
    }
}

/// The wire form, read in one pass; [`RawMessage::classify`] decides the kind.
#[derive(Deserialize)]
struct RawMessage {
    jsonrpc: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Option<RequestId>>,
    method: Option<String>,
    params: Option<Value>,
    result: Option<Box<RawValue>>,
    error: Option<JsonRpcError>,
}

/// Tells `"id": null` (Some(None)) apart from a missing id (None).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<RequestId>>, D::Error> {
    Option::<RequestId>::deserialize(d).map(Some)
}

impl RawMessage {
    fn classify(self) -> Result<Message, ParseError> {
        match self.jsonrpc.as_deref().map(RawValue::get) {
            Some("\"2.0\"") => {}
            Some(other) => {
                return Err(ParseError::NotJsonRpc(format!(
                    "jsonrpc is {other}, not \"2.0\""
                )))
            }
            None => return Err(ParseError::NotJsonRpc("missing \"jsonrpc\"".into())),
        }
        let bad = |why: &str| Err(ParseError::NotJsonRpc(why.to_owned()));
        match (self.method, self.result, self.error) {
            (Some(method), None, None) => match self.id {
                None => Ok(Message::Notification(Notification {
                    method,
                    params: self.params,
                })),
                Some(Some(id)) => Ok(Message::Request(Request::new(id, method, self.params))),
                Some(None) => bad("a request id must not be null"),
            },
            (None, Some(result), None) => match self.id {
                Some(Some(id)) => Ok(Message::Response(Response {
                    id: Some(id),
                    payload: ResponsePayload::Result(result),
                })),
                _ => bad("a result needs an id"),
            },
            (None, None, Some(error)) => Ok(Message::Response(Response {
                id: self.id.flatten(),
                payload: ResponsePayload::Error(error),
            })),
            (None, None, None) => bad("neither method, result nor error"),
            _ => bad("more than one of method, result and error"),
        }
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("jsonrpc", "2.0")?;
        match self {
            Message::Request(r) => {
                map.serialize_entry("id", &r.id)?;
                map.serialize_entry("method", &r.method)?;
                match (&r.params, r.raw.0.is_empty()) {
                    (Some(p), true) => map.serialize_entry("params", p)?,
                    (None, true) => {}
                    // Raw members need an object to live in; params that are
                    // not one (an array) keep their form and the raw
                    // members are dropped.
                    (Some(p), false) if !p.is_object() => map.serialize_entry("params", p)?,
                    (params, false) => map.serialize_entry(
                        "params",
                        &ParamsWithRaw {
                            params: params.as_ref(),
                            raw: &r.raw,
                        },
                    )?,
                }
            }
            Message::Notification(n) => {
                map.serialize_entry("method", &n.method)?;
                if let Some(p) = &n.params {
                    map.serialize_entry("params", p)?;
                }
            }
            Message::Response(r) => {
                match &r.id {
                    Some(id) => map.serialize_entry("id", id)?,
                    None => map.serialize_entry("id", &Value::Null)?,
                }
                match &r.payload {
                    ResponsePayload::Result(v) => map.serialize_entry("result", v)?,
                    ResponsePayload::Error(e) => map.serialize_entry("error", e)?,
                }
            }
        }
        map.end()
    }
}

/// `params` with the raw members written after its own (which lose a
/// member of the same name).
struct ParamsWithRaw<'a> {
    params: Option<&'a Value>,
    raw: &'a RawMembers,
}

impl Serialize for ParamsWithRaw<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(Value::Object(members)) = self.params {
            for (k, v) in members {
                if !self.raw.0.iter().any(|(raw, _)| raw == k) {
                    map.serialize_entry(k, v)?;
                }
            }
        }
        for (k, v) in &self.raw.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}
