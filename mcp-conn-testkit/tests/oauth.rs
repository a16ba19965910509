//! The OAuth client (`mcp_transport_http::oauth`) against the testkit's
//! authorization server: one test per rule of the MCP authorization
//! specification, and the token life cycle (first consent, restart with a
//! file store, refresh before expiry and on 401, consent again when the
//! refresh token is revoked).

mod common;

use std::sync::Arc;
use std::time::Duration;

use mcp_conn_core::{Connection, ConnectionConfig};
use mcp_conn_testkit::auth_server::{AuthServer, AuthServerConfig, IssInRedirect, MetadataAt};
use mcp_transport_http::oauth::{
    CredentialStore, FileStore, HeadlessConsent, MemoryStore, OAuthError, OAuthProvider,
};
use mcp_transport_http::HttpTransport;
use serde_json::json;

use common::within;

const REDIRECT: &str = "http://127.0.0.1:9/callback";

async fn server(config: AuthServerConfig) -> AuthServer {
    AuthServer::start(config).await.expect("the server starts")
}

fn provider(srv: &AuthServer, store: Arc<dyn CredentialStore>) -> OAuthProvider {
    OAuthProvider::builder(srv.mcp_url())
        .consent(HeadlessConsent::with_redirect_uri(REDIRECT))
        .store(store)
        .http_timeout(Duration::from_secs(5))
        .consent_timeout(Duration::from_secs(5))
        .build()
        .expect("valid settings")
}

fn connection(srv: &AuthServer, oauth: &OAuthProvider) -> Connection {
    let transport = HttpTransport::builder(srv.mcp_url())
        .token_provider(oauth.clone())
        .build()
        .expect("valid");
    Connection::with_config(
        "oauth",
        transport,
        ConnectionConfig {
            auto_reconnect: false,
            ..common::config()
        },
    )
}

async fn echo(conn: &Connection, text: &str) -> Result<String, mcp_conn_core::Error> {
    let client = within("connect", conn.connect()).await?;
    let result = within("echo", client.call_tool("echo", json!({ "text": text }))).await?;
    Ok(result.text())
}

/// Connects and calls once; returns the provider's error if that failed.
async fn attempt(srv: &AuthServer, oauth: &OAuthProvider) -> Option<Arc<OAuthError>> {
    let conn = connection(srv, oauth);
    let outcome = echo(&conn, "hi").await;
    conn.disconnect().await;
    match outcome {
        Ok(text) => {
            assert_eq!(text, "hi");
            None
        }
        Err(e) => Some(
            oauth
                .last_error()
                .unwrap_or_else(|| panic!("failed without an OAuth error: {e}")),
        ),
    }
}

fn assert_no_secret(text: &str) {
    for secret in ["access-", "refresh-", "code-", "secret-", "pre-secret"] {
        assert!(!text.contains(secret), "{secret:?} in {text}");
    }
}

#[tokio::test]
async fn first_connect_discovers_registers_and_consents_with_pkce_state_and_resource() {
    let srv = server(AuthServerConfig {
        challenge_scope: Some("tools:read".into()),
        ..Default::default()
    })
    .await;
    let oauth = provider(&srv, Arc::new(MemoryStore::new()));
    assert!(attempt(&srv, &oauth).await.is_none());
    assert_eq!(oauth.consent_count(), 1);

    let register = &srv.requests_to("register")[0].json;
    assert_eq!(register["application_type"], "native");
    assert_eq!(register["redirect_uris"], json!([REDIRECT]));
    assert_eq!(
        register["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(register["token_endpoint_auth_method"], "none");

    let auth = &srv.requests_to("authorize")[0].params;
    assert_eq!(auth["code_challenge_method"], "S256");
    assert_eq!(auth["code_challenge"].len(), 43);
    assert!(auth["state"].len() >= 16);
    assert_eq!(auth["resource"], srv.mcp_url());
    assert_eq!(auth["scope"], "tools:read", "the challenge's scope");

    let token = &srv.requests_to("token")[0].params;
    assert_eq!(token["grant_type"], "authorization_code");
    assert_eq!(token["resource"], srv.mcp_url());
    assert!(token.contains_key("code_verifier"));
    // The well-known locations, in order: PRM from the challenge, then the
    // issuer's metadata.
    let order: Vec<String> = srv.requests().iter().map(|r| r.endpoint.clone()).collect();
    assert_eq!(
        order,
        ["prm", "as-metadata", "register", "authorize", "token"]
    );
    assert_no_secret(&format!("{oauth:?}"));
}

#[tokio::test]
async fn tokens_survive_a_restart_in_a_file_store_and_are_refreshed_not_reconsented() {
    let srv = server(AuthServerConfig::default()).await;
    let dir = std::env::temp_dir().join(format!("mcp-oauth-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("tokens.json");

    // First run: consent.
    let first = provider(&srv, Arc::new(FileStore::new(&path)));
    assert!(attempt(&srv, &first).await.is_none());
    assert_eq!(first.consent_count(), 1);
    drop(first);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Restart: the stored token is used, no consent.
    let second = provider(&srv, Arc::new(FileStore::new(&path)));
    assert!(attempt(&srv, &second).await.is_none());
    assert_eq!(second.consent_count(), 0);
    assert_eq!(srv.requests_to("authorize").len(), 1);

    // The access token expires: the 401 is answered with a refresh.
    srv.expire_access_tokens();
    assert!(attempt(&srv, &second).await.is_none());
    assert_eq!(second.consent_count(), 0);
    let grants: Vec<String> = srv
        .requests_to("token")
        .iter()
        .map(|r| r.params["grant_type"].clone())
        .collect();
    assert_eq!(grants, ["authorization_code", "refresh_token"]);
    assert_eq!(
        srv.requests_to("token")[1].params["resource"],
        srv.mcp_url()
    );

    // The refresh token is revoked too: consent again.
    srv.expire_access_tokens();
    srv.revoke_refresh_tokens();
    assert!(attempt(&srv, &second).await.is_none());
    assert_eq!(second.consent_count(), 1);
    assert_eq!(srv.requests_to("authorize").len(), 2);

    let file = std::fs::read_to_string(&path).expect("readable");
    assert!(file.contains("access-"), "the file store keeps the tokens");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_before_it_is_used() {
    let srv = server(AuthServerConfig {
        expires_in: 30, // within the 60 s refresh margin
        ..Default::default()
    })
    .await;
    let oauth = provider(&srv, Arc::new(MemoryStore::new()));
    assert!(attempt(&srv, &oauth).await.is_none());
    let before = srv.mcp_statuses().iter().filter(|s| **s == 401).count();
    assert!(attempt(&srv, &oauth).await.is_none());
    let after = srv.mcp_statuses().iter().filter(|s| **s == 401).count();
    assert_eq!(before, after, "no 401: refreshed at connect");
    assert_eq!(
        srv.requests_to("token").last().expect("sent").params["grant_type"],
        "refresh_token"
    );
    assert_eq!(oauth.consent_count(), 1);
}

#[tokio::test]
async fn step_up_asks_for_the_union_of_scopes_and_stops_after_three() {
    let srv = server(AuthServerConfig {
        challenge_scope: Some("tools:read".into()),
        call_scopes: vec!["tools:call".into()],
        ..Default::default()
    })
    .await;
    let oauth = provider(&srv, Arc::new(MemoryStore::new()));
    assert!(attempt(&srv, &oauth).await.is_none());
    let scopes: Vec<String> = srv
        .requests_to("authorize")
        .iter()
        .map(|r| r.params["scope"].clone())
        .collect();
    assert_eq!(scopes, ["tools:read", "tools:read tools:call"]);

    // A server that always wants one more scope.
    let srv = server(AuthServerConfig {
        always_more_scope: true,
        ..Default::default()
    })
    .await;
    let oauth = provider(&srv, Arc::new(MemoryStore::new()));
    for _ in 0..3 {
        // The transport tries at most two step-ups per request; the
        // provider at most three in all.
        let conn = connection(&srv, &oauth);
        assert!(echo(&conn, "hi").await.is_err());
        conn.disconnect().await;
    }
    let err = oauth.last_error().expect("refused in the end");
    assert!(
        matches!(*err, OAuthError::StepUpLimit { attempts: 3, .. }),
        "{err}"
    );
    assert_eq!(
        srv.requests_to("authorize").len(),
        4,
        "one consent and three step-ups"
    );
}

#[tokio::test]
async fn resource_metadata_for_another_resource_stops_everything() {
    let srv = server(AuthServerConfig {
        resource: Some("https://evil.example.com/mcp".into()),
        ..Default::default()
    })
    .await;
    let oauth = provider(&srv, Arc::new(MemoryStore::new()));
    let err = attempt(&srv, &oauth).await.expect("refused");
    assert!(matches!(*err, OAuthError::ResourceMismatch { .. }), "{err}");
    assert!(srv.requests_to("as-metadata").is_empty());
    assert!(srv.requests_to("authorize").is_empty());
}

#[tokio::test]
async fn metadata_with_another_issuer_or_without_s256_is_refused() {
    let srv = server(AuthServerConfig {
        metadata_issuer: Some("https://attacker.example.com".into()),
        ..Default::default()
    })
    .await;
    let oauth = provider(&srv, Arc::new(MemoryStore::new()));
    let err = attempt(&srv, &oauth).await.expect("refused");
    assert!(matches!(*err, OAuthError::IssuerMismatch { .. }), "{err}");
    assert!(srv.requests_to("register").is_empty());

    // Trailing slash: not the same issuer (no normalisation).
    let srv = server(AuthServerConfig::default()).await;
    let issuer = format!("{}/", srv.issuer());
    srv.configure(|c| c.metadata_issuer = Some(issuer));
    let oauth = provider(&srv, Arc::new(MemoryStore::new()));
    let err = attempt(&srv, &oauth).await.expect("refused");
    assert!(matches!(*err, OAuthError::IssuerMismatch { .. }), "{err}");

    for methods in [None, Some(vec!["plain".to_owned()])] {
        let srv = server(AuthServerConfig {
            pkce_methods: methods,
            ..Default::default()
        })
        .await;
        let oauth = provider(&srv, Arc::new(MemoryStore::new()));
        let err = attempt(&srv, &oauth).await.expect("refused");
        assert!(matches!(*err, OAuthError::PkceNotSupported { .. }), "{err}");
        assert!(srv.requests_to("authorize").is_empty());
    }
}

#[tokio::test]
async fn the_iss_response_parameter_is_checked_as_a_plain_string() {
    for (supported, sent, ok) in [
        (Some(true), IssInRedirect::Correct, true),
        (Some(true), IssInRedirect::Omit, false),
        (Some(true), IssInRedirect::Wrong, false),
        (None, IssInRedirect::Omit, true),
        (None, IssInRedirect::Wrong, false),
    ] {
        let srv = server(AuthServerConfig {
            iss_supported: supported,
            iss_in_redirect: sent,
            ..Default::default()
        })
        .await;
        let oauth = provider(&srv, Arc::new(MemoryStore::new()));
        let err = attempt(&srv, &oauth).await;
        assert_eq!(err.is_none(), ok, "{supported:?} {sent:?}: {err:?}");
        if let Some(err) = err {
            assert!(
                matches!(
                    *err,
                    OAuthError::IssMissing { .. } | OAuthError::IssMismatch { .. }
                ),
                "{err}"
            );
            assert!(srv.requests_to("token").is_empty(), "no code exchanged");
        }
    }
}

#[tokio::test]
async fn refused_consent_is_a_typed_error() {
    let srv = server(AuthServerConfig {
        deny: true,
        ..Default::default()
    })
    .await;
    let oauth = provider(&srv, Arc::new(MemoryStore::new()));
    let err = attempt(&srv, &oauth).await.expect("refused");
    assert!(
        matches!(&*err, OAuthError::AuthorizationDenied { error, .. } if error == "access_denied"),
        "{err}"
    );
}

#[tokio::test]
async fn pre_registered_clients_authenticate_as_the_server_allows() {
    for (method, basic) in [("client_secret_basic", true), ("client_secret_post", false)] {
        let srv = server(AuthServerConfig {
            registration: false,
            clients: vec![("pre-1".into(), Some("pre-secret".into()))],
            auth_methods: vec![method.into()],
            ..Default::default()
        })
        .await;
        let oauth = OAuthProvider::builder(srv.mcp_url())
            .consent(HeadlessConsent::with_redirect_uri(REDIRECT))
            .client_id("pre-1")
            .client_secret("pre-secret")
            .build()
            .expect("valid");
        assert!(attempt(&srv, &oauth).await.is_none(), "{method}");
        assert!(srv.requests_to("register").is_empty());
        let token = &srv.requests_to("token")[0];
        assert_eq!(
            token
                .authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic ")),
            basic
        );
        assert_eq!(token.params.contains_key("client_secret"), !basic);
        assert_no_secret(&format!("{oauth:?}"));
    }
    // Without a registration endpoint or credentials: a typed error.
    let srv = server(AuthServerConfig {
        registration: false,
        ..Default::default()
    })
    .await;
    let oauth = provider(&srv, Arc::new(MemoryStore::new()));
    let err = attempt(&srv, &oauth).await.expect("refused");
    assert!(matches!(*err, OAuthError::NoClientIdentity { .. }), "{err}");
}

#[tokio::test]
async fn a_client_metadata_document_is_used_where_supported_else_registration() {
    const DOC: &str = "https://client.example.com/mcp-conn.json";
    for cimd in [true, false] {
        let srv = server(AuthServerConfig {
            cimd,
            grant_types: vec!["authorization_code".into()],
            ..Default::default()
        })
        .await;
        let oauth = OAuthProvider::builder(srv.mcp_url())
            .consent(HeadlessConsent::with_redirect_uri(REDIRECT))
            .client_metadata_url(DOC)
            .build()
            .expect("valid");
        assert!(attempt(&srv, &oauth).await.is_none());
        let client_id = srv.requests_to("authorize")[0].params["client_id"].clone();
        assert_eq!(client_id == DOC, cimd);
        assert_eq!(srv.requests_to("register").len(), usize::from(!cimd));
        if !cimd {
            // No refresh_token grant where the server does not list it.
            assert_eq!(
                srv.requests_to("register")[0].json["grant_types"],
                json!(["authorization_code"])
            );
        }
    }
}

#[tokio::test]
async fn discovery_falls_back_to_well_known_locations_in_order() {
    let srv = server(AuthServerConfig {
        challenge_metadata_url: false,
        metadata_at: MetadataAt::OpenIdAppended,
        resource_scopes: Some(vec!["mcp".into()]),
        as_scopes: Some(vec!["mcp".into(), "offline_access".into()]),
        ..Default::default()
    })
    .await;
    let oauth = provider(&srv, Arc::new(MemoryStore::new()));
    assert!(attempt(&srv, &oauth).await.is_none());
    let paths: Vec<String> = srv
        .requests()
        .iter()
        .filter(|r| r.endpoint == "prm" || r.endpoint == "as-metadata")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        paths,
        [
            "/.well-known/oauth-protected-resource/mcp",
            "/as/.well-known/openid-configuration"
        ]
    );
    // scopes_supported of the resource, plus offline_access the AS offers.
    assert_eq!(
        srv.requests_to("authorize")[0].params["scope"],
        "mcp offline_access"
    );
}

#[tokio::test]
async fn a_new_authorization_server_is_registered_with_afresh() {
    let srv = server(AuthServerConfig::default()).await;
    let store = Arc::new(MemoryStore::new());
    let oauth = provider(&srv, store.clone());
    assert!(attempt(&srv, &oauth).await.is_none());
    srv.configure(|c| c.issuer_path = "/as2".into());
    srv.expire_access_tokens();
    assert!(attempt(&srv, &oauth).await.is_none());
    let registrations: Vec<String> = srv
        .requests_to("register")
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(registrations, ["/as/register", "/as2/register"]);
    let first_client = "client-1";
    let second = &srv.requests_to("authorize")[1].params["client_id"];
    assert_ne!(
        second, first_client,
        "the old client id never goes to the new server"
    );
    let entries = store.for_resource(&srv.mcp_url()).await.expect("ok");
    assert_eq!(entries.len(), 1, "the old server's entry is gone");
    assert_eq!(entries[0].0.issuer, srv.issuer());
}

#[tokio::test]
async fn no_secret_in_errors_or_debug() {
    let srv = server(AuthServerConfig::default()).await;
    let store = Arc::new(MemoryStore::new());
    let oauth = provider(&srv, store.clone());
    assert!(attempt(&srv, &oauth).await.is_none());
    let entries = store.for_resource(&srv.mcp_url()).await.expect("ok");
    assert_no_secret(&format!("{entries:?} {oauth:?}"));
    srv.expire_access_tokens();
    srv.revoke_refresh_tokens();
    srv.configure(|c| c.deny = true);
    let err = attempt(&srv, &oauth).await.expect("refused");
    assert_no_secret(&format!("{err} {err:?}"));
}

#[tokio::test]
async fn a_pool_entry_with_auth_uses_the_pools_shared_store() {
    use mcp_conn_pool::auth::SharedCredentials;
    use mcp_conn_pool::{ConnectionPool, PoolConfig};

    let srv = server(AuthServerConfig::default()).await;
    let store = SharedCredentials::memory();
    // A first run (headless consent) leaves tokens in the store.
    let seeded = provider(&srv, store.0.clone());
    assert!(attempt(&srv, &seeded).await.is_none());

    std::env::set_var("MCP_CONN_TEST_SECRET", "pre-secret");
    let config = format!(
        r#"{{ "mcpServers": {{
            "remote": {{ "url": "{}", "auth": "oauth" }},
            "twin": {{ "url": "{}", "auth": {{ "scopes": "a b", "redirect_port": 0 }} }}
        }} }}"#,
        srv.mcp_url(),
        srv.mcp_url()
    );
    let pool = ConnectionPool::from_config_str_with(
        &config,
        PoolConfig {
            credentials: store,
            default_connection: common::config(),
            ..Default::default()
        },
    )
    .expect("valid config");
    for name in ["remote", "twin"] {
        let result = within(
            "call",
            pool.call_tool_on(name, "echo", json!({"text": name})),
        )
        .await
        .expect("authorized from the shared store");
        assert_eq!(result.text(), name);
    }
    assert_eq!(srv.requests_to("authorize").len(), 1, "no second consent");
    within("shutdown", pool.shutdown()).await;

    // Secrets come from the environment and stay out of Debug.
    let parsed = mcp_conn_pool::parse_config(
        r#"{ "mcpServers": { "corp": { "url": "https://x.example/mcp",
            "auth": { "client_id": "c1", "client_secret": "${MCP_CONN_TEST_SECRET}", "scopes": ["s1"] } } } }"#,
        &Default::default(),
        |v| std::env::var(v).ok(),
    )
    .expect("valid");
    let debug = format!("{:?}", parsed[0].transport);
    assert!(
        debug.contains("c1") && !debug.contains("pre-secret"),
        "{debug}"
    );
    for (bad, path) in [
        (r#""auth": 3"#, "mcpServers.x.auth"),
        (
            r#""auth": {"redirect_port": 70000}"#,
            "mcpServers.x.auth.redirect_port",
        ),
        (
            r#""auth": {"client_secret": "s"}"#,
            "mcpServers.x.auth.client_secret",
        ),
        (r#""auth": {"colour": "red"}"#, "mcpServers.x.auth.colour"),
    ] {
        let doc = format!(
            r#"{{ "mcpServers": {{ "x": {{ "url": "https://x.example/mcp", {bad} }} }} }}"#
        );
        let err =
            mcp_conn_pool::parse_config(&doc, &Default::default(), |_| None).expect_err("refused");
        assert_eq!(err.path, path, "{err}");
    }
    let stdio = r#"{ "mcpServers": { "x": { "command": "y", "auth": "oauth" } } }"#;
    let err =
        mcp_conn_pool::parse_config(stdio, &Default::default(), |_| None).expect_err("refused");
    assert_eq!(err.path, "mcpServers.x.auth");
}

#[tokio::test]
async fn the_client_credentials_grant_needs_no_consent() {
    let srv = server(AuthServerConfig {
        registration: false,
        clients: vec![("svc".into(), Some("pre-secret".into()))],
        auth_methods: vec!["client_secret_basic".into()],
        grant_types: vec!["client_credentials".into()],
        challenge_scope: Some("tools:call".into()),
        ..Default::default()
    })
    .await;
    let oauth = OAuthProvider::builder(srv.mcp_url())
        .consent(HeadlessConsent::with_redirect_uri(REDIRECT))
        .client_id("svc")
        .client_secret("pre-secret")
        .client_credentials()
        .build()
        .expect("valid");
    let err = attempt(&srv, &oauth).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(oauth.consent_count(), 0);
    assert!(srv.requests_to("authorize").is_empty());
    let token = &srv.requests_to("token")[0];
    assert_eq!(token.params["grant_type"], "client_credentials");
    assert_eq!(token.params["scope"], "tools:call");
    assert_eq!(token.params["resource"], srv.mcp_url());
    assert!(token
        .authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("Basic ")));
    assert!(OAuthProvider::builder(srv.mcp_url())
        .client_id("svc")
        .client_credentials()
        .build()
        .is_err());
}

#[tokio::test]
async fn malformed_answers_are_typed_errors_never_panics() {
    let cases: Vec<(&str, u16, &str)> = vec![
        ("prm", 200, "not json"),
        ("prm", 200, r#"{"resource": 5}"#),
        (
            "prm",
            200,
            r#"{"resource": "RESOURCE", "authorization_servers": []}"#,
        ),
        ("prm", 302, ""),
        ("as-metadata", 200, "{"),
        (
            "as-metadata",
            200,
            r#"{"issuer": "ISSUER", "authorization_endpoint": "javascript:x", "token_endpoint": "t", "code_challenge_methods_supported": ["S256"]}"#,
        ),
        ("as-metadata", 307, ""),
        ("register", 201, r#"{"no_client_id": true}"#),
        (
            "register",
            400,
            r#"{"error": "invalid_client_metadata", "error_description": "no"}"#,
        ),
        ("register", 201, "\u{0}\u{1}"),
        ("token", 200, "<html>login</html>"),
        (
            "token",
            200,
            r#"{"access_token": 5, "token_type": "Bearer"}"#,
        ),
        ("token", 302, ""),
        ("token", 500, ""),
    ];
    for (endpoint, status, body) in cases {
        let srv = server(AuthServerConfig::default()).await;
        let body = body
            .replace("RESOURCE", &srv.mcp_url())
            .replace("ISSUER", &srv.issuer());
        srv.configure(|c| c.garbage = Some((endpoint.into(), status, body.clone())));
        let oauth = provider(&srv, Arc::new(MemoryStore::new()));
        let err = attempt(&srv, &oauth).await;
        let err = err.unwrap_or_else(|| panic!("{endpoint} {status} {body:?}: accepted"));
        let text = err.to_string();
        assert!(!text.is_empty());
        assert_no_secret(&format!("{text} {err:?}"));
        if endpoint == "token" {
            assert!(
                matches!(*err, OAuthError::Token { .. }),
                "{endpoint} {status}: {err}"
            );
        }
    }
}
