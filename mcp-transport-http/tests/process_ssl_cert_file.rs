//! The process's own `SSL_CERT_FILE` (read with the platform's store) is
//! checked when a transport is built, as one given with
//! `HttpTransportBuilder::environment` is: a file that cannot be read is a
//! setting error, not a connection that later trusts nothing. A test binary
//! of its own, as it sets the process's environment.

use mcp_transport_http::{HttpConfigError, HttpTransport, TlsRoots};

#[test]
fn a_missing_ssl_cert_file_of_the_process_is_a_setting_error() {
    let missing = std::env::temp_dir().join(format!(
        "mcp-conn-no-such-bundle-{}.pem",
        std::process::id()
    ));
    // The only test of this binary: nothing else reads the environment.
    std::env::set_var("SSL_CERT_FILE", &missing);
    for roots in [TlsRoots::PlatformAndWeb, TlsRoots::Platform] {
        let built = HttpTransport::builder("https://127.0.0.1:1/mcp")
            .tls_roots(roots)
            .build();
        match built {
            Err(HttpConfigError::Tls { setting, reason }) => {
                assert_eq!(setting, "SSL_CERT_FILE", "{roots:?}");
                assert!(
                    reason.contains(&*missing.to_string_lossy()),
                    "names the file: {reason}"
                );
            }
            other => panic!("{roots:?}: expected a TLS setting error, got {other:?}"),
        }
    }
    // The web's roots alone do not read it.
    HttpTransport::builder("https://127.0.0.1:1/mcp")
        .tls_roots(TlsRoots::Web)
        .build()
        .expect("Web ignores SSL_CERT_FILE");
}
