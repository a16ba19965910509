//! Proxies: a real proxy started by the test (`mcp_conn_testkit::proxy`),
//! `CONNECT` tunnels for `https`, forwarding for `http`, credentials from the
//! proxy URL, `NO_PROXY`, an explicit setting over the environment, and a
//! proxy that refuses. The environment is always a map (never the process's).

use mcp_conn_core::{ConnectFailure, Connection, ConnectionConfig, TransportError};
use mcp_conn_testkit::http_server::{Behavior, TestHttpServer};
use mcp_conn_testkit::proxy::{ProxyBehavior, TestProxy};
use mcp_conn_testkit::tls::{TestCa, Usage};
use mcp_transport_http::{HttpTransport, TlsRoots};

use crate::common::within;
use crate::{closed_port, common, echo, server, transport_error};

async fn proxy(behavior: ProxyBehavior) -> TestProxy {
    TestProxy::start(behavior)
        .await
        .expect("the test proxy starts")
}

/// An HTTPS test server with a certificate of `ca` for 127.0.0.1.
async fn https(ca: &TestCa) -> TestHttpServer {
    let identity = ca
        .issue(&["127.0.0.1"], Usage::Server, false)
        .expect("cert");
    let config =
        TestCa::server_config(&identity, &[b"h2", b"http/1.1"], None).expect("server config");
    TestHttpServer::start_tls(Behavior::default(), config)
        .await
        .expect("starts")
}

/// A transport to `target` through the proxy at `proxy` (no `NO_PROXY`),
/// trusting only `ca`.
fn through(target: &str, proxy: &str, ca: &TestCa) -> HttpTransport {
    HttpTransport::builder(target)
        .proxy(proxy)
        .no_proxy("")
        .tls_roots(TlsRoots::ExtraOnly)
        .ca_pem(ca.cert_pem())
        .build()
        .expect("valid")
}

fn connect_once(transport: HttpTransport) -> Connection {
    Connection::with_config(
        "proxied",
        transport,
        ConnectionConfig {
            auto_reconnect: false,
            ..common::config()
        },
    )
}

#[tokio::test]
async fn https_goes_through_a_connect_tunnel_named_by_https_proxy() {
    let ca = TestCa::new("proxy test CA").expect("CA");
    let srv = https(&ca).await;
    let proxy = proxy(ProxyBehavior {
        credentials: Some(("alice".into(), "s3cret".into())),
        ..Default::default()
    })
    .await;
    let url = proxy.url(Some(("alice", "s3cret")));
    let transport = HttpTransport::builder(srv.url())
        .environment([("https_proxy", url.as_str())])
        .tls_roots(TlsRoots::ExtraOnly)
        .ca_pem(ca.cert_pem())
        .build()
        .expect("valid");
    let debug = format!("{transport:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    let conn = connect_once(transport.clone());
    within("connect", conn.connect())
        .await
        .expect("through the proxy");
    assert_eq!(echo(&conn, "tunnelled").await, "tunnelled");
    assert!(proxy.tunnels() >= 1, "the proxy opened the tunnel");
    let negotiated = transport.negotiated().expect("connected");
    assert_eq!(
        negotiated.proxy.as_deref(),
        Some(proxy.url(None).as_str()),
        "the proxy, without credentials"
    );
    assert_eq!(negotiated.http_version, "HTTP/2", "ALPN through the tunnel");
    assert!(
        srv.requests()
            .iter()
            .all(|r| r.header("proxy-authorization").is_none()),
        "the proxy's credentials never reach the server"
    );
    conn.disconnect().await;
}

#[tokio::test]
async fn plain_http_is_forwarded_with_the_proxy_credentials() {
    let srv = server(Behavior::default()).await;
    let proxy = proxy(ProxyBehavior {
        credentials: Some(("bob".into(), "pw".into())),
        ..Default::default()
    })
    .await;
    let transport = HttpTransport::builder(srv.url())
        .proxy(proxy.url(Some(("bob", "pw"))))
        .no_proxy("")
        .build()
        .expect("valid");
    let conn = connect_once(transport);
    within("connect", conn.connect()).await.expect("forwarded");
    assert_eq!(echo(&conn, "forwarded").await, "forwarded");
    assert!(proxy.forwarded() >= 1);
    assert_eq!(proxy.tunnels(), 0);
    conn.disconnect().await;
}

#[tokio::test]
async fn no_proxy_hosts_and_disabled_proxies_go_direct() {
    let srv = server(Behavior::default()).await;
    let proxy = proxy(ProxyBehavior::default()).await;
    let url = proxy.url(None);
    for transport in [
        HttpTransport::builder(srv.url())
            .environment([
                ("HTTP_PROXY", url.as_str()),
                ("NO_PROXY", "localhost,127.0.0.1"),
            ])
            .build(),
        HttpTransport::builder(srv.url())
            .environment([("ALL_PROXY", url.as_str()), ("no_proxy", "127.0.0.0/8")])
            .build(),
        HttpTransport::builder(srv.url())
            .environment([("HTTP_PROXY", url.as_str())])
            .disable_proxy()
            .build(),
    ] {
        let conn = connect_once(transport.expect("valid"));
        within("connect", conn.connect()).await.expect("direct");
        assert_eq!(echo(&conn, "direct").await, "direct");
        conn.disconnect().await;
    }
    assert_eq!(
        proxy.forwarded() + proxy.tunnels() + proxy.refused(),
        0,
        "never used"
    );
}

#[tokio::test]
async fn a_proxy_that_refuses_or_wants_credentials_is_a_typed_failure() {
    let ca = TestCa::new("proxy test CA").expect("CA");
    let srv = https(&ca).await;
    let cases = [
        (
            ProxyBehavior {
                refuse: Some(403),
                ..Default::default()
            },
            None,
            ConnectFailure::ProxyRefused,
            false,
        ),
        (
            ProxyBehavior {
                credentials: Some(("alice".into(), "right".into())),
                ..Default::default()
            },
            Some(("alice", "wrong")),
            ConnectFailure::ProxyRefused,
            false,
        ),
        (
            ProxyBehavior {
                refuse: Some(502),
                ..Default::default()
            },
            None,
            ConnectFailure::Proxy,
            true,
        ),
    ];
    for (behavior, credentials, kind, retryable) in cases {
        let proxy = proxy(behavior).await;
        let transport = HttpTransport::builder(srv.url())
            .proxy(proxy.url(credentials))
            .tls_roots(TlsRoots::ExtraOnly)
            .ca_pem(ca.cert_pem())
            .build()
            .expect("valid");
        let conn = connect_once(transport);
        let err = within("connect", conn.connect())
            .await
            .expect_err("refused");
        let source = transport_error(&err);
        assert!(
            matches!(source, TransportError::Connect { kind: k, .. } if *k == kind),
            "{source:?}"
        );
        assert!(source.is_proxy(), "{source:?}");
        assert_eq!(source.is_retryable(), retryable, "{source}");
        assert!(
            !source.to_string().contains("wrong"),
            "no password in {source}"
        );
        assert_eq!(proxy.refused(), 1);
        assert!(srv.requests().is_empty());
    }
    // A proxy that is not running: refused, like any unreachable host.
    let transport = HttpTransport::builder(srv.url())
        .proxy(format!("http://127.0.0.1:{}", closed_port()))
        .tls_roots(TlsRoots::ExtraOnly)
        .ca_pem(ca.cert_pem())
        .build()
        .expect("valid");
    let err = within("connect", connect_once(transport).connect())
        .await
        .expect_err("nothing there");
    assert!(transport_error(&err).is_refused(), "{err}");
}

/// An `https://` proxy (TLS to the proxy, its certificate checked against
/// the same roots): the tunnel to an https server runs the server's TLS
/// inside the proxy's; plain http is forwarded over the proxy's TLS; a
/// proxy whose certificate is not trusted is a typed TLS failure.
#[tokio::test]
async fn an_https_proxy_is_reached_over_tls() {
    let ca = TestCa::new("proxy test CA").expect("CA");
    let srv = https(&ca).await;
    let identity = ca
        .issue(&["127.0.0.1"], Usage::Server, false)
        .expect("cert");
    let proxy = proxy(ProxyBehavior {
        tls: Some(TestCa::server_config(&identity, &[b"http/1.1"], None).expect("config")),
        credentials: Some(("carol".into(), "pw".into())),
        ..Default::default()
    })
    .await;
    let url = proxy.url(Some(("carol", "pw")));
    assert!(url.starts_with("https://"), "{url}");
    let transport = through(&srv.url(), &url, &ca);
    let conn = connect_once(transport.clone());
    within("connect", conn.connect())
        .await
        .expect("through the https proxy");
    assert_eq!(echo(&conn, "tls in tls").await, "tls in tls");
    assert!(proxy.tunnels() >= 1);
    assert_eq!(
        transport.negotiated().expect("connected").proxy.as_deref(),
        Some(proxy.url(None).as_str())
    );
    conn.disconnect().await;

    // Plain http through the https proxy: forwarded.
    let plain = server(Behavior::default()).await;
    let transport = through(&plain.url(), &url, &ca);
    let conn = connect_once(transport);
    within("connect", conn.connect()).await.expect("forwarded");
    assert_eq!(echo(&conn, "forwarded").await, "forwarded");
    assert!(proxy.forwarded() >= 1);
    conn.disconnect().await;

    // The proxy's certificate from an authority nobody trusts.
    let other = TestCa::new("someone else").expect("CA");
    let transport = through(&srv.url(), &url, &other);
    let conn = connect_once(transport);
    let err = within("connect", conn.connect())
        .await
        .expect_err("an untrusted proxy");
    let t = transport_error(&err);
    assert!(t.is_tls(), "{t:?}");
    assert!(!err.is_retryable(), "{err}");
}
