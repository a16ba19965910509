//! Protocol eras: the handshake era (2024-11-05 to 2025-11-25: `initialize`,
//! sessions, `ping`) and the stateless era (2026-07-28: no `initialize`,
//! version and capabilities in every request's `_meta`, `server/discover`).
//!
//! A connection finds out which era its server speaks on its first connect
//! (see [`ProtocolPreference::Auto`]), remembers it across reconnects, and
//! probes again only when the remembered era stops working.

use std::fmt;

use serde::Serialize;

/// The stateless revision this client prefers.
pub const STATELESS_PROTOCOL_VERSION: &str = "2026-07-28";

/// Every stateless revision this client speaks, newest first.
pub const STATELESS_PROTOCOL_VERSIONS: &[&str] = &[STATELESS_PROTOCOL_VERSION];

/// The `_meta` keys of the stateless era.
pub mod meta {
    /// The protocol version of the request (required).
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    /// The client's capabilities (required).
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    /// The client's name and version.
    pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
    /// The log level the client asks for, per request.
    pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
    /// The server's name and version, in a result's `_meta`.
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
    /// The id of the `subscriptions/listen` request a notification belongs to.
    pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
}

/// Error codes of the stateless era.
pub mod codes {
    /// A required header is missing or does not match the body (HTTP).
    pub const HEADER_MISMATCH: i64 = -32020;
    /// The request used a capability the client did not declare.
    pub const MISSING_CAPABILITY: i64 = -32021;
    /// The protocol version is not supported; `data.supported` lists those
    /// that are.
    pub const UNSUPPORTED_VERSION: i64 = -32022;
}

/// Which era a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProtocolEra {
    /// `initialize`, then a session (2024-11-05 to 2025-11-25).
    Handshake,
    /// No handshake: every request carries its version and capabilities
    /// (2026-07-28).
    Stateless,
}

impl fmt::Display for ProtocolEra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProtocolEra::Handshake => "handshake",
            ProtocolEra::Stateless => "stateless",
        })
    }
}

/// Which era a connection speaks; see [`crate::ConnectionConfig::protocol`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolPreference {
    /// The newest era the server speaks (the default): probe with
    /// `server/discover` offering the stateless versions; a `DiscoverResult`
    /// means stateless, `-32022` means stateless with another version (retried
    /// with a mutual one, never a fallback); any other error answer, an HTTP
    /// 4xx other than 401/403, or no answer within
    /// [`crate::ConnectionConfig::era_probe_timeout`] means the handshake era.
    /// A 401/403 or a broken link fails the connect (never a fallback).
    #[default]
    Auto,
    /// Only the handshake era (`initialize`); never probe.
    Handshake,
    /// Only the stateless era, offering these versions in this order
    /// (empty: [`STATELESS_PROTOCOL_VERSIONS`]); a server that does not speak
    /// it fails the connect with [`crate::Error::UnsupportedVersion`].
    Stateless(Vec<String>),
}

/// What a connection learned about its server's era (kept across
/// reconnects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Detected {
    Handshake,
    Stateless(String),
}

/// The result of `server/discover` (stateless era).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DiscoverResult {
    /// The versions the server speaks.
    #[serde(default)]
    pub supported_versions: Vec<String>,
    /// What the server can do.
    #[serde(default)]
    pub capabilities: crate::protocol::ServerCapabilities,
    /// Usage hints for the model.
    #[serde(default)]
    pub instructions: Option<String>,
    /// The server's name and version, when given in the result itself
    /// (older drafts); see also `_meta`.
    #[serde(default)]
    pub server_info: Option<crate::protocol::Implementation>,
    /// How long the result may be cached, in milliseconds.
    #[serde(default)]
    pub ttl_ms: Option<u64>,
    /// The result's `_meta`.
    #[serde(default, rename = "_meta")]
    pub meta: Option<serde_json::Map<String, serde_json::Value>>,
}

impl DiscoverResult {
    /// The server's name and version, from `_meta` or the result.
    pub fn server_info(&self) -> Option<crate::protocol::Implementation> {
        self.meta
            .as_ref()
            .and_then(|m| m.get(meta::SERVER_INFO))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .or_else(|| self.server_info.clone())
    }
}

/// The `Mcp-Param-*` headers a tool's input schema designates
/// (`x-mcp-header` on a property): `(property, header name)` pairs, or why
/// the annotations are invalid (such a tool must not be used). A header name
/// must be non-empty, made of visible ASCII token characters, unique
/// (case-insensitively) within the tool, and sit on a `string`, `integer` or
/// `boolean` property.
pub fn tool_param_headers(
    input_schema: &serde_json::Value,
) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let Some(props) = input_schema.get("properties").and_then(|p| p.as_object()) else {
        return Ok(out);
    };
    for (prop, schema) in props {
        let Some(header) = schema.get("x-mcp-header") else {
            continue;
        };
        let Some(header) = header.as_str() else {
            return Err(format!("`x-mcp-header` of `{prop}` is not a string"));
        };
        if header.is_empty() {
            return Err(format!("`x-mcp-header` of `{prop}` is empty"));
        }
        if !header.bytes().all(is_token_byte) {
            return Err(format!(
                "`x-mcp-header` of `{prop}` ({header:?}) is not a valid header name"
            ));
        }
        let ty = schema.get("type").and_then(|t| t.as_str());
        if !matches!(ty, Some("string" | "integer" | "boolean")) {
            return Err(format!(
                "`x-mcp-header` of `{prop}` is on a property of type {}, not string, integer or boolean",
                ty.unwrap_or("(none)")
            ));
        }
        if out.iter().any(|(_, h)| h.eq_ignore_ascii_case(header)) {
            return Err(format!("`x-mcp-header` {header:?} is used twice"));
        }
        out.push((prop.clone(), header.to_owned()));
    }
    Ok(out)
}

/// An HTTP token character (RFC 9110), so the name is a valid header name.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The value of an `Mcp-Param-*` (or `Mcp-Name`) header for an argument:
/// strings as they are when they are plain visible ASCII without leading or
/// trailing whitespace, else `=?base64?…?=`; integers and booleans as
/// their JSON text; `None` for null (no header is sent).
pub fn header_value(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(encode_header_text(s)),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        other => Some(encode_header_text(&other.to_string())),
    }
}

/// `s` as a header value: as it is when safe, else base64-wrapped.
pub fn encode_header_text(s: &str) -> String {
    let safe = s.bytes().all(|b| (0x20..=0x7e).contains(&b)) && s.trim() == s;
    if safe {
        s.to_owned()
    } else {
        format!("=?base64?{}?=", base64(s.as_bytes()))
    }
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn header_values_are_encoded_only_when_unsafe() {
        assert_eq!(
            header_value(&json!("us-west1")).as_deref(),
            Some("us-west1")
        );
        assert_eq!(
            header_value(&json!("us west 1")).as_deref(),
            Some("us west 1")
        );
        assert_eq!(header_value(&json!("")).as_deref(), Some(""));
        assert_eq!(header_value(&json!(42)).as_deref(), Some("42"));
        assert_eq!(header_value(&json!(false)).as_deref(), Some("false"));
        assert_eq!(header_value(&json!(null)), None);
        for unsafe_text in [
            " padded ",
            " lead",
            "trail ",
            "a\nb",
            "a\r\nb",
            "\tx",
            "Hello, 世界",
        ] {
            let v = header_value(&json!(unsafe_text)).unwrap_or_default();
            assert!(
                v.starts_with("=?base64?") && v.ends_with("?="),
                "{unsafe_text:?} → {v}"
            );
        }
        assert_eq!(
            header_value(&json!("Hello, 世界")).as_deref(),
            Some("=?base64?SGVsbG8sIOS4lueVjA==?=")
        );
    }

    #[test]
    fn invalid_header_annotations_are_refused() {
        let schema = |props: serde_json::Value| json!({"type": "object", "properties": props});
        let ok = schema(
            json!({"region": {"type": "string", "x-mcp-header": "Region"},
                                "n": {"type": "integer", "x-mcp-header": "N"},
                                "plain": {"type": "number"}}),
        );
        let mut found = tool_param_headers(&ok).unwrap_or_default();
        found.sort();
        assert_eq!(
            found,
            vec![("n".into(), "N".into()), ("region".into(), "Region".into())]
        );
        for bad in [
            json!({"v": {"type": "string", "x-mcp-header": ""}}),
            json!({"v": {"type": "object", "x-mcp-header": "Data"}}),
            json!({"v": {"type": "array", "x-mcp-header": "Items"}}),
            json!({"v": {"type": "null", "x-mcp-header": "Nil"}}),
            json!({"v": {"type": "number", "x-mcp-header": "Score"}}),
            json!({"a": {"type": "string", "x-mcp-header": "Region"}, "b": {"type": "string", "x-mcp-header": "Region"}}),
            json!({"a": {"type": "string", "x-mcp-header": "MyField"}, "b": {"type": "string", "x-mcp-header": "myfield"}}),
            json!({"v": {"type": "string", "x-mcp-header": "My Region"}}),
            json!({"v": {"type": "string", "x-mcp-header": "Region:Primary"}}),
            json!({"v": {"type": "string", "x-mcp-header": "Région"}}),
            json!({"v": {"type": "string", "x-mcp-header": "Region\t1"}}),
            json!({"v": {"type": "string", "x-mcp-header": 7}}),
        ] {
            assert!(tool_param_headers(&schema(bad.clone())).is_err(), "{bad}");
        }
    }
}
