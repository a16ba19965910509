//! Stateless era: multi round-trip requests (`input_required` results
//! answered through the registered handlers), tools with invalid
//! `x-mcp-header` annotations, and the `-32020` re-list and retry.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use mcp_conn_core::jsonrpc::{JsonRpcError, Request};
use mcp_conn_core::protocol::{ElicitAction, ElicitRequestParams, ElicitResult};
use mcp_conn_core::testing::{MockLink, MockServer};
use mcp_conn_core::{
    Client, ClientHandlers, Connection, ConnectionConfig, ElicitationHandler, Error,
};
use serde_json::{json, Value};

const V: &str = "2026-07-28";

/// Answers with the message it was asked, so a test sees which round it is.
struct Echo;

#[async_trait]
impl ElicitationHandler for Echo {
    async fn elicit(&self, params: ElicitRequestParams) -> Result<ElicitResult, JsonRpcError> {
        let mut content = serde_json::Map::new();
        content.insert("said".into(), Value::from(params.message.clone()));
        Ok(ElicitResult {
            action: ElicitAction::Accept,
            content: Some(content),
        })
    }
}

/// A stateless session with an elicitation handler.
async fn stateless(handlers: ClientHandlers) -> (Connection, MockServer, Client, MockLink) {
    let config = ConnectionConfig {
        handlers,
        ..common::config()
    };
    let (conn, _t, mut server) = common::scripted(config);
    let (client, link) = common::within("connect", async {
        tokio::join!(conn.connect(), async {
            let mut link = server.accept().await;
            let probe = link.expect_method("server/discover").await;
            link.respond(
                probe.id,
                json!({"supportedVersions": [V], "capabilities": {"tools": {}, "prompts": {}, "resources": {}}}),
            )
            .await;
            link
        })
    })
    .await;
    (conn, server, client.expect("connects"), link)
}

fn with_elicitation() -> ClientHandlers {
    ClientHandlers {
        elicitation: Some(Arc::new(Echo)),
        ..Default::default()
    }
}

fn ask(n: u32, state: Option<&str>) -> Value {
    let mut r = json!({
        "resultType": "input_required",
        "inputRequests": {"q": {"method": "elicitation/create", "params": {
            "message": format!("round {n}"),
            "requestedSchema": {"type": "object", "properties": {}}}}},
    });
    if let Some(state) = state {
        r["requestState"] = Value::from(state);
    }
    r
}

fn param<'a>(req: &'a Request, key: &str) -> Option<&'a Value> {
    req.params.as_ref().and_then(|p| p.get(key))
}

#[tokio::test(start_paused = true)]
async fn several_rounds_echo_the_state_with_new_ids_and_the_caller_sees_one_call() {
    let (_conn, _s, client, mut link) = stateless(with_elicitation()).await;
    // A state with escapes: it comes back as the same string.
    let state = "s1 \"quoted\" \\ é ☃";
    let (result, ()) = tokio::join!(client.call_tool("t", json!({"x": 1})), async {
        let first = link.expect_method("tools/call").await;
        assert!(param(&first, "inputResponses").is_none());
        link.respond(first.id.clone(), ask(1, Some(state))).await;
        let second = link.expect_method("tools/call").await;
        assert_ne!(second.id, first.id, "a new id");
        assert_eq!(
            param(&second, "arguments"),
            Some(&json!({"x": 1})),
            "same params"
        );
        assert_eq!(param(&second, "requestState"), Some(&json!(state)));
        assert_eq!(
            param(&second, "inputResponses"),
            Some(&json!({"q": {"action": "accept", "content": {"said": "round 1"}}}))
        );
        link.respond(second.id.clone(), ask(2, None)).await;
        let third = link.expect_method("tools/call").await;
        assert_ne!(third.id, second.id);
        assert!(
            param(&third, "requestState").is_none(),
            "none sent, none echoed"
        );
        assert_eq!(
            param(&third, "inputResponses").map(|r| r["q"]["content"]["said"].clone()),
            Some(json!("round 2"))
        );
        link.respond(
            third.id,
            json!({"content": [{"type": "text", "text": "done"}]}),
        )
        .await;
    });
    assert_eq!(result.expect("one call").text(), "done");
}

/// The server's `requestState` as it wrote it: escapes that a parse and
/// re-serialise would change (`\u00e9`, `\/`, a surrogate pair).
const ESCAPED_STATE: &str = r#""caf\u00e9 \/ \ud83d\ude00 x""#;

#[tokio::test(start_paused = true)]
async fn the_request_state_goes_back_byte_for_byte() {
    let (_conn, _s, client, mut link) = stateless(with_elicitation()).await;
    let (result, ()) = tokio::join!(client.call_tool("t", json!({})), async {
        let first = link.expect_method("tools/call").await;
        let id = serde_json::to_string(&first.id).expect("id");
        link.send_raw(format!(
            r#"{{"jsonrpc":"2.0","id":{id},"result":{{"resultType":"input_required","inputRequests":{{"q":{{"method":"elicitation/create","params":{{"message":"m","requestedSchema":{{"type":"object","properties":{{}}}}}}}}}},"requestState":{ESCAPED_STATE}}}}}"#
        ))
        .await;
        let second = link.expect_method("tools/call").await;
        let wire = link.last_text().to_owned();
        assert!(
            wire.contains(&format!(r#""requestState":{ESCAPED_STATE}"#)),
            "echoed unchanged: {wire}"
        );
        assert_eq!(
            wire.matches("requestState").count(),
            1,
            "exactly once: {wire}"
        );
        // An object state with a line break in its whitespace: compacted,
        // since a raw line break would end the message on stdio.
        let id = serde_json::to_string(&second.id).expect("id");
        link.send_raw(format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{{\"resultType\":\"input_required\",\"inputRequests\":{{}},\"requestState\":{{\"a\":\n1}}}}}}"
        ))
        .await;
        let third = link.expect_method("tools/call").await;
        let wire = link.last_text().to_owned();
        assert!(!wire.contains('\n'), "one line: {wire}");
        assert!(wire.contains(r#""requestState":{"a":1}"#), "{wire}");
        link.respond(
            third.id,
            json!({"content": [{"type": "text", "text": "done"}]}),
        )
        .await;
    });
    assert_eq!(result.expect("one call").text(), "done");
}

#[tokio::test(start_paused = true)]
async fn parallel_requests_keep_their_rounds_to_themselves() {
    let (_conn, _s, client, mut link) = stateless(with_elicitation()).await;
    let (a, b, ()) = tokio::join!(
        client.call_tool("a", json!({})),
        client.call_tool("b", json!({})),
        async {
            let one = link.expect_method("tools/call").await;
            let two = link.expect_method("tools/call").await;
            let (a, b) = if param(&one, "name") == Some(&json!("a")) {
                (one, two)
            } else {
                (two, one)
            };
            link.respond(a.id, ask(1, Some("state-of-a"))).await;
            link.respond(b.id, ask(1, Some("state-of-b"))).await;
            for _ in 0..2 {
                let retry = link.expect_method("tools/call").await;
                let name = param(&retry, "name").cloned().unwrap_or_default();
                let want = format!("state-of-{}", name.as_str().unwrap_or_default());
                assert_eq!(param(&retry, "requestState"), Some(&json!(want)));
                link.respond(
                    retry.id,
                    json!({"content": [{"type": "text", "text": name}]}),
                )
                .await;
            }
            // A third call carries nothing of theirs.
        }
    );
    assert_eq!(a.expect("a").text(), "a");
    assert_eq!(b.expect("b").text(), "b");
    let (c, ()) = tokio::join!(client.call_tool("c", json!({})), async {
        let req = link.expect_method("tools/call").await;
        assert!(param(&req, "requestState").is_none());
        assert!(param(&req, "inputResponses").is_none());
        link.respond(req.id, json!({"content": []})).await;
    });
    c.expect("c");
}

#[tokio::test(start_paused = true)]
async fn rounds_are_bounded_and_unanswerable_input_is_a_typed_error() {
    let (_conn, _s, client, mut link) = stateless(with_elicitation()).await;
    let (result, ()) = tokio::join!(client.call_tool("t", json!({})), async {
        // The server never stops asking.
        for n in 0..=8 {
            let req = link.expect_method("tools/call").await;
            link.respond(req.id, ask(n, Some("again"))).await;
        }
    });
    let err = result.expect_err("too many rounds");
    assert!(matches!(err, Error::InputRequired { .. }), "{err}");
    assert!(!err.is_retryable());

    // No handler for what the server asks: no retry, a typed error.
    let (_conn, _s, client, mut link) = stateless(ClientHandlers::default()).await;
    let (result, ()) = tokio::join!(client.get_prompt("p", []), async {
        let req = link.expect_method("prompts/get").await;
        link.respond(req.id, ask(1, None)).await;
    });
    let err = result.expect_err("no elicitation handler");
    assert!(matches!(err, Error::InputRequired { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn tools_with_invalid_header_annotations_are_dropped_and_32020_relists_once() {
    let (_conn, _s, client, mut link) = stateless(ClientHandlers::default()).await;
    let tools = json!({"tools": [
        {"name": "good", "inputSchema": {"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"}}}},
        {"name": "bad", "inputSchema": {"type": "object", "properties": {
            "score": {"type": "number", "x-mcp-header": "Score"}}}},
    ]});
    let (listed, ()) = tokio::join!(client.list_tools(), async {
        let req = link.expect_method("tools/list").await;
        link.respond(req.id, tools.clone()).await;
    });
    let names: Vec<String> = listed
        .expect("listed")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["good"]);

    let (called, ()) = tokio::join!(client.call_tool("good", json!({"region": "eu"})), async {
        let req = link.expect_method("tools/call").await;
        link.respond_error(
            req.id,
            JsonRpcError {
                code: -32020,
                message: "header mismatch".into(),
                data: None,
            },
        )
        .await;
        let relist = link.expect_method("tools/list").await;
        link.respond(relist.id, tools.clone()).await;
        let again = link.expect_method("tools/call").await;
        link.respond_error(
            again.id,
            JsonRpcError {
                code: -32020,
                message: "still".into(),
                data: None,
            },
        )
        .await;
    });
    let err = called.expect_err("retried once only");
    assert_eq!(err.rpc_error().map(|e| e.code), Some(-32020));
}

#[tokio::test(start_paused = true)]
async fn a_broken_reply_stream_reissues_safe_requests_only() {
    use mcp_conn_core::TransportError;
    let (_conn, _s, client, mut link) = stateless(ClientHandlers::default()).await;
    let (listed, ()) = tokio::join!(client.list_tools(), async {
        let first = link.expect_method("tools/list").await;
        link.fail_request(first.id.clone(), TransportError::Eof)
            .await;
        let again = link.expect_method("tools/list").await;
        assert_ne!(again.id, first.id, "a new id");
        link.respond(again.id, json!({"tools": []})).await;
    });
    assert!(listed.expect("re-issued").is_empty());

    let (called, ()) = tokio::join!(client.call_tool("t", json!({})), async {
        let req = link.expect_method("tools/call").await;
        link.fail_request(req.id, TransportError::Eof).await;
    });
    let err = called.expect_err("a tool call is not re-issued");
    assert!(matches!(err, Error::ReplyLost { .. }), "{err}");
    assert!(!err.is_retryable());
    // Nothing was sent again.
    let (listed, ()) = tokio::join!(client.list_tools(), async {
        let next = link.expect_request().await;
        assert_eq!(next.method, "tools/list");
        link.respond(next.id, json!({"tools": []})).await;
    });
    listed.expect("listed");
}
