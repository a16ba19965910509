//! Sessions: what every POST carries, the session id and version headers,
//! renewal after a 404, the handshake order, and DELETE on close.

use http::Method;
use mcp_conn_core::{Connection, ConnectionConfig, ConnectionStatus, TransportError};
use mcp_conn_testkit::http_server::Behavior;
use mcp_transport_http::HttpTransport;

use crate::common::{self, within};
use crate::{after_probe, connection, echo, handshake_error, server, transport_error};

#[tokio::test]
async fn every_post_is_json_and_accepts_json_and_sse() {
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
            "never a batch"
        );
    }
}

#[tokio::test]
async fn notifications_are_delivered_on_202_and_anything_else_ends_the_link() {
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
    let err = handshake_error(&conn).await;
    assert!(
        matches!(
            transport_error(&err),
            TransportError::Http { status: 500, .. }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn the_session_id_goes_on_every_later_request_and_only_then() {
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
    let reqs = after_probe(&srv);
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
async fn the_negotiated_version_goes_on_every_request_after_initialize() {
    let srv = server(Behavior {
        protocol_version: Some("2025-06-18".into()),
        ..Default::default()
    })
    .await;
    let conn = connection(&srv.url());
    let client = within("connect", conn.connect()).await.expect("connects");
    assert_eq!(client.protocol_version(), Some("2025-06-18"));
    echo(&conn, "v").await;
    let reqs = after_probe(&srv);
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
async fn an_expired_session_is_renewed_and_the_request_retried_once() {
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
async fn closing_deletes_the_session_and_accepts_404_or_405() {
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
async fn initialized_and_the_get_stream_come_before_any_request() {
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
        let order: Vec<String> = after_probe(&srv)
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

#[tokio::test]
async fn no_get_stream_when_nothing_can_arrive_unasked() {
    // The server declares only `tools: {}` and the client no handlers: the
    // optional GET stream would carry nothing, so none is opened.
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
