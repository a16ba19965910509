//! The scripted HTTP server's stateless era (2026-07-28), and scripted
//! answers to the era probe.
//!
//! With [`Behavior::stateless`](crate::http_server::Behavior::stateless) set,
//! a POST must carry `MCP-Protocol-Version` equal to its `_meta` version
//! (else 400 with `-32020`), the version must be one the server speaks (else
//! 400 with `-32022` and `data.supported`), `server/discover` is answered,
//! `initialize` and `ping` are unknown (404 with `-32601`); everything else
//! is served as usual (the caller turns sessions off).

use http::HeaderMap;
use serde_json::{json, Value};

/// A reply: status and JSON body.
pub(crate) type Reply = (u16, Value);

fn error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut e = json!({"code": code, "message": message});
    if let Some(data) = data {
        e["data"] = data;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": e})
}

/// The stateless server's answer to a request, or `None` to serve it as
/// usual.
pub(crate) fn answer(
    versions: &[String],
    headers: &HeaderMap,
    msg: &Value,
    method: &str,
) -> Option<Reply> {
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    let meta = &msg["params"]["_meta"];
    let meta_version = meta["io.modelcontextprotocol/protocolVersion"].as_str();
    let header = headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok());
    let Some(version) = meta_version else {
        return Some((
            400,
            error(&id, -32602, "missing _meta protocolVersion", None),
        ));
    };
    if header != Some(version) {
        return Some((
            400,
            error(
                &id,
                -32020,
                "MCP-Protocol-Version does not match _meta",
                None,
            ),
        ));
    }
    if headers.get("mcp-method").and_then(|v| v.to_str().ok()) != Some(method) {
        return Some((400, error(&id, -32020, "Mcp-Method does not match", None)));
    }
    if !versions.iter().any(|v| v == version) {
        return Some((
            400,
            error(
                &id,
                -32022,
                "Unsupported protocol version",
                Some(json!({"supported": versions, "requested": version})),
            ),
        ));
    }
    match method {
        "server/discover" => Some((
            200,
            json!({"jsonrpc": "2.0", "id": id, "result": {
                "resultType": "complete", "supportedVersions": versions,
                "capabilities": {"tools": {}}, "ttlMs": 0, "cacheScope": "private",
                "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "test-http-stateless", "version": "1.0.0"}},
            }}),
        )),
        "initialize" | "ping" => Some((404, error(&id, -32601, "method not found", None))),
        _ => None,
    }
}
