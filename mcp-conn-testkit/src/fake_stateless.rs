//! The fake stdio server's `stateless` mode: the 2026-07-28 era. Every
//! request must carry `_meta` with a supported version (else `-32602` or
//! `-32022` with `data.supported`); `server/discover` answers; `initialize`
//! and `ping` do not exist (`-32601`); the tool `ask` takes two
//! `input_required` rounds (an elicitation each, with `requestState`
//! `"round-1"` then `"round-2"`) and then returns what it was given.
//!
//! The versions it speaks come from `FAKE_MCP_VERSIONS` (comma-separated,
//! default `2026-07-28`).

use serde_json::{json, Value};

/// The versions this server speaks.
fn supported() -> Vec<String> {
    std::env::var("FAKE_MCP_VERSIONS")
        .unwrap_or_else(|_| "2026-07-28".into())
        .split(',')
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

fn error(code: i64, message: &str, data: Option<Value>) -> Value {
    let mut e = json!({"code": code, "message": message});
    if let Some(data) = data {
        e["data"] = data;
    }
    json!({ "error": e })
}

/// The answer (`{"result": …}` or `{"error": …}`) to a stateless request,
/// or `None` to let the normal handling answer it.
pub(crate) fn handle(method: &str, params: &Value) -> Option<Value> {
    let meta = &params["_meta"];
    let version = meta["io.modelcontextprotocol/protocolVersion"].as_str();
    let supported = supported();
    let Some(version) = version else {
        return Some(error(-32602, "missing _meta protocolVersion", None));
    };
    if meta["io.modelcontextprotocol/clientCapabilities"].is_null() {
        return Some(error(-32602, "missing _meta clientCapabilities", None));
    }
    if !supported.iter().any(|s| s == version) {
        return Some(error(
            -32022,
            "Unsupported protocol version",
            Some(json!({"supported": supported, "requested": version})),
        ));
    }
    match method {
        "server/discover" => Some(json!({"result": {
            "resultType": "complete",
            "supportedVersions": supported,
            "capabilities": {"tools": {"listChanged": true}},
            "ttlMs": 0,
            "cacheScope": "private",
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "fake-mcp-server-stateless", "version": env!("CARGO_PKG_VERSION")}},
        }})),
        "initialize" | "ping" | "logging/setLevel" => {
            Some(error(-32601, &format!("method not found: {method}"), None))
        }
        "tools/call" if params["name"] == "ask" => Some(ask(params)),
        _ => None,
    }
}

/// Two rounds of input, then the answers and the state seen.
fn ask(params: &Value) -> Value {
    let state = params["requestState"].as_str();
    let round = |n: u32| {
        json!({"result": {
            "resultType": "input_required",
            "inputRequests": {"q": {"method": "elicitation/create", "params": {
                "message": format!("question {n}"),
                "requestedSchema": {"type": "object", "properties": {"ok": {"type": "boolean", "default": true}}},
            }}},
            "requestState": format!("round-{n}"),
        }})
    };
    match (state, params.get("inputResponses")) {
        (None, None) => round(1),
        (Some("round-1"), Some(_)) => round(2),
        (Some("round-2"), Some(answers)) => json!({"result": {
            "content": [{"type": "text", "text": format!("answers {answers}")}],
        }}),
        _ => error(-32602, &format!("unexpected round: state {state:?}"), None),
    }
}
