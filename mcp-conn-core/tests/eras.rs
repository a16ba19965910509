//! Era detection: the `server/discover` probe, every answer that means the
//! handshake era, the `-32022` retry, the era kept across reconnects, and the
//! stateless session's `_meta` and health probe.

mod common;

use std::time::Duration;

use mcp_conn_core::jsonrpc::{JsonRpcError, Request};
use mcp_conn_core::testing::MockLink;
use mcp_conn_core::{
    ConnectionConfig, ConnectionStatus, Error, ProtocolEra, ProtocolPreference, TransportError,
};
use serde_json::{json, Value};

const V: &str = "2026-07-28";

fn meta(req: &Request) -> Value {
    req.params
        .as_ref()
        .map_or(Value::Null, |p| p["_meta"].clone())
}

/// Answers a probe as a stateless server speaking `versions`.
async fn discover_ok(link: &MockLink, req: &Request, versions: &[&str]) {
    link.respond(
        req.id.clone(),
        json!({"resultType": "complete", "supportedVersions": versions,
               "capabilities": {"tools": {}}, "ttlMs": 0, "cacheScope": "private",
               "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "modern", "version": "2.0"}}}),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_discover_result_means_the_stateless_era() {
    let (conn, _t, mut server) = common::scripted(common::config());
    let (client, mut link) = common::within("connect", async {
        tokio::join!(conn.connect(), async {
            let mut link = server.accept().await;
            let probe = link.expect_method("server/discover").await;
            let m = meta(&probe);
            assert_eq!(m["io.modelcontextprotocol/protocolVersion"], V);
            assert_eq!(m["io.modelcontextprotocol/clientCapabilities"], json!({}));
            assert_eq!(m["io.modelcontextprotocol/clientInfo"]["name"], "mcp-conn");
            discover_ok(&link, &probe, &[V]).await;
            link
        })
    })
    .await;
    let client = client.expect("connects");
    assert_eq!(client.protocol_era(), Some(ProtocolEra::Stateless));
    assert_eq!(client.protocol_version(), Some(V));
    assert_eq!(
        client.server_info().map(|s| s.name.as_str()),
        Some("modern")
    );
    let info = conn.info();
    assert_eq!(info.protocol_era, Some(ProtocolEra::Stateless));
    assert_eq!(info.protocol_version.as_deref(), Some(V));

    // Every request carries the `_meta`, next to a progress token.
    let opts = mcp_conn_core::RequestOptions::new()
        .on_progress(|_| {})
        .log_level(mcp_conn_core::protocol::LoggingLevel::Debug);
    let (listed, ()) = tokio::join!(client.request_raw("tools/list", None, &opts), async {
        let req = link.expect_method("tools/list").await;
        let m = meta(&req);
        assert_eq!(m["io.modelcontextprotocol/protocolVersion"], V);
        assert_eq!(m["io.modelcontextprotocol/logLevel"], "debug");
        assert!(m.get("progressToken").is_some(), "{m}");
        link.respond(req.id, json!({"tools": []})).await;
    });
    listed.expect("listed");

    // No `ping` in the stateless era: the health probe is `server/discover`.
    let (health, ()) = tokio::join!(conn.health_check(), async {
        let req = link.expect_request().await;
        assert_eq!(req.method, "server/discover");
        discover_ok(&link, &req, &[V]).await;
    });
    assert!(health.ok, "{health:?}");
}

#[tokio::test(start_paused = true)]
async fn every_legacy_answer_to_the_probe_falls_back_to_initialize() {
    #[derive(Debug, Clone, Copy)]
    enum Answer {
        MethodNotFound,
        InvalidParams,
        /// A legacy server's "Unsupported protocol version" (-32000).
        Unsupported,
        Http400,
        Silence,
        NotADiscoverResult,
    }
    for answer in [
        Answer::MethodNotFound,
        Answer::InvalidParams,
        Answer::Unsupported,
        Answer::Http400,
        Answer::Silence,
        Answer::NotADiscoverResult,
    ] {
        let config = ConnectionConfig {
            era_probe_timeout: Duration::from_secs(2),
            ..common::config()
        };
        let (conn, _t, mut server) = common::scripted(config);
        let (client, _link) = common::within("connect", async {
            tokio::join!(conn.connect(), async {
                let mut link = server.accept().await;
                let probe = link.expect_method("server/discover").await;
                match answer {
                    Answer::MethodNotFound => {
                        link.respond_error(probe.id, JsonRpcError::method_not_found("x"))
                            .await
                    }
                    Answer::InvalidParams => {
                        link.respond_error(probe.id, JsonRpcError::invalid_params("x"))
                            .await
                    }
                    Answer::Unsupported => {
                        link.respond_error(
                            probe.id,
                            JsonRpcError {
                                code: -32000,
                                message: "Bad Request: Unsupported protocol version".into(),
                                data: None,
                            },
                        )
                        .await
                    }
                    Answer::Http400 => {
                        link.fail_request(
                            probe.id,
                            TransportError::Http {
                                status: 400,
                                body: "Bad Request".into(),
                                retry_after: None,
                            },
                        )
                        .await
                    }
                    Answer::Silence => {}
                    Answer::NotADiscoverResult => link.respond(probe.id, json!({})).await,
                }
                if matches!(answer, Answer::Silence) {
                    // The probe is given up and cancelled.
                    let cancel = link.recv().await;
                    assert!(format!("{cancel:?}").contains("notifications/cancelled"));
                }
                let init = link.expect_method("initialize").await;
                link.respond(
                    init.id,
                    json!({"protocolVersion": "2025-11-25", "capabilities": {},
                           "serverInfo": {"name": "old", "version": "1.0"}}),
                )
                .await;
                link
            })
        })
        .await;
        let client = client.unwrap_or_else(|e| panic!("{answer:?}: {e}"));
        assert_eq!(
            client.protocol_era(),
            Some(ProtocolEra::Handshake),
            "{answer:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn auth_failures_and_a_lost_link_never_fall_back() {
    for status in [401u16, 403] {
        let (conn, _t, mut server) = common::scripted(ConnectionConfig {
            auto_reconnect: false,
            ..common::config()
        });
        let (outcome, ()) = common::within("connect", async {
            tokio::join!(conn.connect(), async {
                let mut link = server.accept().await;
                let probe = link.expect_method("server/discover").await;
                if status == 401 {
                    link.fail(TransportError::Unauthorized {
                        www_authenticate: None,
                    })
                    .await;
                } else {
                    link.fail_request(
                        probe.id,
                        TransportError::Http {
                            status,
                            body: "forbidden".into(),
                            retry_after: None,
                        },
                    )
                    .await;
                    // Nothing else is sent: no initialize.
                    assert!(link.recv().await.is_none(), "the link is closed");
                }
            })
        })
        .await;
        let err = outcome.expect_err("an auth failure");
        assert!(matches!(err, Error::Connect { .. }), "{status}: {err}");
        assert_eq!(
            err.transport_error().and_then(TransportError::http_status),
            Some(status)
        );
        assert_eq!(conn.status(), ConnectionStatus::Error);
    }
}

#[tokio::test(start_paused = true)]
async fn unsupported_version_is_retried_with_a_mutual_one_never_a_fallback() {
    let config = ConnectionConfig {
        protocol: ProtocolPreference::Stateless(vec!["2030-01-01".into(), V.into()]),
        ..common::config()
    };
    let (conn, _t, mut server) = common::scripted(config);
    let (client, _link) = common::within("connect", async {
        tokio::join!(conn.connect(), async {
            let mut link = server.accept().await;
            let probe = link.expect_method("server/discover").await;
            assert_eq!(
                meta(&probe)["io.modelcontextprotocol/protocolVersion"],
                "2030-01-01"
            );
            link.respond_error(
                probe.id.clone(),
                JsonRpcError {
                    code: -32022,
                    message: "Unsupported protocol version".into(),
                    data: Some(json!({"supported": ["2025-01-01", V], "requested": "2030-01-01"})),
                },
            )
            .await;
            let retry = link.expect_method("server/discover").await;
            assert_ne!(retry.id, probe.id, "a new id");
            assert_eq!(meta(&retry)["io.modelcontextprotocol/protocolVersion"], V);
            discover_ok(&link, &retry, &[V]).await;
            link
        })
    })
    .await;
    assert_eq!(client.expect("connects").protocol_version(), Some(V));

    // No mutual version: an error, and no `initialize`.
    let (conn, _t, mut server) = common::scripted(ConnectionConfig {
        auto_reconnect: false,
        ..common::config()
    });
    let (outcome, ()) = common::within("connect", async {
        tokio::join!(conn.connect(), async {
            let mut link = server.accept().await;
            let probe = link.expect_method("server/discover").await;
            link.respond_error(
                probe.id,
                JsonRpcError {
                    code: -32022,
                    message: "Unsupported protocol version".into(),
                    data: Some(json!({"supported": ["2099-01-01"]})),
                },
            )
            .await;
            assert!(link.recv().await.is_none(), "closed without initialize");
        })
    })
    .await;
    let err = outcome.expect_err("no mutual version");
    assert!(matches!(err, Error::UnsupportedVersion { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn the_era_is_remembered_across_reconnects_and_reprobed_when_it_fails() {
    let (conn, _t, mut server) = common::scripted(common::config());
    // Stateless first.
    let (client, link) = common::within("connect", async {
        tokio::join!(conn.connect(), async {
            let mut link = server.accept().await;
            let probe = link.expect_method("server/discover").await;
            discover_ok(&link, &probe, &[V]).await;
            link
        })
    })
    .await;
    client.expect("connects");
    // The server dies; the reconnect speaks the same era at once (its
    // `server/discover` is the stateless handshake, no `initialize`).
    link.fail(TransportError::Eof).await;
    let link = common::within("reconnect", async {
        let mut link = server.accept().await;
        let req = link.expect_request().await;
        assert_eq!(req.method, "server/discover");
        assert_eq!(meta(&req)["io.modelcontextprotocol/protocolVersion"], V);
        discover_ok(&link, &req, &[V]).await;
        link
    })
    .await;
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    assert_eq!(conn.info().protocol_era, Some(ProtocolEra::Stateless));

    // The server was replaced by a handshake-era one: the remembered era
    // fails, the probe says so, and the connection falls back.
    link.fail(TransportError::Eof).await;
    let link = common::within("re-probe", async {
        let mut link = server.accept().await;
        let req = link.expect_method("server/discover").await;
        link.respond_error(req.id, JsonRpcError::method_not_found("server/discover"))
            .await;
        initialize_after_probe_no_wait(&mut link).await;
        link
    })
    .await;
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    assert_eq!(conn.info().protocol_era, Some(ProtocolEra::Handshake));

    // Remembered handshake: the next reconnect sends `initialize` first,
    // with no probe.
    link.fail(TransportError::Eof).await;
    common::within("no probe", async {
        let mut link = server.accept().await;
        let first = link.expect_request().await;
        assert_eq!(first.method, "initialize", "no probe when the era is known");
    })
    .await;
}

async fn initialize_after_probe_no_wait(link: &mut MockLink) {
    let init = link.expect_method("initialize").await;
    link.respond(
        init.id,
        json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
               "serverInfo": {"name": "old", "version": "1.0"}}),
    )
    .await;
}
