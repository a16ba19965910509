//! How the scripted server answers each request: POST (JSON or SSE
//! replies, faults, sessions), GET streams, and the legacy HTTP+SSE endpoint.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::*;

fn full(status: u16, content_type: Option<&str>, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(ct) = content_type {
        if let Ok(v) = ct.parse() {
            resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
    }
    resp
}

fn stream(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let mut resp = Response::new(BodyExt::boxed(ChannelBody { rx }));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    resp
}

fn rpc_result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn text(t: &str) -> Value {
    json!({"content": [{"type": "text", "text": t}]})
}

pub(super) async fn handle(st: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let json: Option<Value> = serde_json::from_slice(&bytes).ok();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    st.log.lock().push(Recorded {
        version: parts.version,
        method: parts.method.clone(),
        path: path.clone(),
        headers: parts.headers.clone(),
        body: json.clone(),
        at: Instant::now(),
    });
    let behavior = st.behavior.lock().clone();
    if behavior.legacy {
        return legacy(&st, &behavior, &parts.method, &path, json).await;
    }
    match parts.method {
        Method::POST => post(&st, &behavior, &parts.headers, json).await,
        Method::GET => get(&st, &behavior, &parts.headers),
        Method::DELETE => full(behavior.delete_status, None, ""),
        _ => full(405, None, ""),
    }
}

fn session_ok(st: &State, behavior: &Behavior, headers: &HeaderMap) -> bool {
    if !behavior.sessions {
        return true;
    }
    let given = headers.get("mcp-session-id").and_then(|v| v.to_str().ok());
    given.is_some_and(|g| st.sessions.lock().iter().any(|s| s == g))
}

async fn post(
    st: &Arc<State>,
    behavior: &Behavior,
    headers: &HeaderMap,
    json: Option<Value>,
) -> Response<Body> {
    let Some(msg) = json else {
        return full(400, None, "not json");
    };
    let method = msg
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let id = msg.get("id").cloned();
    if method.is_empty() {
        // The client's answer to a request of ours.
        if let Some(key) = id.as_ref().map(Value::to_string) {
            if let Some(waiter) = st.waiting.lock().remove(&key) {
                let _ = waiter.send(msg);
            }
        }
        return full(202, None, "");
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Some(token) = &behavior.require_token {
        if auth != format!("Bearer {token}") {
            let mut r = full(401, None, "unauthorized");
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static(r#"Bearer error="invalid_token", resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource""#),
            );
            return r;
        }
    }
    if let Some(token) = &behavior.scoped_token {
        if method == "tools/call" && auth != format!("Bearer {token}") {
            let mut r = full(403, None, "forbidden");
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static(
                    r#"Bearer error="insufficient_scope", scope="tools:call""#,
                ),
            );
            return r;
        }
    }
    // Scripted faults are for the requests after the era probe (which a
    // handshake-era server refuses below, as an unknown session).
    if let (Some((status, body)), "server/discover") = (&behavior.discover_reply, method.as_str()) {
        let id = id
            .as_ref()
            .map_or_else(|| "null".to_owned(), Value::to_string);
        return full(*status, Some("application/json"), body.replace("$ID", &id));
    }
    if let Some(versions) = &behavior.stateless {
        if let Some((status, body)) =
            crate::http_stateless::answer(versions, headers, &msg, &method)
        {
            return full(status, Some("application/json"), body.to_string());
        }
    }
    let mut fault = if id.is_some() && method != "server/discover" {
        st.faults.lock().pop_front()
    } else {
        None
    };
    if let Some(code) = behavior.status_all {
        fault = Some(Fault::Status(code));
    }
    if let Some(Fault::ExpireSessions) = fault {
        st.sessions.lock().clear();
    }
    if method != "initialize" && !session_ok(st, behavior, headers) {
        let has = headers.contains_key("mcp-session-id");
        return full(if has { 404 } else { 400 }, None, "unknown session");
    }
    let Some(id) = id else {
        if behavior.stall_notifications {
            std::future::pending::<()>().await;
        }
        return full(behavior.notification_status, None, "");
    };
    match &fault {
        Some(Fault::Status(401)) => {
            let mut r = full(401, None, "unauthorized");
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static(r#"Bearer resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource", scope="tools""#),
            );
            return r;
        }
        Some(Fault::Status(code)) => return full(*code, None, format!("injected {code}")),
        Some(Fault::Busy {
            status,
            retry_after,
        }) => {
            let mut r = full(*status, None, "busy");
            if let Some(v) = retry_after.as_deref().and_then(|v| v.parse().ok()) {
                r.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
            return r;
        }
        Some(Fault::Html) => {
            return full(
                200,
                Some("text/html; charset=utf-8"),
                format!("<html><body>{}</body></html>", "please log in ".repeat(100)),
            )
        }
        Some(Fault::NotJsonRpc) => {
            return full(200, Some("application/json"), r#"{"hello": "world"}"#)
        }
        Some(Fault::Redirect { location }) => {
            let mut r = full(307, None, "");
            if let Ok(v) = location.parse() {
                r.headers_mut().insert(http::header::LOCATION, v);
            }
            return r;
        }
        Some(Fault::Stall) => {
            std::future::pending::<()>().await;
        }
        _ => {}
    }
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    let mut new_session = None;
    let result = match method.as_str() {
        "initialize" => {
            if behavior.sessions {
                let s = format!("sess-{}", st.counter.fetch_add(1, Ordering::SeqCst));
                st.sessions.lock().push(s.clone());
                new_session = Some(s);
            }
            let version = behavior
                .protocol_version
                .clone()
                .unwrap_or_else(|| params["protocolVersion"].as_str().unwrap_or("2025-11-25").to_owned());
            let capabilities = if behavior.quiet { json!({"tools": {}}) } else { json!({"tools": {}, "logging": {}}) };
            json!({"protocolVersion": version, "capabilities": capabilities,
                   "serverInfo": {"name": "test-http-server", "version": "1.0.0"}})
        }
        "ping" => json!({}),
        "tools/list" => json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}, {"name": "add", "inputSchema": {"type": "object"}}]}),
        "tools/call" => {
            let args = &params["arguments"];
            match params["name"].as_str().unwrap_or_default() {
                "echo" => text(args["text"].as_str().unwrap_or_default()),
                "add" => text(&(args["a"].as_f64().unwrap_or(0.0) + args["b"].as_f64().unwrap_or(0.0)).to_string()),
                "sleep" => {
                    tokio::time::sleep(Duration::from_millis(args["ms"].as_u64().unwrap_or(0))).await;
                    text("slept")
                }
                "big" => text(&"x".repeat(usize::try_from(args["bytes"].as_u64().unwrap_or(0)).unwrap_or(0))),
                "ask_roots" | "notify" => return interactive(st, &id, params["name"].as_str().unwrap_or_default(), behavior.sse_end_delay).await,
                other => {
                    return full(200, Some("application/json"),
                        json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": format!("unknown tool {other}")}}).to_string())
                }
            }
        }
        other => {
            return full(200, Some("application/json"),
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": format!("no method {other}")}}).to_string())
        }
    };
    let response = rpc_result(&id, result);
    let mut resp = match (&fault, behavior.reply) {
        (Some(Fault::CutMidEvent), _) => {
            let (tx, rx) = mpsc::channel(4);
            let data = response.to_string();
            let half = data[..data.len() / 2].to_owned();
            tokio::spawn(async move {
                let _ = tx.send(Bytes::from(format!("data: {half}"))).await;
            });
            stream(rx)
        }
        (Some(Fault::PrimeAndClose { retry_ms }), _) => {
            let n = st.counter.fetch_add(1, Ordering::SeqCst);
            let event_id = format!("ev-{n}");
            st.parked
                .lock()
                .insert(event_id.clone(), response.to_string());
            let (tx, rx) = mpsc::channel(4);
            let retry = *retry_ms;
            tokio::spawn(async move {
                let _ = tx
                    .send(Bytes::from(format!(
                        "id: {event_id}\nretry: {retry}\ndata: \n\n"
                    )))
                    .await;
            });
            stream(rx)
        }
        (_, Reply::Json) => full(200, Some("application/json"), response.to_string()),
        (_, Reply::Sse) => {
            let (tx, rx) = mpsc::channel(4);
            let n = st.counter.fetch_add(1, Ordering::SeqCst);
            let end_delay = behavior.sse_end_delay;
            let st = st.clone();
            tokio::spawn(async move {
                let _ = tx
                    .send(Bytes::from(format!("id: p-{n}\ndata: \n\n: a comment\n\n")))
                    .await;
                let _ = tx
                    .send(Bytes::from(format!(
                        "id: r-{n}\nevent: message\ndata: {response}\n\n"
                    )))
                    .await;
                end_late(&st, tx, end_delay).await;
            });
            stream(rx)
        }
    };
    if let Some(s) = new_session.and_then(|s| s.parse().ok()) {
        resp.headers_mut().insert("mcp-session-id", s);
    }
    resp
}

/// Ends a reply stream `delay` after its last event, with a comment, and
/// counts whether the client was still reading it
/// ([`Behavior::sse_end_delay`]); at once without a delay.
async fn end_late(st: &State, tx: mpsc::Sender<Bytes>, delay: Option<Duration>) {
    let Some(delay) = delay else {
        return;
    };
    tokio::time::sleep(delay).await;
    let sent = tx.send(Bytes::from_static(b": end\n\n")).await;
    drop(tx);
    // The reader of the body is gone once the client closed the connection.
    let counter = if sent.is_ok() {
        &st.late_ends
    } else {
        &st.cut_replies
    };
    counter.fetch_add(1, Ordering::SeqCst);
}

/// A reply stream on which the server talks first: a roots request (and
/// waits for the client's POSTed answer) or a log notification.
async fn interactive(
    st: &Arc<State>,
    id: &Value,
    tool: &str,
    end_delay: Option<Duration>,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel(8);
    let st = st.clone();
    let id = id.clone();
    let tool = tool.to_owned();
    tokio::spawn(async move {
        let result = if tool == "ask_roots" {
            let ask_id = json!("srv-roots-1");
            let (answer_tx, answer_rx) = oneshot::channel();
            st.waiting.lock().insert(ask_id.to_string(), answer_tx);
            let ask = json!({"jsonrpc": "2.0", "id": ask_id, "method": "roots/list"});
            let _ = tx.send(Bytes::from(format!("data: {ask}\n\n"))).await;
            match answer_rx.await {
                Ok(answer) => text(&answer.to_string()),
                Err(_) => text("no answer"),
            }
        } else {
            // The notification and the result in one chunk: the client
            // reads both at once, and must still route the notification
            // before it returns the result.
            let note = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "working"}});
            let result = rpc_result(&id, text("notified"));
            let _ = tx
                .send(Bytes::from(format!("data: {note}\n\ndata: {result}\n\n")))
                .await;
            return end_late(&st, tx, end_delay).await;
        };
        let _ = tx
            .send(Bytes::from(format!(
                "data: {}\n\n",
                rpc_result(&id, result)
            )))
            .await;
        end_late(&st, tx, end_delay).await;
    });
    stream(rx)
}

fn get(st: &Arc<State>, behavior: &Behavior, headers: &HeaderMap) -> Response<Body> {
    if behavior.stateless.is_some() {
        return full(405, None, "");
    }
    if let Some(last) = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    {
        if let Some(data) = st.parked.lock().remove(&last) {
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(async move {
                let _ = tx
                    .send(Bytes::from(format!("id: {last}-resumed\ndata: {data}\n\n")))
                    .await;
            });
            return stream(rx);
        }
    }
    if let Some((status, retry_after)) = &behavior.get_busy {
        let mut r = full(*status, None, "busy");
        if let Some(v) = retry_after.as_deref().and_then(|v| v.parse().ok()) {
            r.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        return r;
    }
    if !behavior.get_stream {
        return full(405, None, "");
    }
    if !session_ok(st, behavior, headers) {
        return full(404, None, "unknown session");
    }
    let (tx, rx) = mpsc::channel(64);
    st.streams.lock().push(tx);
    stream(rx)
}

/// The 2024-11-05 transport: GET opens the stream and names the endpoint;
/// POSTs to the endpoint get 202 and their answers on the stream.
async fn legacy(
    st: &Arc<State>,
    behavior: &Behavior,
    method: &Method,
    path: &str,
    json: Option<Value>,
) -> Response<Body> {
    match *method {
        Method::GET => {
            let sid = format!("legacy-{}", st.counter.fetch_add(1, Ordering::SeqCst));
            let (tx, rx) = mpsc::channel(64);
            let endpoint = behavior
                .legacy_endpoint
                .clone()
                .unwrap_or_else(|| format!("/messages?session={sid}"));
            let _ = tx.try_send(Bytes::from(format!(
                "event: endpoint\ndata: {endpoint}\n\n"
            )));
            st.legacy_streams.lock().insert(sid, tx.clone());
            st.streams.lock().push(tx);
            stream(rx)
        }
        Method::POST if path.starts_with("/messages?session=") => {
            let sid = path.trim_start_matches("/messages?session=").to_owned();
            let Some(tx) = st.legacy_streams.lock().get(&sid).cloned() else {
                return full(404, None, "no such session");
            };
            let Some(msg) = json else {
                return full(400, None, "");
            };
            if let (Some(id), Some(method)) =
                (msg.get("id"), msg.get("method").and_then(Value::as_str))
            {
                let result = match method {
                    "initialize" => {
                        json!({"protocolVersion": "2024-11-05", "capabilities": {"tools": {}},
                                           "serverInfo": {"name": "legacy-server", "version": "0.1"}})
                    }
                    "tools/call" => text(
                        msg["params"]["arguments"]["text"]
                            .as_str()
                            .unwrap_or_default(),
                    ),
                    _ => json!({}),
                };
                let event = format!("event: message\ndata: {}\n\n", rpc_result(id, result));
                let _ = tx.send(Bytes::from(event)).await;
            }
            full(202, None, "")
        }
        _ => full(405, None, "Streamable HTTP is not supported here"),
    }
}
