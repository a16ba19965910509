//! The 2024-11-05 HTTP+SSE transport: the fallback, and an `endpoint`
//! event that names another origin.

use http::Method;
use mcp_conn_core::{Connection, ConnectionConfig, TransportError};
use mcp_conn_testkit::http_server::Behavior;
use mcp_transport_http::{HttpMode, HttpTransport};

use crate::common::{self, within};
use crate::{echo, is_connect_failure, server, transport_error};

#[tokio::test]
async fn an_old_server_is_reached_over_http_sse() {
    for mode in [HttpMode::Auto, HttpMode::LegacySse] {
        let srv = server(Behavior {
            legacy: true,
            ..Default::default()
        })
        .await;
        let transport = HttpTransport::builder(srv.url())
            .mode(mode)
            .build()
            .expect("url");
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
async fn an_endpoint_on_another_origin_is_refused() {
    let elsewhere = server(Behavior::default()).await;
    for mode in [HttpMode::Auto, HttpMode::LegacySse] {
        let srv = server(Behavior {
            legacy: true,
            legacy_endpoint: Some(format!("http://{}/messages?session=1", elsewhere.addr())),
            ..Default::default()
        })
        .await;
        let transport = HttpTransport::builder(srv.url())
            .mode(mode)
            .bearer_token("secret")
            .build()
            .expect("valid");
        let config = ConnectionConfig {
            auto_reconnect: false,
            ..common::config()
        };
        let conn = Connection::with_config("old", transport, config);
        let err = within("connect", conn.connect())
            .await
            .expect_err("another origin");
        assert!(is_connect_failure(&err), "{err}");
        match transport_error(&err) {
            TransportError::CrossOrigin { endpoint, origin } => {
                assert_eq!(origin, &format!("http://{}", srv.addr()), "{mode:?}");
                assert!(
                    endpoint.contains(&elsewhere.addr().to_string()),
                    "{endpoint}"
                );
            }
            other => panic!("{mode:?}: {other:?}"),
        }
        assert!(!err.is_retryable());
    }
    assert!(
        elsewhere.requests().is_empty(),
        "something (with the token) went to the other origin"
    );
}
