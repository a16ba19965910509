//! The `initialize` handshake.

mod common;

use std::time::Duration;

use mcp_conn_core::jsonrpc::{JsonRpcError, Message, RequestId};
use mcp_conn_core::testing::MockTransport;
use mcp_conn_core::{Connection, ConnectionConfig, ConnectionStatus, Error};
use serde_json::json;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn initialize_offers_the_latest_version_and_our_identity() {
    let (conn, _t, mut server) = common::scripted(common::config());
    let (client, link) = common::within("join", async {
        tokio::join!(conn.connect(), async {
            let mut link = server.accept().await;
            let init = link.handshake().await;
            (link, init)
        })
    })
    .await;
    let (_link, init) = link;
    let params = init.params.expect("params");
    assert_eq!(params["protocolVersion"], "2025-11-25");
    assert_eq!(params["clientInfo"]["name"], "mcp-conn");
    assert!(!params["clientInfo"]["version"]
        .as_str()
        .unwrap_or_default()
        .is_empty());
    assert_eq!(
        params["capabilities"],
        json!({}),
        "no handler, no capability (item 11)"
    );
    let client = client.expect("connects");
    assert_eq!(client.protocol_version(), Some("2025-11-25"));
    assert_eq!(client.server_info().map(|s| s.name.as_str()), Some("mock"));
    assert_eq!(conn.info().server_name.as_deref(), Some("mock"));
}

#[tokio::test(start_paused = true)]
async fn older_supported_versions_are_accepted() {
    for version in ["2025-06-18", "2025-03-26", "2024-11-05"] {
        let (conn, _t, mut server) = common::scripted(common::config());
        let (client, _link) = common::within("join", async {
            tokio::join!(conn.connect(), async {
                let mut link = server.accept().await;
                link.handshake_with(version, json!({"tools": {}})).await;
                link
            })
        })
        .await;
        assert_eq!(client.expect("connects").protocol_version(), Some(version));
    }
}

#[tokio::test(start_paused = true)]
async fn an_unsupported_version_is_refused_without_initialized() {
    let (conn, _t, mut server) = common::scripted(common::config());
    let (result, ()) = common::within("join", async { tokio::join!(conn.connect(), async {
        let mut link = server.accept().await;
        let init = link.expect_initialize().await;
        link.respond(
            init.id,
            json!({"protocolVersion": "1999-01-01", "capabilities": {}, "serverInfo": {"name": "old", "version": "0"}}),
        )
        .await;
        // Item 14: the link is closed and nothing else was sent.
        assert_eq!(common::within("close", link.recv()).await, None);
    }) })
.await;
    match result {
        Err(Error::UnsupportedVersion { offered, .. }) => assert_eq!(offered, "1999-01-01"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(conn.status(), ConnectionStatus::Error);
}

#[tokio::test(start_paused = true)]
async fn an_initialize_error_is_surfaced_with_its_data() {
    let (conn, _t, mut server) = common::scripted(common::config());
    let (result, ()) = common::within("join", async {
        tokio::join!(conn.connect(), async {
            let mut link = server.accept().await;
            let init = link.expect_initialize().await;
            let mut error = JsonRpcError::invalid_params("Unsupported protocol version");
            error.data = Some(json!({"supported": ["2024-11-05"], "requested": "2025-11-25"}));
            link.respond_error(init.id, error).await;
        })
    })
    .await;
    let err = result.expect_err("refused");
    let rpc = err.rpc_error().expect("the server's error");
    assert_eq!(rpc.code, -32602);
    assert_eq!(
        rpc.data.as_ref().expect("data")["supported"][0],
        "2024-11-05"
    );
    assert_eq!(conn.status(), ConnectionStatus::Error);
    assert!(conn.client().is_err(), "not marked ready (item 16)");
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_initialize_times_out() {
    let config = ConnectionConfig {
        connection_timeout: Duration::from_secs(30),
        ..common::config()
    };
    let (conn, _t, mut server) = common::scripted(config);
    let started = Instant::now();
    let (result, ()) = common::within("join", async {
        tokio::join!(conn.connect(), async {
            let mut link = server.accept().await;
            link.expect_initialize().await;
            // Item 13: initialize is never cancelled; the link is just closed.
            assert_eq!(common::within("close", link.recv()).await, None);
        })
    })
    .await;
    match result {
        Err(Error::Timeout {
            operation, after, ..
        }) => {
            assert_eq!(operation, "connect");
            assert_eq!(after, Duration::from_secs(30));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(Instant::now() - started, Duration::from_secs(30));
    assert_eq!(conn.status(), ConnectionStatus::Error);
    assert_eq!(conn.info().error_count, 1);
}

#[tokio::test(start_paused = true)]
async fn connect_timeout_overrides_the_configured_timeout() {
    let (conn, _t, mut server) = common::scripted(common::config());
    let started = Instant::now();
    let (result, _link) = common::within("join", async {
        tokio::join!(
            conn.connect_timeout(Duration::from_secs(2)),
            server.accept()
        )
    })
    .await;
    assert!(result.expect_err("times out").is_timeout());
    assert_eq!(Instant::now() - started, Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_server_ping_is_answered_before_initialized() {
    let (conn, _t, mut server) = common::scripted(common::config());
    let (client, _link) = common::within("join", async { tokio::join!(conn.connect(), async {
        let mut link = server.accept().await;
        let init = link.expect_initialize().await;
        // Item 20: the server pings before answering initialize.
        link.send(Message::request(
            RequestId::Str("srv-1".into()),
            "ping",
            None,
        ))
        .await;
        match common::within("pong", link.recv()).await {
            Some(Message::Response(r)) => {
                assert_eq!(
                    r.id,
                    Some(RequestId::Str("srv-1".into())),
                    "id echoed unchanged"
                );
                assert_eq!(r.into_value().expect("result"), json!({}));
            }
            other => panic!("expected the ping's answer, got {other:?}"),
        }
        link.respond(init.id, json!({"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "s", "version": "1"}})).await;
        assert!(
            matches!(link.recv().await, Some(Message::Notification(n)) if n.method == "notifications/initialized")
        );
        link // stays open until the test ends
    }) })
.await;
    assert!(client.is_ok());
}

#[tokio::test]
async fn the_transport_failing_to_connect_is_a_connect_error() {
    let transport = MockTransport::serving(Default::default());
    transport.script_connects([mcp_conn_core::testing::ConnectOutcome::Refuse(
        mcp_conn_core::TransportError::NotFound {
            program: "uvx".into(),
        },
    )]);
    let conn = Connection::new("tool", transport);
    let err = conn.connect().await.expect_err("fails");
    assert!(matches!(
        &err,
        Error::Connect {
            source: mcp_conn_core::TransportError::NotFound { .. },
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "connection `tool`: connect failed: program not found: uvx"
    );
    assert_eq!(conn.status(), ConnectionStatus::Error);
    // From Error, connect() starts afresh and succeeds.
    conn.connect().await.expect("second connect works");
    assert_eq!(conn.status(), ConnectionStatus::Connected);
}
