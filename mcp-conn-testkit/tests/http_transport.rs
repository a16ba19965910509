//! Streamable HTTP (and the legacy HTTP+SSE fallback) against the scripted
//! test server: one test per checklist item 44-61, plus refused connections,
//! a server restart, 1,000 concurrent requests and a 10 MiB response.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::within;
use http::Method;
use mcp_conn_core::jsonrpc::JsonRpcError;
use mcp_conn_core::protocol::{ListRootsResult, LoggingLevel, Root};
use mcp_conn_core::{
    ClientHandlers, Connection, ConnectionConfig, ConnectionStatus, Error, RootsProvider,
    ServerNotification, TransportError,
};
use mcp_conn_testkit::http_server::{Behavior, Fault, Reply, TestHttpServer};
use mcp_transport_http::{HttpMode, HttpTransport};
use serde_json::json;

async fn server(behavior: Behavior) -> TestHttpServer {
    TestHttpServer::start(behavior)
        .await
        .expect("the test server starts")
}

fn connection(url: &str) -> Connection {
    Connection::with_config(
        "web",
        HttpTransport::new(url).expect("valid url"),
        common::config(),
    )
}

async fn echo(conn: &Connection, text: &str) -> String {
    let client = conn.client().expect("connected");
    within("echo", client.call_tool("echo", json!({ "text": text })))
        .await
        .expect("answered")
        .text()
}

#[tokio::test]
async fn item_44_every_post_is_json_and_accepts_json_and_sse() {
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    within("connect", conn.connect()).await.expect("connects");
    assert_eq!(echo(&conn, "hi").await, "hi");
    let posts: Vec<_> = srv
        .requests()
        .into_iter()
        .filter(|r| r.method == Method::POST)
        .collect();
    assert!(posts.len() >= 3, "initialize, initialized, tools/call");
    for p in posts {
        assert_eq!(
            p.header("content-type"),
            Some("application/json"),
            "{:?}",
            p.rpc_method()
        );
        let accept = p.header("accept").unwrap_or_default();
        assert!(
            accept.contains("application/json") && accept.contains("text/event-stream"),
            "{accept}"
        );
        assert!(
            !p.body.as_ref().is_some_and(serde_json::Value::is_array),
            "never a batch (item 7)"
        );
    }
}

#[tokio::test]
async fn item_45_notifications_are_delivered_on_202_and_anything_else_fails() {
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    within("connect", conn.connect()).await.expect("connects");
    common::eventually("initialized delivered", || {
        srv.requests_for("notifications/initialized").len() == 1
    })
    .await;
    assert_eq!(echo(&conn, "still connected").await, "still connected");

    let srv = server(Behavior {
        notification_status: 500,
        ..Default::default()
    })
    .await;
    let conn = Connection::with_config(
        "web",
        HttpTransport::new(&srv.url()).expect("url"),
        ConnectionConfig {
            auto_reconnect: false,
            ..common::config()
        },
    );
    // initialized is refused with 500: the link is lost.
    let _ = within("connect", conn.connect()).await;
    common::wait_status(&conn, ConnectionStatus::Error).await;
    assert!(conn
        .info()
        .last_error
        .is_some_and(|e| e.message.contains("HTTP 500")));
}

#[tokio::test]
async fn item_46_json_and_sse_replies_are_both_handled() {
    for reply in [Reply::Json, Reply::Sse] {
        let srv = server(Behavior {
            reply,
            ..Default::default()
        })
        .await;
        let conn = connection(&srv.url());
        let client = within("connect", conn.connect()).await.expect("connects");
        assert_eq!(client.protocol_version(), Some("2025-11-25"), "{reply:?}");
        assert_eq!(
            within("tools", client.list_tools())
                .await
                .expect("tools")
                .len(),
            2
        );
        assert_eq!(echo(&conn, "both").await, "both", "{reply:?}");
    }
}

#[tokio::test]
async fn item_47_messages_on_a_reply_stream_are_demultiplexed() {
    let srv = server(Behavior {
        reply: Reply::Sse,
        ..Default::default()
    })
    .await;
    let conn = connection(&srv.url());
    let mut notes = conn.notifications();
    let client = within("connect", conn.connect()).await.expect("connects");
    // The server sends a log notification on the reply stream, then the result.
    let r = within("notify", client.call_tool("notify", json!({})))
        .await
        .expect("answered");
    assert_eq!(r.text(), "notified");
    let note = within("note", notes.recv()).await.expect("notification");
    assert!(
        matches!(
            note,
            ServerNotification::Log {
                level: LoggingLevel::Info,
                ..
            }
        ),
        "{note:?}"
    );
}

#[tokio::test]
async fn item_48_the_session_id_goes_on_every_later_request_and_only_then() {
    let srv = server(Behavior {
        get_stream: true,
        ..Default::default()
    })
    .await;
    let conn = connection(&srv.url());
    within("connect", conn.connect()).await.expect("connects");
    echo(&conn, "x").await;
    common::eventually("the GET stream", || {
        srv.requests().iter().any(|r| r.method == Method::GET)
    })
    .await;
    within("disconnect", conn.disconnect()).await;
    let reqs = srv.requests();
    assert!(
        reqs[0].header("mcp-session-id").is_none(),
        "initialize carries none"
    );
    let session = "sess-0";
    for r in &reqs[1..] {
        assert_eq!(
            r.header("mcp-session-id"),
            Some(session),
            "{} {:?}",
            r.method,
            r.rpc_method()
        );
    }
    assert!(reqs.iter().any(|r| r.method == Method::DELETE));

    let srv = server(Behavior {
        sessions: false,
        ..Default::default()
    })
    .await;
    let conn = connection(&srv.url());
    within("connect", conn.connect()).await.expect("connects");
    echo(&conn, "x").await;
    within("disconnect", conn.disconnect()).await;
    assert!(
        srv.requests()
            .iter()
            .all(|r| r.header("mcp-session-id").is_none()),
        "never sent"
    );
    assert!(
        !srv.requests().iter().any(|r| r.method == Method::DELETE),
        "no session, no DELETE"
    );
}

#[tokio::test]
async fn item_49_the_negotiated_version_goes_on_every_request_after_initialize() {
    let srv = server(Behavior {
        protocol_version: Some("2025-06-18".into()),
        ..Default::default()
    })
    .await;
    let conn = connection(&srv.url());
    let client = within("connect", conn.connect()).await.expect("connects");
    assert_eq!(client.protocol_version(), Some("2025-06-18"));
    echo(&conn, "v").await;
    let reqs = srv.requests();
    assert!(reqs[0].header("mcp-protocol-version").is_none());
    for r in &reqs[1..] {
        assert_eq!(
            r.header("mcp-protocol-version"),
            Some("2025-06-18"),
            "{:?}",
            r.rpc_method()
        );
    }
}

#[tokio::test]
async fn item_50_an_expired_session_is_renewed_and_the_request_retried_once() {
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    within("connect", conn.connect()).await.expect("connects");
    assert_eq!(echo(&conn, "first").await, "first");
    srv.expire_sessions();
    assert_eq!(echo(&conn, "again").await, "again", "transparently retried");
    let inits = srv.requests_for("initialize");
    assert_eq!(inits.len(), 2);
    assert!(
        inits[1].header("mcp-session-id").is_none(),
        "the fresh initialize carries no session"
    );
    assert_eq!(
        srv.requests_for("notifications/initialized").len(),
        2,
        "once per session"
    );
    let calls = srv.requests_for("tools/call");
    assert_eq!(
        calls.len(),
        3,
        "the first call, the refused one, and one retry"
    );
    assert_eq!(calls[1].header("mcp-session-id"), Some("sess-0"));
    assert_eq!(calls[2].header("mcp-session-id"), Some("sess-1"));
    assert_eq!(
        conn.info().connection_count,
        1,
        "the Connection never saw a loss"
    );
}

#[tokio::test]
async fn a_session_expiring_during_the_handshake_sends_initialized_once() {
    for _ in 0..10 {
        let srv = server(Behavior::default()).await;
        let conn = connection(&srv.url());
        within("connect", conn.connect()).await.expect("connects");
        srv.expire_sessions(); // maybe before `initialized` is delivered
        assert_eq!(echo(&conn, "x").await, "x");
        for session in ["sess-0", "sess-1"] {
            let n = srv
                .requests_for("notifications/initialized")
                .iter()
                .filter(|r| r.header("mcp-session-id") == Some(session))
                .count();
            assert!(n <= 1, "{session} got initialized {n} times");
        }
    }
}

#[tokio::test]
async fn items_51_52_a_broken_stream_is_resumed_after_retry_with_last_event_id() {
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    within("connect", conn.connect()).await.expect("connects");
    srv.push_fault(Fault::PrimeAndClose { retry_ms: 500 });
    assert_eq!(echo(&conn, "resumed").await, "resumed");
    let reqs = srv.requests();
    let post = reqs
        .iter()
        .rev()
        .find(|r| r.rpc_method() == Some("tools/call"))
        .expect("the POST");
    let get = reqs
        .iter()
        .rev()
        .find(|r| r.method == Method::GET && r.header("last-event-id").is_some())
        .expect("a resume");
    assert!(get
        .header("last-event-id")
        .is_some_and(|id| id.starts_with("ev-")));
    let waited = get.at.duration_since(post.at);
    assert!(
        waited >= Duration::from_millis(450) && waited <= Duration::from_millis(1000),
        "waited {waited:?}"
    );
    assert_eq!(conn.info().connection_count, 1, "not a lost link");
}

#[tokio::test]
async fn item_53_a_405_get_stream_is_not_retried_and_a_real_one_delivers() {
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    within("connect", conn.connect()).await.expect("connects");
    common::eventually("one GET", || {
        srv.requests().iter().any(|r| r.method == Method::GET)
    })
    .await;
    for i in 0..3 {
        echo(&conn, &i.to_string()).await;
    }
    let gets: Vec<_> = srv
        .requests()
        .into_iter()
        .filter(|r| r.method == Method::GET)
        .collect();
    assert_eq!(gets.len(), 1, "405 turns it off");
    assert_eq!(gets[0].header("accept"), Some("text/event-stream"));

    let srv = server(Behavior {
        get_stream: true,
        ..Default::default()
    })
    .await;
    let conn = connection(&srv.url());
    let mut notes = conn.notifications();
    within("connect", conn.connect()).await.expect("connects");
    common::eventually("the stream is open", || {
        srv.push_message(&json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}))
            > 0
    })
    .await;
    assert_eq!(
        within("note", notes.recv()).await.expect("note"),
        ServerNotification::ToolsListChanged
    );
}

struct Roots;

#[async_trait]
impl RootsProvider for Roots {
    async fn list_roots(&self) -> Result<ListRootsResult, JsonRpcError> {
        Ok(ListRootsResult {
            roots: vec![Root {
                uri: "file:///srv".into(),
                name: None,
            }],
        })
    }
}

#[tokio::test]
async fn item_54_server_requests_on_a_stream_are_answered_by_post() {
    let srv = server(Behavior {
        reply: Reply::Sse,
        ..Default::default()
    })
    .await;
    let config = ConnectionConfig {
        handlers: ClientHandlers {
            roots: Some(Arc::new(Roots)),
            ..Default::default()
        },
        ..common::config()
    };
    let conn = Connection::with_config("web", HttpTransport::new(&srv.url()).expect("url"), config);
    let client = within("connect", conn.connect()).await.expect("connects");
    let r = within("ask_roots", client.call_tool("ask_roots", json!({})))
        .await
        .expect("answered");
    assert!(r.text().contains("file:///srv"), "{}", r.text());
    let answers: Vec<_> = srv
        .requests()
        .into_iter()
        .filter(|r| r.body.as_ref().is_some_and(|b| b.get("result").is_some()))
        .collect();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].body.as_ref().expect("body")["id"], "srv-roots-1");
}

#[tokio::test]
async fn item_55_closing_deletes_the_session_and_accepts_404_or_405() {
    for status in [200, 404, 405] {
        let srv = server(Behavior {
            delete_status: status,
            ..Default::default()
        })
        .await;
        let conn = connection(&srv.url());
        within("connect", conn.connect()).await.expect("connects");
        within("disconnect", conn.disconnect()).await;
        let deletes: Vec<_> = srv
            .requests()
            .into_iter()
            .filter(|r| r.method == Method::DELETE)
            .collect();
        assert_eq!(deletes.len(), 1, "{status}");
        assert_eq!(deletes[0].header("mcp-session-id"), Some("sess-0"));
        assert_eq!(conn.status(), ConnectionStatus::Disconnected);
    }
}

#[tokio::test]
async fn item_56_an_old_server_is_reached_over_http_sse() {
    for mode in [HttpMode::Auto, HttpMode::LegacySse] {
        let srv = server(Behavior {
            legacy: true,
            ..Default::default()
        })
        .await;
        let transport = HttpTransport::new(&srv.url()).expect("url").mode(mode);
        let conn = Connection::with_config("old", transport, common::config());
        let client = within("connect", conn.connect()).await.expect("connects");
        assert_eq!(client.protocol_version(), Some("2024-11-05"));
        assert_eq!(echo(&conn, "legacy").await, "legacy", "{mode:?}");
        let posts: Vec<_> = srv
            .requests()
            .into_iter()
            .filter(|r| r.method == Method::POST)
            .collect();
        assert!(
            posts
                .iter()
                .any(|p| p.path.starts_with("/messages?session=")),
            "posted to the endpoint"
        );
    }
}

#[tokio::test]
async fn items_57_59_401_and_403_are_typed_and_never_retried_in_a_loop() {
    for (code, want_unauthorized) in [(401, true), (403, false)] {
        let srv = server(Behavior {
            status_all: Some(code),
            ..Default::default()
        })
        .await;
        let conn = connection(&srv.url());
        let err = within("connect", conn.connect())
            .await
            .expect_err("refused");
        match (&err, want_unauthorized) {
            (
                Error::Connect {
                    source: TransportError::Unauthorized { www_authenticate },
                    ..
                },
                true,
            ) => {
                let w = www_authenticate.as_deref().unwrap_or_default();
                assert!(
                    w.contains("resource_metadata=") && w.contains("scope=\"tools\""),
                    "{w}"
                );
            }
            (
                Error::Connect {
                    source: TransportError::Http { status: 403, .. },
                    ..
                },
                false,
            ) => {}
            (other, _) => panic!("{code}: unexpected {other}"),
        }
        common::wait_status(&conn, ConnectionStatus::Error).await;
        // One attempt, then nothing: no tight loop.
        let posts = srv.requests_for("initialize").len();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(srv.requests_for("initialize").len(), posts);
        assert_eq!(posts, 1, "{code}");
    }
}

#[tokio::test]
async fn item_58_static_headers_and_the_bearer_token_go_on_every_request() {
    let srv = server(Behavior {
        get_stream: true,
        ..Default::default()
    })
    .await;
    let transport = HttpTransport::new(&srv.url())
        .expect("url")
        .bearer_token("tok-123")
        .expect("token")
        .header("X-Tenant", "acme")
        .expect("header");
    let debug = format!("{transport:?}");
    assert!(
        !debug.contains("tok-123") && !debug.contains("acme"),
        "secrets in Debug: {debug}"
    );
    let conn = Connection::with_config("web", transport, common::config());
    within("connect", conn.connect()).await.expect("connects");
    echo(&conn, "auth").await;
    common::eventually("the GET stream", || {
        srv.requests().iter().any(|r| r.method == Method::GET)
    })
    .await;
    within("disconnect", conn.disconnect()).await;
    for r in srv.requests() {
        assert_eq!(
            r.header("authorization"),
            Some("Bearer tok-123"),
            "{} {:?}",
            r.method,
            r.rpc_method()
        );
        assert_eq!(r.header("x-tenant"), Some("acme"));
        assert!(!r.path.contains("tok-123"), "never in the URL");
    }
    // Item 61 (stdio servers get credentials only through the environment)
    // is tested in stdio_faults.rs: the_environment_is_an_allow_list_and_values_stay_secret.
}

#[tokio::test]
async fn a_bad_url_is_a_typed_error() {
    for bad in ["not a url", "ftp://example.com/mcp", "http://"] {
        let err = HttpTransport::new(bad).expect_err(bad);
        assert!(err.to_string().contains("invalid MCP server URL"), "{err}");
    }
    assert!(HttpTransport::new("http://127.0.0.1:1/mcp")
        .expect("ok")
        .header("bad header", "x")
        .is_err());
}

#[tokio::test]
async fn connection_refused_is_a_retryable_connect_failure() {
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let conn = connection(&format!("http://127.0.0.1:{port}/mcp"));
    let err = within("connect", conn.connect())
        .await
        .expect_err("refused");
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().to_lowercase().contains("connect"), "{err}");
}

#[tokio::test]
async fn a_server_that_dies_and_restarts_on_the_same_port_is_reconnected() {
    let srv = server(Behavior {
        get_stream: true,
        ..Default::default()
    })
    .await;
    let addr = srv.addr();
    let conn = connection(&srv.url());
    within("connect", conn.connect()).await.expect("connects");
    common::eventually("the GET stream", || {
        srv.requests().iter().any(|r| r.method == Method::GET)
    })
    .await;
    let mut status = conn.subscribe();
    srv.stop();
    // Noticed without any request: the GET stream breaks and cannot reopen.
    within(
        "reconnecting",
        status.wait_for(|s| *s == ConnectionStatus::Reconnecting),
    )
    .await
    .expect("status");
    let srv = TestHttpServer::start_on(
        addr,
        Behavior {
            get_stream: true,
            ..Default::default()
        },
    )
    .await
    .expect("restart");
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    assert_eq!(echo(&conn, "back").await, "back");
    assert!(!srv.requests_for("initialize").is_empty());
}

#[tokio::test]
async fn a_cut_stream_without_an_event_id_loses_the_link_and_recovers() {
    let srv = server(Behavior {
        reply: Reply::Sse,
        ..Default::default()
    })
    .await;
    let conn = connection(&srv.url());
    let client = within("connect", conn.connect()).await.expect("connects");
    srv.push_fault(Fault::CutMidEvent);
    let err = within("cut", client.call_tool("echo", json!({"text": "x"})))
        .await
        .expect_err("lost");
    assert!(matches!(err, Error::ConnectionLost { .. }), "{err}");
    common::eventually("a reconnect", || conn.info().connection_count >= 2).await;
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    assert_eq!(echo(&conn, "after").await, "after");
}

#[tokio::test]
async fn a_stalled_request_times_out_and_the_session_goes_on() {
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    let client = within("connect", conn.connect()).await.expect("connects");
    srv.push_fault(Fault::Stall);
    let opts = mcp_conn_core::RequestOptions::new().timeout(Duration::from_millis(300));
    let err = within("stall", client.call_tool_with("echo", json!({}), &opts))
        .await
        .expect_err("times out");
    assert!(err.is_timeout(), "{err}");
    common::eventually("the cancel", || {
        !srv.requests_for("notifications/cancelled").is_empty()
    })
    .await;
    assert_eq!(echo(&conn, "still here").await, "still here");
}

#[tokio::test]
async fn a_thousand_concurrent_requests_share_one_session() {
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    let client = within("connect", conn.connect()).await.expect("connects");
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let c = client.clone();
        calls.spawn(async move { (i, c.call_tool("echo", json!({"text": i.to_string()})).await) });
    }
    within("all answers", async {
        while let Some(done) = calls.join_next().await {
            let (i, r) = done.expect("task");
            assert_eq!(r.expect("answered").text(), i.to_string());
        }
    })
    .await;
    assert_eq!(srv.requests_for("initialize").len(), 1);
    assert!(srv
        .requests_for("tools/call")
        .iter()
        .all(|r| r.header("mcp-session-id") == Some("sess-0")));
}

#[tokio::test]
async fn a_10_mib_response_arrives_whole() {
    for reply in [Reply::Json, Reply::Sse] {
        let srv = server(Behavior {
            reply,
            ..Default::default()
        })
        .await;
        let conn = connection(&srv.url());
        let client = within("connect", conn.connect()).await.expect("connects");
        let r = within(
            "big",
            client.call_tool("big", json!({"bytes": 10 * 1024 * 1024})),
        )
        .await
        .expect("answered");
        assert_eq!(r.text().len(), 10 * 1024 * 1024, "{reply:?}");
    }
}

#[tokio::test]
async fn requests_reuse_one_kept_alive_connection() {
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    within("connect", conn.connect()).await.expect("connects");
    echo(&conn, "warm").await;
    common::eventually("the GET attempt", || {
        srv.requests().iter().any(|r| r.method == Method::GET)
    })
    .await;
    // The handshake's concurrent POSTs may have opened a second pooled
    // connection; from here on, sequential calls must reuse them.
    let before = srv.connections();
    for i in 0..20 {
        echo(&conn, &i.to_string()).await;
    }
    assert_eq!(srv.connections(), before, "20 calls opened new connections");
    assert!(before <= 3, "{before} connections");
}

/// A token provider that hands out a script of tokens and records what it was asked.
struct Tokens {
    first: &'static str,
    refreshed: Vec<&'static str>,
    asked: Arc<std::sync::Mutex<Vec<mcp_transport_http::AuthChallenge>>>,
}

#[async_trait]
impl mcp_transport_http::TokenProvider for Tokens {
    async fn token(&self) -> Option<String> {
        Some(self.first.to_owned())
    }
    async fn refresh(&self, challenge: &mcp_transport_http::AuthChallenge) -> Option<String> {
        let mut asked = self
            .asked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        asked.push(challenge.clone());
        self.refreshed.get(asked.len() - 1).map(|t| (*t).to_owned())
    }
}

fn with_tokens(
    url: &str,
    first: &'static str,
    refreshed: Vec<&'static str>,
) -> (
    Connection,
    Arc<std::sync::Mutex<Vec<mcp_transport_http::AuthChallenge>>>,
) {
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let transport = HttpTransport::new(url)
        .expect("url")
        .token_provider(Tokens {
            first,
            refreshed,
            asked: asked.clone(),
        });
    (
        Connection::with_config("web", transport, common::config()),
        asked,
    )
}

#[tokio::test]
async fn item_59_a_401_asks_the_provider_once_then_gives_up() {
    let srv = server(Behavior {
        require_token: Some("fresh".into()),
        ..Default::default()
    })
    .await;
    let (conn, asked) = with_tokens(&srv.url(), "expired", vec!["fresh"]);
    within("connect", conn.connect())
        .await
        .expect("connects after one refresh");
    assert_eq!(echo(&conn, "ok").await, "ok");
    let challenges = asked.lock().expect("lock").clone();
    assert_eq!(challenges.len(), 1);
    assert_eq!(challenges[0].status, 401);
    assert_eq!(challenges[0].error.as_deref(), Some("invalid_token"));
    assert!(challenges[0]
        .resource_metadata
        .as_deref()
        .is_some_and(|u| u.ends_with("oauth-protected-resource")));

    // A refreshed token that is refused too: Unauthorized, no loop.
    let (conn, asked) = with_tokens(&srv.url(), "expired", vec!["also-bad", "never-asked"]);
    let err = within("connect", conn.connect())
        .await
        .expect_err("needs auth");
    assert!(
        matches!(
            &err,
            Error::Connect {
                source: TransportError::Unauthorized { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_retryable(), "a refused token is not retried");
    assert_eq!(asked.lock().expect("lock").len(), 1, "asked once");
    common::wait_status(&conn, ConnectionStatus::Error).await;
}

#[tokio::test]
async fn item_60_insufficient_scope_steps_up_with_a_retry_limit() {
    let srv = server(Behavior {
        scoped_token: Some("wide".into()),
        ..Default::default()
    })
    .await;
    let (conn, asked) = with_tokens(&srv.url(), "narrow", vec!["wide"]);
    within("connect", conn.connect()).await.expect("connects");
    assert_eq!(echo(&conn, "scoped").await, "scoped");
    let challenges = asked.lock().expect("lock").clone();
    assert_eq!(challenges.len(), 1);
    assert_eq!(
        (challenges[0].status, challenges[0].scope.as_deref()),
        (403, Some("tools:call"))
    );

    // The provider never gets the scope: two step-ups, then the 403 stands.
    let (conn, asked) = with_tokens(&srv.url(), "narrow", vec!["narrow2", "narrow3", "narrow4"]);
    let client = within("connect", conn.connect()).await.expect("connects");
    let err = within("call", client.call_tool("echo", json!({"text": "x"})))
        .await
        .expect_err("forbidden");
    assert!(
        matches!(
            &err,
            Error::ConnectionLost {
                reason: TransportError::Http { status: 403, .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(asked.lock().expect("lock").len(), 2, "the retry limit");
}

#[tokio::test]
async fn a_5xx_is_retryable_and_the_connection_reconnects() {
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    let client = within("connect", conn.connect()).await.expect("connects");
    srv.push_fault(Fault::Status(503));
    let err = within("call", client.call_tool("echo", json!({"text": "x"})))
        .await
        .expect_err("503");
    assert!(
        matches!(
            &err,
            Error::ConnectionLost {
                reason: TransportError::Http { status: 503, .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_retryable());
    common::eventually("a reconnect", || conn.info().connection_count >= 2).await;
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    assert_eq!(echo(&conn, "back").await, "back");
}

#[tokio::test]
async fn a_server_that_never_acknowledges_a_notification_times_out() {
    let srv = server(Behavior {
        stall_notifications: true,
        ..Default::default()
    })
    .await;
    let transport = HttpTransport::new(&srv.url())
        .expect("url")
        .response_timeout(Duration::from_millis(300));
    let conn = Connection::with_config(
        "web",
        transport,
        ConnectionConfig {
            auto_reconnect: false,
            ..common::config()
        },
    );
    // initialize works; `notifications/initialized` is never acknowledged.
    let _ = within("connect", conn.connect()).await;
    common::wait_status(&conn, ConnectionStatus::Error).await;
    let last = conn
        .info()
        .last_error
        .map(|e| e.message)
        .unwrap_or_default();
    assert!(
        last.contains("timed out") && last.contains("notifications/initialized"),
        "{last}"
    );
}

#[tokio::test]
async fn no_get_stream_when_nothing_can_arrive_unasked() {
    // The server declares only `tools: {}` and the client no handlers: the
    // optional GET stream (item 53) would carry nothing, so none is opened.
    let srv = server(Behavior {
        quiet: true,
        get_stream: true,
        ..Default::default()
    })
    .await;
    let conn = connection(&srv.url());
    within("connect", conn.connect()).await.expect("connects");
    for i in 0..3 {
        echo(&conn, &i.to_string()).await;
    }
    within("disconnect", conn.disconnect()).await;
    assert!(
        !srv.requests().iter().any(|r| r.method == Method::GET),
        "no GET stream"
    );
}

#[tokio::test]
async fn item_15_initialized_and_the_get_stream_come_before_any_request() {
    for _ in 0..20 {
        let srv = server(Behavior {
            get_stream: true,
            ..Default::default()
        })
        .await;
        let conn = connection(&srv.url());
        let client = within("connect", conn.connect()).await.expect("connects");
        // The very first call after connect must not overtake the handshake.
        within("tools", client.list_tools()).await.expect("tools");
        let order: Vec<String> = srv
            .requests()
            .iter()
            .map(|r| {
                r.rpc_method()
                    .map_or_else(|| r.method.to_string(), str::to_owned)
            })
            .collect();
        assert_eq!(
            order[..4],
            [
                "initialize",
                "notifications/initialized",
                "GET",
                "tools/list"
            ],
            "{order:?}"
        );
        within("disconnect", conn.disconnect()).await;
    }
}
