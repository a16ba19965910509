//! An HTTP server's network keys in the config: `caFile`, `clientCert`,
//! `clientKey`, `proxy`, `noProxy`; what they become, and the errors that
//! name the field.

use mcp_conn_core::ConnectionConfig;
use mcp_conn_pool::{
    parse_config, parse_config_with, ConfigContext, ConnectionPool, Error, HttpNetwork,
    ProxyChoice, ServerTransport,
};

fn env(var: &str) -> Option<String> {
    match var {
        "CERTS" => Some("/etc/company".into()),
        "PROXY_PW" => Some("pr0xy-secret".into()),
        _ => None,
    }
}

fn network(t: &ServerTransport) -> &HttpNetwork {
    match t {
        ServerTransport::Http { network, .. } => network,
        other => panic!("not HTTP: {other:?}"),
    }
}

#[test]
fn the_keys_are_read_expanded_and_relative_paths_taken_from_the_file_folder() {
    let json = r#"{"mcpServers": {
        "corp": {"url": "https://mcp.corp.example/mcp",
                 "caFile": "${CERTS}/ca.pem", "clientCert": "me.pem", "clientKey": "me.key",
                 "proxy": "http://me:${PROXY_PW}@127.0.0.1:3128", "noProxy": "localhost,.corp.example"},
        "direct": {"url": "https://mcp.example.com/mcp", "proxy": false},
        "plain": {"url": "https://mcp.example.com/mcp"}
    }}"#;
    let context = ConfigContext::for_file("/home/ada/.cursor/mcp.json".as_ref());
    let servers =
        parse_config_with(json, &ConnectionConfig::default(), env, &context).expect("parses");
    let by = |n: &str| network(&servers.iter().find(|s| s.name == n).expect(n).transport);
    let corp = by("corp");
    assert_eq!(corp.ca_file.as_deref(), Some("/etc/company/ca.pem"));
    assert_eq!(
        corp.client_cert.as_deref(),
        Some("/home/ada/.cursor/me.pem")
    );
    assert_eq!(corp.client_key.as_deref(), Some("/home/ada/.cursor/me.key"));
    assert_eq!(
        corp.proxy,
        ProxyChoice::Url("http://me:pr0xy-secret@127.0.0.1:3128".into())
    );
    assert_eq!(corp.no_proxy.as_deref(), Some("localhost,.corp.example"));
    assert_eq!(by("direct").proxy, ProxyChoice::Off);
    assert_eq!(*by("plain"), HttpNetwork::default());
    let debug = format!("{servers:?}");
    assert!(!debug.contains("pr0xy-secret"), "{debug}");
    assert!(debug.contains("127.0.0.1:3128"), "{debug}");
}

#[test]
fn misplaced_or_incomplete_keys_are_errors_naming_the_field() {
    let cases = [
        (
            r#"{"mcpServers": {"s": {"command": "x", "caFile": "/ca.pem"}}}"#,
            "mcpServers.s.caFile",
        ),
        (
            r#"{"mcpServers": {"s": {"command": "x", "proxy": false}}}"#,
            "mcpServers.s.proxy",
        ),
        (
            r#"{"mcpServers": {"w": {"url": "https://x/mcp", "clientCert": "/c.pem"}}}"#,
            "mcpServers.w.clientKey",
        ),
        (
            r#"{"mcpServers": {"w": {"url": "https://x/mcp", "clientKey": "/c.key"}}}"#,
            "mcpServers.w.clientCert",
        ),
        (
            r#"{"mcpServers": {"w": {"url": "https://x/mcp", "proxy": 3128}}}"#,
            "mcpServers.w.proxy",
        ),
        (
            r#"{"mcpServers": {"w": {"url": "https://x/mcp", "caFile": "relative.pem"}}}"#,
            "mcpServers.w.caFile",
        ),
    ];
    for (json, field) in cases {
        let err = parse_config(json, &ConnectionConfig::default(), env).expect_err(json);
        assert_eq!(err.path, field, "{err}");
    }
}

#[test]
fn building_the_transport_checks_the_files_and_the_proxy() {
    for (json, field) in [
        (
            r#"{"mcpServers": {"w": {"url": "https://x/mcp", "caFile": "/no/such/ca.pem"}}}"#,
            "mcpServers.w.caFile",
        ),
        (
            r#"{"mcpServers": {"w": {"url": "https://x/mcp", "clientCert": "/no/c.pem", "clientKey": "/no/c.key"}}}"#,
            "mcpServers.w.clientCert",
        ),
        (
            r#"{"mcpServers": {"w": {"url": "https://x/mcp", "proxy": "socks5://127.0.0.1:1080"}}}"#,
            "mcpServers.w.proxy",
        ),
    ] {
        let err = ConnectionPool::from_config_str(json).expect_err(json);
        assert!(
            matches!(&err, Error::Config(c) if c.path == field),
            "{field}: {err}"
        );
    }
    let pool = ConnectionPool::from_config_str(
        r#"{"mcpServers": {"w": {"url": "http://127.0.0.1:9/mcp", "proxy": "http://u:p@127.0.0.1:3128", "noProxy": "example.com"}}}"#,
    )
    .expect("a pool");
    assert_eq!(pool.names(), ["w"]);
}
