//! HTTPS against the test server with certificates from an authority the
//! test makes: trusted (inline PEM, a CA file, `SSL_CERT_FILE`), untrusted,
//! expired, wrong name, mutual TLS required; HTTP/2 by ALPN.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use mcp_conn_core::{Connection, ConnectionConfig, TlsFailure, TransportError};
use mcp_conn_testkit::http_server::{Behavior, TestHttpServer};
use mcp_conn_testkit::tls::{Identity, TestCa, Usage};
use mcp_transport_http::{HttpConfigError, HttpTransport, HttpTransportBuilder, TlsRoots};

use crate::common::within;
use crate::{common, echo, transport_error};

const H2_AND_H1: &[&[u8]] = &[b"h2", b"http/1.1"];

fn ca() -> TestCa {
    TestCa::new("mcp-conn test CA").expect("a test CA")
}

fn server_cert(ca: &TestCa, names: &[&str], expired: bool) -> Identity {
    ca.issue(names, Usage::Server, expired)
        .expect("a certificate")
}

/// An HTTPS test server presenting `identity`, offering `alpn`, requiring a
/// client certificate from `clients` when given.
async fn https_server(
    identity: &Identity,
    alpn: &[&[u8]],
    clients: Option<&TestCa>,
) -> TestHttpServer {
    let config = TestCa::server_config(identity, alpn, clients).expect("server config");
    TestHttpServer::start_tls(Behavior::default(), config)
        .await
        .expect("the HTTPS test server starts")
}

/// A builder that trusts only what the test gives it (no proxy from the
/// environment, no platform store).
fn builder(url: &str) -> HttpTransportBuilder {
    HttpTransport::builder(url)
        .environment([("NO_PROXY", "*")])
        .tls_roots(TlsRoots::ExtraOnly)
}

fn connect_once(transport: HttpTransport) -> Connection {
    Connection::with_config(
        "tls",
        transport,
        ConnectionConfig {
            auto_reconnect: false,
            ..common::config()
        },
    )
}

/// A file of the test's own in a folder of its own under the temporary
/// folder, removed with it.
struct TempFile {
    dir: PathBuf,
    path: PathBuf,
}

impl std::ops::Deref for TempFile {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_file(name: &str, contents: &str) -> TempFile {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mcp-conn-tls-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("written");
    TempFile { dir, path }
}

/// Connecting fails with a TLS error; returns its reason.
async fn tls_failure(transport: HttpTransport) -> TlsFailure {
    let conn = connect_once(transport);
    let err = within("connect", conn.connect())
        .await
        .expect_err("TLS must fail");
    assert!(
        !err.is_retryable(),
        "a TLS failure will fail again: {err} {:?}",
        transport_error(&err)
    );
    let source = transport_error(&err);
    assert!(source.is_tls(), "{source:?}");
    match source {
        TransportError::Tls { reason, target, .. } => {
            assert!(target.starts_with("https://127.0.0.1:"), "{target}");
            *reason
        }
        other => panic!("not a typed TLS error: {other:?}"),
    }
}

#[tokio::test]
async fn a_server_signed_by_a_trusted_private_authority_is_reached() {
    let ca = ca();
    let srv = https_server(&server_cert(&ca, &["127.0.0.1"], false), H2_AND_H1, None).await;
    // Inline PEM, and the same authority from a file.
    let file = temp_file("ca.pem", ca.cert_pem());
    for transport in [
        builder(&srv.url()).ca_pem(ca.cert_pem()).build(),
        builder(&srv.url()).ca_file(&*file).build(),
    ] {
        let transport = transport.expect("valid");
        let conn = connect_once(transport.clone());
        within("connect", conn.connect()).await.expect("trusted");
        assert_eq!(echo(&conn, "over tls").await, "over tls");
        let negotiated = transport.negotiated().expect("a connection was made");
        assert_eq!(negotiated.tls_version.as_deref(), Some("TLSv1.3"));
        assert_eq!(negotiated.proxy, None);
        conn.disconnect().await;
    }
}

/// Sets a file's modification time `ago` in the past (as a copy that
/// keeps times does), so that it is old enough to be kept decoded.
fn age(path: &std::path::Path, ago: std::time::Duration) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("opened");
    file.set_modified(std::time::SystemTime::now() - ago)
        .expect("time set");
}

/// A CA file is decoded once for all the transports that name it, and read
/// again once it changes on disk, even when its modification time is put
/// back.
#[tokio::test]
async fn a_ca_file_changed_on_disk_is_read_again() {
    let first = ca();
    let second = TestCa::new("another test CA").expect("a test CA");
    let srv = https_server(
        &server_cert(&second, &["127.0.0.1"], false),
        H2_AND_H1,
        None,
    )
    .await;
    let file = temp_file("ca.pem", first.cert_pem());
    let old = std::time::Duration::from_secs(3600);
    age(&file, old);
    for _ in 0..2 {
        let before = builder(&srv.url()).ca_file(&*file).build().expect("valid");
        assert!(matches!(
            tls_failure(before).await,
            TlsFailure::UnknownIssuer
        ));
    }
    // The other authority, its file given the same modification time.
    std::fs::write(&*file, second.cert_pem()).expect("rewritten");
    age(&file, old);
    let after = builder(&srv.url()).ca_file(&*file).build().expect("valid");
    let conn = connect_once(after);
    within("connect", conn.connect())
        .await
        .expect("trusted now");
    conn.disconnect().await;
}

#[tokio::test]
async fn ssl_cert_file_or_node_extra_ca_certs_from_the_environment_add_a_root() {
    let ca = ca();
    let srv = https_server(&server_cert(&ca, &["127.0.0.1"], false), H2_AND_H1, None).await;
    let file = temp_file("bundle.pem", ca.cert_pem());
    let file = file.to_str().expect("utf-8 path");
    let transport = HttpTransport::builder(srv.url())
        .environment([("SSL_CERT_FILE", file), ("NO_PROXY", "*")])
        .tls_roots(TlsRoots::Platform)
        .build()
        .expect("valid");
    let conn = connect_once(transport);
    within("connect", conn.connect()).await.expect("trusted");
    // Node's variable, which Node-based hosts document, works alike.
    let transport = HttpTransport::builder(srv.url())
        .environment([("NODE_EXTRA_CA_CERTS", file), ("NO_PROXY", "*")])
        .tls_roots(TlsRoots::Web)
        .build()
        .expect("valid");
    let conn = connect_once(transport);
    within("connect", conn.connect()).await.expect("trusted");
    // Without them, the platform's store does not know the test authority.
    let transport = HttpTransport::builder(srv.url())
        .environment([("NO_PROXY", "*")])
        .build()
        .expect("valid");
    assert_eq!(tls_failure(transport).await, TlsFailure::UnknownIssuer);
}

#[tokio::test]
async fn an_untrusted_expired_or_misnamed_certificate_is_a_typed_tls_error() {
    let ca = ca();
    let other = TestCa::new("another authority").expect("CA");
    let cases = [
        (
            server_cert(&ca, &["127.0.0.1"], false),
            &other,
            TlsFailure::UnknownIssuer,
        ),
        (
            server_cert(&ca, &["127.0.0.1"], true),
            &ca,
            TlsFailure::Expired,
        ),
        (
            server_cert(&ca, &["mcp.example.com"], false),
            &ca,
            TlsFailure::NameMismatch,
        ),
    ];
    for (identity, trusted, expected) in cases {
        let srv = https_server(&identity, H2_AND_H1, None).await;
        let transport = builder(&srv.url())
            .ca_pem(trusted.cert_pem())
            .build()
            .expect("valid");
        assert_eq!(tls_failure(transport).await, expected);
        assert!(
            srv.requests().is_empty(),
            "no request reached the server ({expected:?})"
        );
    }
}

#[tokio::test]
async fn mutual_tls_needs_a_client_certificate_the_server_trusts() {
    let ca = ca();
    let clients = TestCa::new("client authority").expect("CA");
    let srv = https_server(
        &server_cert(&ca, &["127.0.0.1"], false),
        H2_AND_H1,
        Some(&clients),
    )
    .await;
    // No certificate: the server says one is required, after the
    // handshake (TLS 1.3), over HTTP/2 and HTTP/1.1 alike.
    let h1 = https_server(
        &server_cert(&ca, &["127.0.0.1"], false),
        &[b"http/1.1"],
        Some(&clients),
    )
    .await;
    for url in [srv.url(), h1.url()] {
        let none = builder(&url).ca_pem(ca.cert_pem()).build().expect("valid");
        assert_eq!(
            tls_failure(none).await,
            TlsFailure::ClientCertificateRequired,
            "{url}"
        );
    }
    // A certificate from an authority the server does not trust.
    let stranger = ca.issue(&["client"], Usage::Client, false).expect("cert");
    let rejected = builder(&srv.url())
        .ca_pem(ca.cert_pem())
        .client_cert_pem(stranger.cert_pem.clone(), stranger.key_pem.clone())
        .build()
        .expect("valid");
    assert_eq!(
        tls_failure(rejected).await,
        TlsFailure::ClientCertificateRejected
    );
    // The right one, from files.
    let mine = clients
        .issue(&["client"], Usage::Client, false)
        .expect("cert");
    let cert = temp_file("client.pem", &mine.cert_pem);
    let key = temp_file("client.key", &mine.key_pem);
    let transport = builder(&srv.url())
        .ca_pem(ca.cert_pem())
        .client_cert(&*cert, &*key)
        .build()
        .expect("valid");
    let conn = connect_once(transport);
    within("connect", conn.connect()).await.expect("mutual TLS");
    assert_eq!(echo(&conn, "mtls").await, "mtls");
    conn.disconnect().await;
}

#[tokio::test]
async fn tls_settings_are_checked_when_building() {
    let url = "https://127.0.0.1:1/mcp";
    let tls_setting = |b: HttpTransportBuilder| match b.build() {
        Err(HttpConfigError::Tls { setting, reason }) => (setting, reason),
        other => panic!("expected a TLS setting error, got {other:?}"),
    };
    let (setting, reason) = tls_setting(builder(url).ca_file("/nonexistent/ca.pem"));
    assert_eq!(setting, "ca_file");
    assert!(reason.contains("/nonexistent/ca.pem"), "{reason}");
    let (setting, _) = tls_setting(builder(url).ca_pem("not a certificate"));
    assert_eq!(setting, "ca_file");
    let (setting, _) = tls_setting(builder(url));
    assert_eq!(setting, "tls_roots", "ExtraOnly with nothing extra");
    let ca = ca();
    let a = ca.issue(&["client"], Usage::Client, false).expect("cert");
    let b = ca.issue(&["client"], Usage::Client, false).expect("cert");
    let (setting, reason) = tls_setting(
        builder(url)
            .ca_pem(ca.cert_pem())
            .client_cert_pem(a.cert_pem.clone(), b.key_pem.clone()),
    );
    assert_eq!(
        setting, "client_cert",
        "a key that is not the certificate's"
    );
    assert!(
        !reason.contains("PRIVATE KEY"),
        "no key in the error: {reason}"
    );
    let (setting, _) = tls_setting(
        builder(url)
            .ca_pem(ca.cert_pem())
            .client_cert_pem(a.cert_pem.clone(), "garbage"),
    );
    assert_eq!(setting, "client_key");
    let debug = format!(
        "{:?}",
        builder(url)
            .ca_pem(ca.cert_pem())
            .client_cert_pem(a.cert_pem.clone(), a.key_pem.clone())
    );
    assert!(!debug.contains("PRIVATE"), "{debug}");
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn_and_multiplexes_one_connection() {
    let ca = ca();
    let identity = server_cert(&ca, &["127.0.0.1"], false);
    for (alpn, version, protocol) in [
        (H2_AND_H1, http::Version::HTTP_2, "HTTP/2"),
        (
            &[b"http/1.1".as_slice()][..],
            http::Version::HTTP_11,
            "HTTP/1.1",
        ),
        (&[][..], http::Version::HTTP_11, "HTTP/1.1"),
    ] {
        let srv = https_server(&identity, alpn, None).await;
        let transport = builder(&srv.url())
            .ca_pem(ca.cert_pem())
            .build()
            .expect("valid");
        let conn = connect_once(transport.clone());
        let client = within("connect", conn.connect()).await.expect("connects");
        let calls: Vec<_> = (0..32)
            .map(|i| {
                let c = client.clone();
                async move {
                    c.call_tool("sleep", serde_json::json!({"ms": 20 + i % 3}))
                        .await
                }
            })
            .collect();
        for r in within("32 calls", futures_join_all(calls)).await {
            r.expect("answered");
        }
        let negotiated = transport.negotiated().expect("connected");
        assert_eq!(negotiated.http_version, protocol, "{alpn:?}");
        assert!(srv.requests().iter().all(|r| r.version == version));
        if version == http::Version::HTTP_2 {
            assert_eq!(srv.connections(), 1, "HTTP/2 multiplexes one connection");
        } else {
            assert!(
                srv.connections() > 1,
                "HTTP/1.1 needs a connection per exchange in flight"
            );
        }
        conn.disconnect().await;
    }
}

/// Awaits every future, concurrently, in order.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: Vec<F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, f) in futures.into_iter().enumerate() {
        set.spawn(async move { (i, f.await) });
    }
    let mut out: Vec<Option<F::Output>> = Vec::new();
    out.resize_with(set.len(), || None);
    while let Some(done) = set.join_next().await {
        let (i, v) = done.expect("task");
        out[i] = Some(v);
    }
    out.into_iter()
        .map(|v| v.expect("every future ran"))
        .collect()
}
