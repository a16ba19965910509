//! Credentials: static headers, a bearer token, a token provider (refresh
//! on 401, step-up on 403 `insufficient_scope`), and invalid settings.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::Method;
use mcp_conn_core::{Connection, ConnectionStatus, Error, TransportError};
use mcp_conn_testkit::http_server::Behavior;
use mcp_transport_http::{HttpConfigError, HttpTransport};
use serde_json::json;

use crate::common::{self, within};
use crate::{connection, echo, is_connect_failure, server, transport_error};

#[tokio::test]
async fn refusals_401_and_403_are_typed_and_never_retried_in_a_loop() {
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
        assert!(is_connect_failure(&err), "{err}");
        match (transport_error(&err), want_unauthorized) {
            (TransportError::Unauthorized { www_authenticate }, true) => {
                let w = www_authenticate.as_deref().unwrap_or_default();
                assert!(
                    w.contains("resource_metadata=") && w.contains("scope=\"tools\""),
                    "{w}"
                );
            }
            (TransportError::Http { status: 403, .. }, false) => {}
            (other, _) => panic!("{code}: unexpected {other}"),
        }
        assert!(!err.is_retryable(), "{err}");
        common::wait_status(&conn, ConnectionStatus::Error).await;
        // One attempt, then nothing: no tight loop.
        let posts = srv.requests_for("initialize").len();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(srv.requests_for("initialize").len(), posts);
        assert_eq!(posts, 1, "{code}");
    }
}

#[tokio::test]
async fn static_headers_and_the_bearer_token_go_on_every_request() {
    let srv = server(Behavior {
        get_stream: true,
        ..Default::default()
    })
    .await;
    let transport = HttpTransport::builder(srv.url())
        .bearer_token("tok-123")
        .header("X-Tenant", "acme")
        .build()
        .expect("valid");
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
    // That stdio servers get credentials only through the environment is
    // tested in stdio_faults.rs: the_environment_is_an_allow_list_and_values_stay_secret.
}

#[tokio::test]
async fn invalid_settings_are_typed_errors() {
    for bad in ["not a url", "ftp://example.com/mcp", "http://"] {
        let err = HttpTransport::new(bad).expect_err(bad);
        assert!(
            matches!(&err, HttpConfigError::InvalidUrl { url, .. } if url == bad),
            "{err}"
        );
    }
    let builder = || HttpTransport::builder("http://127.0.0.1:1/mcp");
    assert!(matches!(
        builder().header("bad header", "x").build(),
        Err(HttpConfigError::InvalidHeader { name, .. }) if name == "bad header"
    ));
    assert!(matches!(
        builder().header("Mcp-Session-Id", "x").build(),
        Err(HttpConfigError::ReservedHeader { .. })
    ));
    let both = builder()
        .bearer_token("t")
        .token_provider(Tokens {
            first: "t",
            refreshed: vec![],
            asked: Arc::default(),
        })
        .build();
    assert!(
        matches!(
            both,
            Err(HttpConfigError::Conflict {
                first: "bearer_token",
                second: "token_provider"
            })
        ),
        "a token and a provider: no silent precedence"
    );
    assert!(matches!(
        builder().max_message_size(0).build(),
        Err(HttpConfigError::Zero {
            setting: "max_message_size"
        })
    ));
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
    let transport = HttpTransport::builder(url)
        .token_provider(Tokens {
            first,
            refreshed,
            asked: asked.clone(),
        })
        .build()
        .expect("url");
    (
        Connection::with_config("web", transport, common::config()),
        asked,
    )
}

#[tokio::test]
async fn a_401_asks_the_provider_once_then_gives_up() {
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
    assert!(is_connect_failure(&err), "{err}");
    assert!(
        matches!(transport_error(&err), TransportError::Unauthorized { .. }),
        "{err}"
    );
    assert!(err
        .transport_error()
        .is_some_and(TransportError::is_unauthorized));
    assert!(!err.is_retryable(), "a refused token is not retried");
    assert_eq!(asked.lock().expect("lock").len(), 1, "asked once");
    common::wait_status(&conn, ConnectionStatus::Error).await;
}

#[tokio::test]
async fn insufficient_scope_steps_up_with_a_retry_limit() {
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
