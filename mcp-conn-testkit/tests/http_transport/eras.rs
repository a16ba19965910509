//! Era detection over Streamable HTTP: a stateless server and its headers,
//! each legacy answer to the probe, auth failures that never fall back, and
//! `-32022`.

use http::Method;
use mcp_conn_core::{
    Connection, ConnectionConfig, Error, ProtocolEra, ProtocolPreference, TransportError,
};
use mcp_conn_testkit::http_server::Behavior;
use mcp_transport_http::HttpTransport;
use serde_json::json;

use crate::common::{self, within};
use crate::{connection, echo, server};

const V: &str = "2026-07-28";

fn stateless() -> Behavior {
    Behavior {
        stateless: Some(vec![V.into()]),
        sessions: false,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_stateless_server_gets_its_headers_and_no_session_machinery() {
    let srv = server(stateless()).await;
    let conn = connection(&srv.url());
    let client = within("connect", conn.connect()).await.expect("connects");
    assert_eq!(client.protocol_era(), Some(ProtocolEra::Stateless));
    assert_eq!(client.protocol_version(), Some(V));
    assert_eq!(echo(&conn, "hi").await, "hi");
    assert!(
        within("health", conn.health_check()).await.ok,
        "alive without ping"
    );
    within("disconnect", conn.disconnect()).await;
    let reqs = srv.requests();
    assert!(
        reqs.iter().all(|r| r.method == Method::POST),
        "no GET, no DELETE"
    );
    for r in &reqs {
        assert_eq!(
            r.header("mcp-protocol-version"),
            Some(V),
            "{:?}",
            r.rpc_method()
        );
        assert_eq!(r.header("mcp-method"), r.rpc_method());
        assert!(r.header("mcp-session-id").is_none());
    }
    let call = &srv.requests_for("tools/call")[0];
    assert_eq!(call.header("mcp-name"), Some("echo"));
    assert!(
        srv.requests()
            .iter()
            .all(|r| r.rpc_method() != Some("initialize")),
        "no initialize"
    );
}

#[tokio::test]
async fn every_legacy_answer_to_the_probe_falls_back() {
    let answers = [
        (
            400,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Bad Request: Unsupported protocol version"}}"#,
        ),
        (
            400,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"Invalid params"}}"#,
        ),
        (
            200,
            r#"{"jsonrpc":"2.0","id":$ID,"error":{"code":-32601,"message":"Method not found"}}"#,
        ),
        (
            404,
            r#"{"jsonrpc":"2.0","id":$ID,"error":{"code":-32601,"message":"Method not found"}}"#,
        ),
        (405, ""),
        (400, "Bad Request: no session"),
    ];
    for (status, body) in answers {
        let srv = server(Behavior {
            discover_reply: Some((status, body.into())),
            ..Default::default()
        })
        .await;
        let conn = connection(&srv.url());
        let client = within("connect", conn.connect())
            .await
            .unwrap_or_else(|e| panic!("{status} {body}: {e}"));
        assert_eq!(
            client.protocol_era(),
            Some(ProtocolEra::Handshake),
            "{status} {body}"
        );
        assert_eq!(echo(&conn, "old").await, "old");
    }
}

#[tokio::test]
async fn auth_failures_on_the_probe_never_fall_back() {
    let srv = server(Behavior {
        require_token: Some("secret".into()),
        ..Default::default()
    })
    .await;
    let config = ConnectionConfig {
        auto_reconnect: false,
        ..common::config()
    };
    let conn = Connection::with_config(
        "web",
        HttpTransport::new(&srv.url()).expect("url"),
        config.clone(),
    );
    let err = within("connect", conn.connect()).await.expect_err("401");
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(matches!(
        err.transport_error(),
        Some(TransportError::Unauthorized { .. })
    ));
    assert!(srv.requests_for("initialize").is_empty(), "no fallback");

    let srv = server(Behavior {
        discover_reply: Some((403, r#"{"error":"forbidden"}"#.into())),
        ..Default::default()
    })
    .await;
    let conn = Connection::with_config("web", HttpTransport::new(&srv.url()).expect("url"), config);
    let err = within("connect", conn.connect()).await.expect_err("403");
    assert_eq!(
        err.transport_error().and_then(TransportError::http_status),
        Some(403),
        "{err}"
    );
    assert!(srv.requests_for("initialize").is_empty(), "no fallback");
}

#[tokio::test]
async fn unsupported_version_is_retried_never_a_fallback() {
    let srv = server(stateless()).await;
    let config = ConnectionConfig {
        protocol: ProtocolPreference::Stateless(vec!["2031-01-01".into(), V.into()]),
        ..common::config()
    };
    let conn = Connection::with_config("web", HttpTransport::new(&srv.url()).expect("url"), config);
    let client = within("connect", conn.connect()).await.expect("connects");
    assert_eq!(client.protocol_version(), Some(V));
    let probes = srv.requests_for("server/discover");
    assert_eq!(probes[0].header("mcp-protocol-version"), Some("2031-01-01"));
    assert_eq!(probes[1].header("mcp-protocol-version"), Some(V));

    // A -32022 with a null id and no mutual version: an error, no initialize.
    let srv = server(Behavior {
        discover_reply: Some((
            400,
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32022, "message": "Unsupported protocol version", "data": {"supported": ["2099-01-01"]}}}).to_string(),
        )),
        ..Default::default()
    })
    .await;
    let config = ConnectionConfig {
        auto_reconnect: false,
        ..common::config()
    };
    let conn = Connection::with_config("web", HttpTransport::new(&srv.url()).expect("url"), config);
    let err = within("connect", conn.connect())
        .await
        .expect_err("no mutual version");
    assert!(matches!(err, Error::UnsupportedVersion { .. }), "{err}");
    assert!(
        srv.requests_for("initialize").is_empty(),
        "never a fallback"
    );
}

#[tokio::test]
async fn a_cancelled_stateless_request_closes_its_stream_and_posts_nothing() {
    let srv = server(stateless()).await;
    let conn = connection(&srv.url());
    let client = within("connect", conn.connect()).await.expect("connects");
    let opts = mcp_conn_core::RequestOptions::new().timeout(std::time::Duration::from_millis(100));
    let err = within(
        "times out",
        client.call_tool_with("sleep", json!({"ms": 2000}), &opts),
    )
    .await
    .expect_err("timed out");
    assert!(err.is_timeout(), "{err}");
    // The session goes on, and no notification was POSTed.
    assert_eq!(echo(&conn, "after").await, "after");
    assert!(
        srv.requests()
            .iter()
            .all(|r| r.rpc_method() != Some("notifications/cancelled")),
        "the stateless era sends no notifications over HTTP"
    );
}
