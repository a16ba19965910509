//! The stateless era (2026-07-28) over HTTP: the headers every request
//! carries (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, and the
//! `Mcp-Param-*` headers of a tool's `x-mcp-header` arguments), and the tool
//! schemas they are read from, learnt from `tools/list` results as they pass.
//!
//! A request is stateless when its `_meta` carries
//! `io.modelcontextprotocol/protocolVersion` (the engine adds it to every
//! request of a stateless session); such a request never carries a session
//! id, and a link that sent one POSTs no notifications (the stateless era has
//! none from the client over HTTP: closing a reply stream is the
//! cancellation).

use parking_lot::Mutex;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use http::header::{HeaderName, HeaderValue, InvalidHeaderValue};
use mcp_conn_core::era::{header_value, meta, tool_param_headers};
use mcp_conn_core::jsonrpc::{Message, Request, RequestId};
use serde::Deserialize;
use serde_json::Value;

/// The version a stateless request carries in its `_meta`, if it is one:
/// in its `params`, or in the `_meta` the engine writes as text (see
/// `Request::raw_param`).
pub(crate) fn version_of(req: &Request) -> Option<Cow<'_, str>> {
    if let Some(m) = req.params.as_ref().and_then(|p| p.get("_meta")) {
        return m.get(meta::PROTOCOL_VERSION)?.as_str().map(Cow::Borrowed);
    }
    #[derive(Deserialize)]
    struct Version<'a> {
        // `meta::PROTOCOL_VERSION` (an attribute takes no constant; a test
        // checks they agree). Raw: serde copies an `Option<Cow<str>>`.
        #[serde(rename = "io.modelcontextprotocol/protocolVersion", borrow, default)]
        version: Option<&'a serde_json::value::RawValue>,
    }
    let raw = raw_meta(req)?;
    let version = serde_json::from_str::<Version<'_>>(raw.get())
        .ok()?
        .version?;
    match serde_json::from_str::<&str>(version.get()) {
        Ok(text) => Some(Cow::Borrowed(text)),
        // Escapes: copied once unescaped.
        Err(_) => serde_json::from_str::<String>(version.get())
            .ok()
            .map(Cow::Owned),
    }
}

/// The `_meta` the engine wrote as text, unless the params have one of
/// their own (which is then the request's).
fn raw_meta(req: &Request) -> Option<&serde_json::value::RawValue> {
    let own = req.params.as_ref().and_then(|p| p.get("_meta")).is_some();
    if own {
        None
    } else {
        req.raw_param("_meta")
    }
}

/// The MCP methods a client sends, as static text: their `Mcp-Method`
/// header needs no copy.
fn static_method(method: &str) -> Option<&'static str> {
    const METHODS: &[&str] = &[
        "tools/call",
        "tools/list",
        "resources/read",
        "resources/list",
        "resources/templates/list",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/get",
        "prompts/list",
        "completion/complete",
        "logging/setLevel",
        "ping",
        "server/discover",
        "initialize",
    ];
    METHODS.iter().copied().find(|m| *m == method)
}

/// What the link knows of the server's tools, for their `Mcp-Param-*`
/// headers.
#[derive(Debug, Default)]
pub(crate) struct ToolHeaders {
    /// Tool name → (argument, header name).
    by_tool: Mutex<HashMap<String, Vec<(String, String)>>>,
    /// Stateless `tools/list` requests whose result is awaited.
    listing: Mutex<HashSet<RequestId>>,
    /// The last `_meta` written as text (the engine writes the same one on
    /// every request of a session) and the `Mcp-Protocol-Version` value read
    /// from it: read once, not per request.
    last_meta: Mutex<Option<(Box<str>, HeaderValue)>>,
}

impl ToolHeaders {
    /// Notes an outgoing `tools/list`, to read its result.
    pub(crate) fn note_request(&self, req: &Request) {
        if req.method == "tools/list" {
            self.listing.lock().insert(req.id.clone());
        }
    }

    /// Reads a `tools/list` result as it passes.
    pub(crate) fn note_response(&self, msg: &Message) {
        let Message::Response(r) = msg else { return };
        let Some(id) = &r.id else { return };
        if !self.listing.lock().remove(id) {
            return;
        }
        let Ok(result) = r.clone().into_value() else {
            return;
        };
        let Some(tools) = result.get("tools").and_then(Value::as_array) else {
            return;
        };
        let mut by_tool = self.by_tool.lock();
        for tool in tools {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                continue;
            };
            let schema = tool.get("inputSchema").cloned().unwrap_or(Value::Null);
            match tool_param_headers(&schema) {
                Ok(headers) => {
                    by_tool.insert(name.to_owned(), headers);
                }
                Err(_) => {
                    by_tool.remove(name);
                }
            }
        }
    }

    /// The headers of `req` if it is a stateless request (its `_meta`
    /// names a version), else `None`.
    pub(crate) fn stateless_headers(
        &self,
        req: &Request,
    ) -> Option<Vec<(HeaderName, HeaderValue)>> {
        let raw = raw_meta(req);
        if let Some(raw) = raw {
            let cached = self
                .last_meta
                .lock()
                .as_ref()
                .filter(|(text, _)| **text == *raw.get())
                .map(|(_, version)| version.clone());
            if let Some(version) = cached {
                self.note_request(req);
                return Some(self.headers(req, Ok(version)));
            }
        }
        let version = version_of(req)?;
        let value = HeaderValue::from_str(&version);
        if let (Some(raw), Ok(value)) = (raw, &value) {
            *self.last_meta.lock() = Some((raw.get().into(), value.clone()));
        }
        self.note_request(req);
        Some(self.headers(req, value))
    }

    /// The headers of a stateless request of `version`.
    fn headers(
        &self,
        req: &Request,
        version: Result<HeaderValue, InvalidHeaderValue>,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::with_capacity(3);
        let mut put = |name: HeaderName, value: Result<HeaderValue, InvalidHeaderValue>| match value
        {
            Ok(v) => out.push((name, v)),
            Err(_) => {
                tracing::warn!(header = %name, "a header value cannot be sent; header left out")
            }
        };
        put(HeaderName::from_static("mcp-protocol-version"), version);
        let method = match static_method(&req.method) {
            Some(method) => Ok(HeaderValue::from_static(method)),
            None => HeaderValue::from_str(&req.method),
        };
        put(HeaderName::from_static("mcp-method"), method);
        let params = req.params.as_ref();
        let name = match req.method.as_str() {
            "tools/call" | "prompts/get" => params.and_then(|p| p.get("name")),
            "resources/read" => params.and_then(|p| p.get("uri")),
            _ => None,
        };
        if let Some(value) = name.and_then(header_value) {
            put(
                HeaderName::from_static("mcp-name"),
                HeaderValue::from_str(&value),
            );
        }
        if req.method == "tools/call" {
            let tool = params.and_then(|p| p.get("name")).and_then(Value::as_str);
            let args = params.and_then(|p| p.get("arguments"));
            let designated = tool.and_then(|t| {
                let by_tool = self.by_tool.lock();
                by_tool.get(t).filter(|h| !h.is_empty()).cloned()
            });
            for (arg, header) in designated.unwrap_or_default() {
                let Some(value) = args.and_then(|a| a.get(&arg)).and_then(header_value) else {
                    continue; // null or absent: no header
                };
                match HeaderName::try_from(format!("mcp-param-{header}")) {
                    Ok(name) => put(name, HeaderValue::from_str(&value)),
                    Err(_) => tracing::warn!(%header, "not a valid header name; header left out"),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_conn_core::jsonrpc::Response;
    use serde_json::json;

    fn request(id: i64, method: &str, params: Value) -> Request {
        match Message::request(id, method, Some(params)) {
            Message::Request(r) => r,
            _ => unreachable!(),
        }
    }

    fn header<'a>(h: &'a [(HeaderName, HeaderValue)], name: &str) -> Option<&'a str> {
        h.iter()
            .find(|(n, _)| n.as_str() == name)
            .and_then(|(_, v)| v.to_str().ok())
    }

    #[test]
    fn the_version_is_read_from_params_or_from_the_raw_meta() {
        let raw = |t: &str| serde_json::value::RawValue::from_string(t.to_owned()).expect("json");
        let key = meta::PROTOCOL_VERSION;
        let in_params = request(1, "ping", json!({"_meta": {key: "2026-07-28"}}));
        assert_eq!(version_of(&in_params).as_deref(), Some("2026-07-28"));
        let as_text = request(2, "ping", json!({})).with_raw_param(
            "_meta",
            raw(&format!(r#"{{"a":{{"b":1}},"{key}":"2026-07-28"}}"#)),
        );
        assert_eq!(version_of(&as_text).as_deref(), Some("2026-07-28"));
        // An escaped version still reads (owned, not borrowed).
        let escaped = request(3, "ping", json!({}))
            .with_raw_param("_meta", raw(&format!(r#"{{"{key}":"2026\u002d07-28"}}"#)));
        assert_eq!(version_of(&escaped).as_deref(), Some("2026-07-28"));
        for not_stateless in [
            request(4, "ping", json!({})),
            request(5, "ping", json!({"_meta": {"other": 1}})),
            request(6, "ping", json!({})).with_raw_param("_meta", raw(r#"{"other":1}"#)),
        ] {
            assert_eq!(version_of(&not_stateless), None);
        }
    }

    #[test]
    fn tool_calls_carry_method_name_and_designated_params() {
        let tools = ToolHeaders::default();
        tools.note_request(&request(1, "tools/list", json!({})));
        let list = json!({"tools": [
            {"name": "t", "inputSchema": {"type": "object", "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"},
                "n": {"type": "integer", "x-mcp-header": "N"},
                "flag": {"type": "boolean", "x-mcp-header": "Flag"},
                "free": {"type": "string"}}}},
        ]});
        let resp =
            Message::Response(Response::result(RequestId::Int(1), &list).expect("serialises"));
        tools.note_response(&resp);
        let call = request(
            2,
            "tools/call",
            json!({"name": "t", "arguments": {"region": " x ", "n": 42, "flag": null, "free": "no"}}),
        );
        let h = tools.headers(&call, Ok(HeaderValue::from_static("2026-07-28")));
        assert_eq!(header(&h, "mcp-protocol-version"), Some("2026-07-28"));
        assert_eq!(header(&h, "mcp-method"), Some("tools/call"));
        assert_eq!(header(&h, "mcp-name"), Some("t"));
        assert_eq!(header(&h, "mcp-param-region"), Some("=?base64?IHgg?="));
        assert_eq!(header(&h, "mcp-param-n"), Some("42"));
        assert_eq!(header(&h, "mcp-param-flag"), None, "null: no header");
        assert_eq!(header(&h, "mcp-param-free"), None, "not designated");
    }

    #[test]
    fn resources_read_names_its_uri() {
        let tools = ToolHeaders::default();
        let read = request(3, "resources/read", json!({"uri": "file:///a%20b.txt"}));
        let h = tools.headers(&read, Ok(HeaderValue::from_static("2026-07-28")));
        assert_eq!(header(&h, "mcp-name"), Some("file:///a%20b.txt"));
        let list = request(4, "tools/list", json!({}));
        let h = tools.headers(&list, Ok(HeaderValue::from_static("v")));
        assert_eq!(header(&h, "mcp-name"), None);
    }

    #[test]
    fn the_version_of_a_raw_meta_is_read_once_and_again_when_it_changes() {
        let tools = ToolHeaders::default();
        let with_meta = |id: i64, version: &str| {
            let text = format!(
                r#"{{"{}":"{version}","x":{{"y":1}}}}"#,
                meta::PROTOCOL_VERSION
            );
            let raw = serde_json::value::RawValue::from_string(text).expect("json");
            request(id, "ping", json!({})).with_raw_param("_meta", raw)
        };
        let version = |req: &Request| {
            let h = tools.stateless_headers(req).expect("stateless");
            header(&h, "mcp-protocol-version").map(str::to_owned)
        };
        assert_eq!(
            version(&with_meta(1, "2026-07-28")).as_deref(),
            Some("2026-07-28")
        );
        assert_eq!(
            version(&with_meta(2, "2026-07-28")).as_deref(),
            Some("2026-07-28")
        );
        assert_eq!(
            version(&with_meta(3, "2027-01-01")).as_deref(),
            Some("2027-01-01")
        );
        // Params' own `_meta` wins over the text, as in `version_of`.
        let own = request(
            4,
            "ping",
            json!({"_meta": {meta::PROTOCOL_VERSION: "2026-07-28"}}),
        );
        assert_eq!(version(&own).as_deref(), Some("2026-07-28"));
        assert!(tools
            .stateless_headers(&request(5, "ping", json!({})))
            .is_none());
    }
}
