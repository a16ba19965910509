//! JSON-RPC 2.0 messages as MCP uses them.
//!
//! Incoming text is parsed once into a [`Message`]. Result payloads stay raw
//! ([`RawValue`]) until a caller asks for a concrete type, so routing a response
//! costs one parse of the envelope and no copy of the payload into a tree.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

mod wire;

pub use wire::{parse_frame, Frame, ParseError};

/// The id of a JSON-RPC request: an integer or a string, never null.
///
/// The two kinds never compare equal: `1` and `"1"` are different ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestId {
    /// An integer id.
    Int(i64),
    /// A string id.
    Str(String),
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Int(n) => write!(f, "{n}"),
            RequestId::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<i64> for RequestId {
    fn from(n: i64) -> Self {
        RequestId::Int(n)
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        RequestId::Str(s.to_owned())
    }
}

impl Serialize for RequestId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RequestId::Int(n) => s.serialize_i64(*n),
            RequestId::Str(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl de::Visitor<'_> for IdVisitor {
            type Value = RequestId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RequestId, E> {
                Ok(RequestId::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RequestId, E> {
                i64::try_from(v)
                    .map(RequestId::Int)
                    .map_err(|_| E::custom("request id out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RequestId, E> {
                Ok(RequestId::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<RequestId, E> {
                Ok(RequestId::Str(v))
            }
        }
        d.deserialize_any(IdVisitor)
    }
}

/// The `error` member of a JSON-RPC error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonRpcError {
    /// The error code (see the constants in [`codes`]).
    pub code: i64,
    /// A short description.
    pub message: String,
    /// Extra data the peer attached, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl JsonRpcError {
    /// A new error with no data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        JsonRpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// `-32601 Method not found` for `method`.
    pub fn method_not_found(method: &str) -> Self {
        JsonRpcError::new(
            codes::METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )
    }

    /// `-32602 Invalid params`.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        JsonRpcError::new(codes::INVALID_PARAMS, message)
    }

    /// `-32603 Internal error`.
    pub fn internal(message: impl Into<String>) -> Self {
        JsonRpcError::new(codes::INTERNAL_ERROR, message)
    }
}

impl fmt::Display for JsonRpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl std::error::Error for JsonRpcError {}

/// JSON-RPC and MCP error codes.
pub mod codes {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal JSON-RPC error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// MCP: resource not found (2024-11-05 to 2025-11-25).
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// MCP 2025-11-25: URL elicitation required.
    pub const URL_ELICITATION_REQUIRED: i64 = -32042;
}

/// A request: it expects exactly one response with the same id.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The request id.
    pub id: RequestId,
    /// The method name.
    pub method: String,
    /// The parameters, if any.
    pub params: Option<Value>,
    /// Members of `params` written exactly as a peer sent them (a server's
    /// `requestState`, echoed back byte for byte); empty for most requests.
    raw: RawMembers,
}

impl Request {
    /// A request with no raw members.
    pub fn new(id: impl Into<RequestId>, method: impl Into<String>, params: Option<Value>) -> Self {
        Request {
            id: id.into(),
            method: method.into(),
            params,
            raw: RawMembers::default(),
        }
    }

    /// Adds the member `key` to `params`, written exactly as `value` is
    /// (never parsed or re-serialised), after the members of
    /// [`params`](Self::params) and replacing one of the same name there.
    /// Used to echo a server's opaque value back unchanged.
    ///
    /// The one exception: a value whose text holds a line break (possible
    /// only in the whitespace of an object or array, never in a string) is
    /// written in its compact form, since a raw line break would end the
    /// message on a line-delimited transport.
    pub fn with_raw_param(mut self, key: impl Into<String>, value: Box<RawValue>) -> Self {
        let key = key.into();
        let text = value.get().as_bytes();
        let value = if text.contains(&b'\n') || text.contains(&b'\r') {
            serde_json::from_str::<Value>(value.get())
                .ok()
                .and_then(|v| serde_json::value::to_raw_value(&v).ok())
                .unwrap_or(value)
        } else {
            value
        };
        self.raw.0.retain(|(k, _)| *k != key);
        self.raw.0.push((key, value));
        self
    }

    /// The raw member `key` added by [`with_raw_param`](Self::with_raw_param).
    pub fn raw_param(&self, key: &str) -> Option<&RawValue> {
        self.raw.0.iter().find(|(k, _)| k == key).map(|(_, v)| &**v)
    }
}

/// The raw members of a request's `params`, in order.
#[derive(Debug, Clone, Default)]
struct RawMembers(Vec<(String, Box<RawValue>)>);

impl PartialEq for RawMembers {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|((k, v), (k2, v2))| k == k2 && v.get() == v2.get())
    }
}

/// A notification: no id, never answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The method name.
    pub method: String,
    /// The parameters, if any.
    pub params: Option<Value>,
}

/// A response: a result or an error for the request with the same id.
#[derive(Debug, Clone)]
pub struct Response {
    /// The id of the request this answers; `None` only for an error about a
    /// request whose id could not be read.
    pub id: Option<RequestId>,
    /// The outcome.
    pub payload: ResponsePayload,
}

/// What a [`Response`] carries.
#[derive(Debug, Clone)]
pub enum ResponsePayload {
    /// A successful result, still unparsed.
    Result(Box<RawValue>),
    /// An error.
    Error(JsonRpcError),
}

impl PartialEq for ResponsePayload {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ResponsePayload::Result(a), ResponsePayload::Result(b)) => a.get() == b.get(),
            (ResponsePayload::Error(a), ResponsePayload::Error(b)) => a == b,
            _ => false,
        }
    }
}

impl PartialEq for Response {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.payload == other.payload
    }
}

impl Response {
    /// A successful response carrying `result`.
    pub fn result(id: RequestId, result: &impl Serialize) -> Result<Self, serde_json::Error> {
        Ok(Response {
            id: Some(id),
            payload: ResponsePayload::Result(serde_json::value::to_raw_value(result)?),
        })
    }

    /// An error response.
    pub fn error(id: Option<RequestId>, error: JsonRpcError) -> Self {
        Response {
            id,
            payload: ResponsePayload::Error(error),
        }
    }

    /// The result parsed as a [`Value`], or the error.
    pub fn into_value(self) -> Result<Value, JsonRpcError> {
        match self.payload {
            ResponsePayload::Result(raw) => serde_json::from_str(raw.get())
                .map_err(|e| JsonRpcError::internal(format!("unreadable result: {e}"))),
            ResponsePayload::Error(e) => Err(e),
        }
    }
}

/// One JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A notification.
    Notification(Notification),
    /// A response (result or error).
    Response(Response),
}

impl Message {
    /// A request message.
    pub fn request(
        id: impl Into<RequestId>,
        method: impl Into<String>,
        params: Option<Value>,
    ) -> Self {
        Message::Request(Request::new(id, method, params))
    }

    /// A notification message.
    pub fn notification(method: impl Into<String>, params: Option<Value>) -> Self {
        Message::Notification(Notification {
            method: method.into(),
            params,
        })
    }

    /// The method name, for requests and notifications.
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request(r) => Some(&r.method),
            Message::Notification(n) => Some(&n.method),
            Message::Response(_) => None,
        }
    }

    /// Serialises the message as compact JSON (no raw newline inside).
    pub fn to_vec(&self) -> Vec<u8> {
        // Serialising these types cannot fail: every map key is a string and
        // every payload is already valid JSON.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Appends the compact JSON form of the message to `buf`.
    pub fn write_to(&self, buf: &mut Vec<u8>) {
        // See `to_vec`: writing into a Vec cannot fail for these types.
        let _ = serde_json::to_writer(&mut *buf, self);
    }

    /// Parses one message from JSON text.
    pub fn from_slice(bytes: &[u8]) -> Result<Message, ParseError> {
        wire::parse(bytes)
    }

    /// Parses one message from a JSON value.
    pub fn from_value(value: Value) -> Result<Message, ParseError> {
        let text = value.to_string();
        Message::from_slice(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {

    /// Found by the `jsonrpc` fuzz target: without serde_json's exact float
    /// parsing, a large number drifted by one unit in the last place each
    /// time a message was parsed and written again.
    #[test]
    fn numbers_survive_parse_and_serialise_unchanged() {
        let text = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1888888888888888888888888888888888888888888888888888888888888888888888888.5}}"#;
        let once = Message::from_slice(text.as_bytes())
            .expect("parses")
            .to_vec();
        let twice = Message::from_slice(&once).expect("parses again").to_vec();
        assert_eq!(
            String::from_utf8_lossy(&once),
            String::from_utf8_lossy(&twice)
        );
    }

    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Message, ParseError> {
        Message::from_slice(v.to_string().as_bytes())
    }

    #[test]
    fn raw_params_are_written_as_given_and_replace_their_namesake() {
        let raw = |t: &str| RawValue::from_string(t.to_owned()).expect("valid JSON");
        let req = Request::new(1, "m", Some(json!({"a": 1, "s": "old"})))
            .with_raw_param("s", raw(r#""\u00e9""#));
        let text = String::from_utf8(Message::Request(req.clone()).to_vec()).expect("utf8");
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1,"s":"\u00e9"}}"#
        );
        assert_eq!(req.raw_param("s").map(RawValue::get), Some(r#""\u00e9""#));
        // No params: the raw members make them.
        let req = Request::new(2, "m", None).with_raw_param("s", raw("7"));
        let text = String::from_utf8(Message::Request(req).to_vec()).expect("utf8");
        assert!(text.ends_with(r#""params":{"s":7}}"#), "{text}");
        // Array params cannot hold them: left as they are.
        let req = Request::new(3, "m", Some(json!([1]))).with_raw_param("s", raw("7"));
        let text = String::from_utf8(Message::Request(req).to_vec()).expect("utf8");
        assert!(text.ends_with(r#""params":[1]}"#), "{text}");
    }

    #[test]
    fn integer_and_string_ids_differ() {
        // `7` never matches `"7"`.
        assert_ne!(RequestId::Int(7), RequestId::Str("7".into()));
        let Ok(Message::Response(a)) = parse(json!({"jsonrpc":"2.0","id":7,"result":{}})) else {
            panic!("not a response")
        };
        let Ok(Message::Response(b)) = parse(json!({"jsonrpc":"2.0","id":"7","result":{}})) else {
            panic!("not a response")
        };
        assert_eq!(a.id, Some(RequestId::Int(7)));
        assert_eq!(b.id, Some(RequestId::Str("7".into())));
    }

    #[test]
    fn classifies_every_kind() {
        assert!(matches!(
            parse(json!({"jsonrpc":"2.0","id":1,"method":"ping"})),
            Ok(Message::Request(Request {
                id: RequestId::Int(1),
                ..
            }))
        ));
        assert!(matches!(
            parse(json!({"jsonrpc":"2.0","method":"notifications/initialized"})),
            Ok(Message::Notification(_))
        ));
        let err = parse(json!({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}));
        assert!(matches!(
            err,
            Ok(Message::Response(Response { id: None, .. }))
        ));
    }

    #[test]
    fn rejects_what_is_not_json_rpc() {
        assert!(matches!(
            Message::from_slice(b"hello"),
            Err(ParseError::NotJson(_))
        ));
        for bad in [
            json!({"id":1,"method":"x"}),
            json!({"jsonrpc":"1.0","id":1,"method":"x"}),
            json!({"jsonrpc":"2.0","id":null,"method":"x"}),
            json!({"jsonrpc":"2.0","result":{}}),
            json!({"jsonrpc":"2.0","id":1}),
            json!({"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":""}}),
            json!({"jsonrpc":"2.0","id":1.5,"result":{}}),
            json!([1, 2]),
        ] {
            assert!(
                matches!(parse(bad.clone()), Err(ParseError::NotJsonRpc(_))),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn round_trips_and_keeps_results_raw() {
        let text = r#"{"jsonrpc":"2.0","id":"a","result":{"z":1,"a":[true,null]}}"#;
        let msg = Message::from_slice(text.as_bytes()).expect("parses");
        assert_eq!(String::from_utf8(msg.to_vec()).expect("utf8"), text);
        let req = Message::request(3, "tools/call", Some(json!({"name":"echo"})));
        assert_eq!(
            Message::from_slice(&req.to_vec()).expect("parses"),
            req,
            "a request survives a round trip"
        );
        let note = Message::notification("notifications/initialized", None);
        assert!(!String::from_utf8(note.to_vec())
            .expect("utf8")
            .contains("\"id\""));
    }

    #[test]
    fn batches_are_split_in_order() {
        let text = br#"[{"jsonrpc":"2.0","id":1,"result":{}}, 5, {"jsonrpc":"2.0","method":"x"}]"#;
        let Ok(Frame::Batch(items)) = parse_frame(text) else {
            panic!("not a batch")
        };
        assert_eq!(items.len(), 3);
        assert!(matches!(items[0], Ok(Message::Response(_))));
        assert!(items[1].is_err());
        assert!(matches!(items[2], Ok(Message::Notification(_))));
    }
}
