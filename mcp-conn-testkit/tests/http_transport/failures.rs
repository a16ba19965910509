//! Failures, and what each one ends: a connect failure (classified), a
//! status, an oversized or cut reply, a reply that is not JSON-RPC, a stall,
//! a dying server.

use std::time::Duration;

use http::Method;
use mcp_conn_core::{
    ConnectFailure, Connection, ConnectionConfig, ConnectionStatus, Error, TransportError,
};
use mcp_conn_testkit::http_server::{Behavior, Fault, Reply, TestHttpServer};
use mcp_transport_http::HttpTransport;
use serde_json::json;

use crate::common::{self, within};
use crate::{
    closed_port, connection, echo, handshake_error, is_connect_failure, server, transport_error,
};

#[tokio::test]
async fn connection_refused_is_a_retryable_connect_failure_with_its_cause() {
    let conn = connection(&format!("http://127.0.0.1:{}/mcp", closed_port()));
    let err = within("connect", conn.connect())
        .await
        .expect_err("refused");
    assert!(is_connect_failure(&err), "{err}");
    let source = transport_error(&err);
    assert!(
        matches!(
            source,
            TransportError::Connect {
                kind: ConnectFailure::Refused,
                source: Some(_),
                ..
            }
        ),
        "{source:?}"
    );
    assert!(source.is_refused() && err.is_retryable(), "{err}");
    // The cause is kept: an `io::Error` of kind `ConnectionRefused` is in
    // the chain.
    let mut cause = std::error::Error::source(source);
    let mut found = false;
    while let Some(c) = cause {
        found |= c
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
        cause = c.source();
    }
    assert!(found, "no io::Error in {source:?}");
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_dns_failure() {
    // `.invalid` never resolves (RFC 2606).
    let conn = connection("http://mcp-conn-test.invalid/mcp");
    let err = within("connect", conn.connect())
        .await
        .expect_err("no such host");
    let source = transport_error(&err);
    assert!(
        matches!(
            source,
            TransportError::Connect {
                kind: ConnectFailure::Dns,
                ..
            }
        ),
        "{source:?}"
    );
    assert!(!source.is_refused() && !source.is_tls());
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_tls_failure() {
    let srv = server(Behavior::default()).await;
    let conn = Connection::with_config(
        "web",
        HttpTransport::new(&format!("https://{}/mcp", srv.addr())).expect("url"),
        ConnectionConfig {
            auto_reconnect: false,
            ..common::config()
        },
    );
    let err = within("connect", conn.connect())
        .await
        .expect_err("no TLS there");
    let source = transport_error(&err);
    assert!(source.is_tls(), "{source:?}");
    assert!(!err.is_retryable(), "a TLS failure will fail again: {err}");
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
async fn a_cut_reply_stream_without_an_event_id_fails_only_its_request() {
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
        .expect_err("cut");
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert!(
        matches!(transport_error(&err), TransportError::Eof),
        "{err}"
    );
    assert_eq!(echo(&conn, "after").await, "after");
    assert_eq!(conn.status(), ConnectionStatus::Connected);
    assert_eq!(conn.info().connection_count, 1, "the link lived on");
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
async fn a_500_is_retryable_and_the_connection_reconnects() {
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    let client = within("connect", conn.connect()).await.expect("connects");
    srv.push_fault(Fault::Status(500));
    let err = within("call", client.call_tool("echo", json!({"text": "x"})))
        .await
        .expect_err("500");
    assert!(
        matches!(
            &err,
            Error::ConnectionLost {
                reason: TransportError::Http { status: 500, .. },
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
    let transport = HttpTransport::builder(srv.url())
        .response_timeout(Duration::from_millis(300))
        .build()
        .expect("url");
    let conn = Connection::with_config(
        "web",
        transport,
        ConnectionConfig {
            auto_reconnect: false,
            ..common::config()
        },
    );
    // initialize works; `notifications/initialized` is never acknowledged.
    let err = handshake_error(&conn).await;
    match transport_error(&err) {
        TransportError::Timeout { what, after } => {
            assert_eq!(*after, Duration::from_millis(300));
            assert!(what.contains("notifications/initialized"), "{what}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn busy_429_and_503_fail_one_request_with_retry_after() {
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    let client = within("connect", conn.connect()).await.expect("connects");
    let in_a_minute = httpdate_in(Duration::from_secs(60));
    for (status, header, want) in [
        (429, Some("3".to_owned()), Some(Duration::from_secs(3))),
        (
            503,
            Some("7200".to_owned()),
            Some(Duration::from_secs(3600)),
        ),
        (429, Some("soon".to_owned()), None),
        (503, None, None),
        (503, Some(in_a_minute), Some(Duration::from_secs(60))),
    ] {
        srv.push_fault(Fault::Busy {
            status,
            retry_after: header.clone(),
        });
        let err = within("busy", client.call_tool("echo", json!({"text": "x"})))
            .await
            .expect_err("busy");
        assert!(matches!(err, Error::Transport { .. }), "{err}");
        let source = transport_error(&err);
        assert!(
            matches!(source, TransportError::Http { status: s, .. } if *s == status),
            "{source:?}"
        );
        assert!(err.is_retryable(), "{err}");
        let got = err.retry_after();
        match want {
            // An HTTP date is read against the clock: allow a second.
            Some(w) => assert!(
                got.is_some_and(|g| g <= w && g + Duration::from_secs(2) >= w),
                "{status} {header:?}: {got:?}"
            ),
            None => assert_eq!(got, None, "{status} {header:?}"),
        }
        assert_eq!(echo(&conn, "next").await, "next", "the link lives on");
    }
    assert_eq!(conn.info().connection_count, 1);
}

/// An HTTP date `after` from now.
fn httpdate_in(after: Duration) -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now() + after)
}

#[tokio::test]
async fn busy_on_initialize_ends_the_link_with_retry_after() {
    let srv = server(Behavior::default()).await;
    srv.push_fault(Fault::Busy {
        status: 503,
        retry_after: Some("5".into()),
    });
    let conn = Connection::with_config(
        "web",
        HttpTransport::new(&srv.url()).expect("url"),
        ConnectionConfig {
            auto_reconnect: false,
            ..common::config()
        },
    );
    let err = within("connect", conn.connect()).await.expect_err("busy");
    assert!(is_connect_failure(&err), "{err}");
    assert!(
        matches!(
            transport_error(&err),
            TransportError::Http { status: 503, .. }
        ),
        "{err}"
    );
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
}

#[tokio::test]
async fn an_html_reply_fails_its_request_at_once() {
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    let client = within("connect", conn.connect()).await.expect("connects");
    srv.push_fault(Fault::Html);
    // Far less than the request timeout: the call must not wait for it.
    let err = tokio::time::timeout(
        Duration::from_secs(2),
        client.call_tool("echo", json!({"text": "x"})),
    )
    .await
    .expect("failed at once")
    .expect_err("not JSON-RPC");
    match transport_error(&err) {
        TransportError::UnexpectedContent {
            status: 200,
            content_type,
            body_start,
        } => {
            assert!(content_type.starts_with("text/html"), "{content_type}");
            assert!(body_start.starts_with("<html>"), "{body_start}");
            assert!(body_start.len() <= 200, "bounded: {}", body_start.len());
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(echo(&conn, "after").await, "after");
    assert_eq!(conn.info().connection_count, 1);
}

#[tokio::test]
async fn an_oversized_reply_fails_only_its_request() {
    for reply in [Reply::Json, Reply::Sse] {
        let srv = server(Behavior {
            reply,
            ..Default::default()
        })
        .await;
        let transport = HttpTransport::builder(srv.url())
            .max_message_size(64 * 1024)
            .build()
            .expect("valid");
        let conn = Connection::with_config("web", transport, common::config());
        let client = within("connect", conn.connect()).await.expect("connects");
        // Two requests in flight; the second one's reply is too large.
        let slow = {
            let client = client.clone();
            tokio::spawn(async move { client.call_tool("sleep", json!({"ms": 300})).await })
        };
        common::eventually("the slow call is in flight", || {
            !srv.requests_for("tools/call").is_empty()
        })
        .await;
        let err = within("big", client.call_tool("big", json!({"bytes": 100 * 1024})))
            .await
            .expect_err("too large");
        assert!(matches!(err, Error::Transport { .. }), "{reply:?}: {err}");
        assert!(
            matches!(
                transport_error(&err),
                TransportError::MessageTooLarge { size, limit: 65536 } if *size > 65536
            ),
            "{reply:?}: {err}"
        );
        let slept = within("slow", slow).await.expect("task").expect("answered");
        assert_eq!(slept.text(), "slept");
        assert_eq!(conn.status(), ConnectionStatus::Connected);
        assert_eq!(
            conn.info().connection_count,
            1,
            "{reply:?}: the link lived on"
        );
        assert_eq!(echo(&conn, "after").await, "after");
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let elsewhere = server(Behavior::default()).await;
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    let client = within("connect", conn.connect()).await.expect("connects");
    srv.push_fault(Fault::Redirect {
        location: elsewhere.url(),
    });
    let err = within("redirected", client.call_tool("echo", json!({"text": "x"})))
        .await
        .expect_err("a 307 is an error");
    assert!(
        matches!(
            transport_error(&err),
            TransportError::Http { status: 307, .. }
        ),
        "{err}"
    );
    assert!(!err.is_retryable());
    // On `initialize` too: the link is not opened, and nothing went there.
    srv.push_fault(Fault::Redirect {
        location: elsewhere.url(),
    });
    let conn = Connection::with_config(
        "web",
        HttpTransport::new(&srv.url()).expect("url"),
        ConnectionConfig {
            auto_reconnect: false,
            ..common::config()
        },
    );
    let err = within("connect", conn.connect())
        .await
        .expect_err("a 307 is an error");
    assert!(
        matches!(
            transport_error(&err),
            TransportError::Http { status: 307, .. }
        ),
        "{err}"
    );
    assert!(elsewhere.requests().is_empty(), "followed a redirect");
}

#[tokio::test]
async fn a_json_reply_that_is_not_json_rpc_fails_its_request_at_once() {
    let srv = server(Behavior::default()).await;
    let conn = connection(&srv.url());
    let client = within("connect", conn.connect()).await.expect("connects");
    srv.push_fault(Fault::NotJsonRpc);
    let err = tokio::time::timeout(
        Duration::from_secs(2),
        client.call_tool("echo", json!({"text": "x"})),
    )
    .await
    .expect("failed at once")
    .expect_err("not JSON-RPC");
    assert!(
        matches!(transport_error(&err), TransportError::Protocol(_)),
        "{err}"
    );
    assert_eq!(echo(&conn, "after").await, "after");
    assert_eq!(conn.info().connection_count, 1);
}
