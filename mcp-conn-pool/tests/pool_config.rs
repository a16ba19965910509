//! The mcpServers config: what it reads, and an error naming the server and
//! the field for everything it refuses.

use std::time::Duration;

use mcp_conn_core::ConnectionConfig;
use mcp_conn_pool::{parse_config, ConnectionPool, Error, ServerTransport};

fn env(var: &str) -> Option<String> {
    match var {
        "HOME" => Some("/home/ada".into()),
        "TOKEN" => Some("s3cret".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn parse(json: &str) -> Result<Vec<mcp_conn_pool::ServerConfig>, String> {
    parse_config(json, &ConnectionConfig::default(), env).map_err(|e| e.to_string())
}

#[test]
fn reads_every_kind_of_server() {
    let servers = parse(
        r#"{"mcpServers": {
            "fs":  {"command": "npx", "args": ["-y", "server-fs", "${HOME}/docs"], "env": {"API_TOKEN": "${env:TOKEN}"}, "cwd": "${HOME}"},
            "web": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}},
            "streamy": {"type": "streamable-http", "url": "http://127.0.0.1:1/mcp"},
            "old": {"transport": "sse", "url": "http://127.0.0.1:1/sse"},
            "off": {"command": "x", "disabled": true, "alwaysAllow": ["ignored"]},
            "tuned": {"command": "y", "connection": {"request_timeout": 300, "max_reconnect_attempts": 9, "auto_reconnect": false, "health_check_interval": 2.5}}
        }}"#,
    )
    .expect("parses");
    let by = |n: &str| servers.iter().find(|s| s.name == n).expect(n);
    assert_eq!(
        by("fs").transport,
        ServerTransport::Stdio {
            command: "npx".into(),
            args: vec!["-y".into(), "server-fs".into(), "/home/ada/docs".into()],
            args_as_written: vec!["-y".into(), "server-fs".into(), "${HOME}/docs".into()],
            env: vec![("API_TOKEN".into(), "s3cret".into())],
            cwd: Some("/home/ada".into()),
        }
    );
    assert!(
        !format!("{:?}", by("fs").transport).contains("s3cret"),
        "env values stay out of Debug"
    );
    assert!(
        matches!(&by("web").transport, ServerTransport::Http { headers, legacy_sse: false, .. } if headers[0].1 == "Bearer s3cret")
    );
    assert!(matches!(
        &by("streamy").transport,
        ServerTransport::Http {
            legacy_sse: false,
            ..
        }
    ));
    assert!(matches!(
        &by("old").transport,
        ServerTransport::Http {
            legacy_sse: true,
            ..
        }
    ));
    assert!(by("off").disabled);
    let tuned = &by("tuned").connection;
    assert_eq!(tuned.request_timeout, Duration::from_secs(300));
    assert_eq!(tuned.max_reconnect_attempts, 9);
    assert!(!tuned.auto_reconnect);
    assert_eq!(tuned.health_check_interval, Duration::from_millis(2500));
    assert_eq!(
        by("fs").connection.request_timeout,
        ConnectionConfig::default().request_timeout
    );
    // The "servers" key (VS Code's) works too.
    assert_eq!(
        parse(r#"{"servers": {"a": {"command": "a"}}}"#)
            .expect("parses")
            .len(),
        1
    );
}

#[test]
fn every_error_names_the_server_and_the_field() {
    let cases = [
        ("{", "config: not valid JSON"),
        ("[]", "config: expected an object"),
        ("{}", "config: no \"mcpServers\""),
        (
            r#"{"mcpServers": []}"#,
            "mcpServers: expected an object of strings",
        ),
        (
            r#"{"mcpServers": {"fs": 3}}"#,
            "mcpServers.fs: expected an object",
        ),
        (
            r#"{"mcpServers": {"fs": {}}}"#,
            "mcpServers.fs: needs \"command\" (stdio) or \"url\" (HTTP)",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a", "url": "b"}}}"#,
            "mcpServers.fs: has both \"command\" and \"url\"",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": 7}}}"#,
            "mcpServers.fs.command: expected a string",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a", "args": ["x", "y", 3]}}}"#,
            "mcpServers.fs.args[2]: expected a string",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a", "args": "x"}}}"#,
            "mcpServers.fs.args: expected an array of strings",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a", "env": {"K": 1}}}}"#,
            "mcpServers.fs.env.K: expected a string",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a", "env": []}}}"#,
            "mcpServers.fs.env: expected an object of strings",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a", "cwd": false}}}"#,
            "mcpServers.fs.cwd: expected a string",
        ),
        (
            r#"{"mcpServers": {"w": {"url": "u", "headers": {"X": null, "Y": 2}}}}"#,
            "mcpServers.w.headers.X: expected a string",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a", "type": "pigeon"}}}"#,
            "mcpServers.fs.type: unknown transport \"pigeon\"",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a", "transport": 1}}}"#,
            "mcpServers.fs.transport: expected a string",
        ),
        (
            r#"{"mcpServers": {"fs": {"type": "stdio", "url": "u"}}}"#,
            "mcpServers.fs.url: a stdio server takes \"command\"",
        ),
        (
            r#"{"mcpServers": {"fs": {"type": "http", "command": "c"}}}"#,
            "mcpServers.fs.command: an HTTP server takes \"url\"",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a", "disabled": "yes"}}}"#,
            "mcpServers.fs.disabled: expected true or false",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "${NOPE}"}}}"#,
            "mcpServers.fs.command: environment variable NOPE is not set",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a", "args": ["${env:GONE}"]}}}"#,
            "mcpServers.fs.args[0]: environment variable GONE is not set",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a${HOME"}}}"#,
            "mcpServers.fs.command: unterminated",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a${}"}}}"#,
            "mcpServers.fs.command: empty variable name",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a", "connection": 1}}}"#,
            "mcpServers.fs.connection: expected an object",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a", "connection": {"request_timeout": "60"}}}}"#,
            "mcpServers.fs.connection.request_timeout: expected a number of seconds",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a", "connection": {"request_timeout": -1}}}}"#,
            "mcpServers.fs.connection.request_timeout: expected a number of seconds",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a", "connection": {"max_reconnect_attempts": 1.5}}}}"#,
            "mcpServers.fs.connection.max_reconnect_attempts: expected a whole number",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a", "connection": {"auto_reconnect": 1}}}}"#,
            "mcpServers.fs.connection.auto_reconnect: expected true or false",
        ),
        (
            r#"{"mcpServers": {"fs": {"command": "a", "connection": {"retries": 3}}}}"#,
            "mcpServers.fs.connection.retries: unknown field `retries`",
        ),
        (
            r#"{"mcpServers": {"": {"command": "a"}}}"#,
            "mcpServers.: a server needs a name",
        ),
    ];
    let mut wrong = Vec::new();
    for (json, want) in cases {
        let got = parse(json).expect_err(json);
        if !got.starts_with(want) {
            wrong.push(format!("{json}\n  got:  {got}\n  want: {want}…"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_pool_from_config_skips_disabled_servers_and_checks_urls() {
    let pool = ConnectionPool::from_config_str(
        r#"{"mcpServers": {"a": {"command": "true"}, "b": {"url": "http://127.0.0.1:9/mcp"}, "c": {"command": "x", "disabled": true}}}"#,
    )
    .expect("a pool");
    assert_eq!(pool.names(), ["a", "b"]);
    let err = ConnectionPool::from_config_str(r#"{"mcpServers": {"w": {"url": "ftp://x/y"}}}"#)
        .expect_err("bad url");
    assert!(
        matches!(&err, Error::Config(c) if c.path == "mcpServers.w.url"),
        "{err}"
    );
    let err = ConnectionPool::from_config_str(
        r#"{"mcpServers": {"w": {"url": "http://x/y", "headers": {"bad header": "v"}}}}"#,
    )
    .expect_err("bad header");
    assert!(
        matches!(&err, Error::Config(c) if c.path == "mcpServers.w.headers.bad header"),
        "{err}"
    );
    let err = ConnectionPool::from_config_file("/no/such/mcp.json").expect_err("no file");
    assert!(err.to_string().contains("/no/such/mcp.json"), "{err}");
}

#[test]
fn arguments_holding_a_secret_stay_out_of_debug() {
    let servers = parse(
        r#"{"mcpServers": {"gh": {"command": "mcp-remote", "args": ["https://x/mcp", "--header", "Authorization: Bearer ${TOKEN}"]}}}"#,
    )
    .expect("parses");
    let ServerTransport::Stdio { args, .. } = &servers[0].transport else {
        panic!("stdio")
    };
    assert_eq!(
        args[2], "Authorization: Bearer s3cret",
        "the real argument is expanded"
    );
    let shown = format!("{:?}", servers[0]);
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("${TOKEN}"), "shown as written: {shown}");
    let pool = mcp_conn_pool::ConnectionPool::from_config_str(
        r#"{"mcpServers": {"gh": {"command": "mcp-remote", "args": ["--header", "Authorization: Bearer ${HOME}"]}}}"#,
    )
    .expect("pool");
    let home = std::env::var("HOME").unwrap_or_default();
    let conn = format!("{:?}", pool.get("gh").expect("server"));
    assert!(
        home.is_empty() || !conn.contains(&format!("Bearer {home}")),
        "{conn}"
    );
}

#[test]
fn durations_that_cannot_be_are_errors_naming_the_field_never_panics() {
    for (value, field) in [
        ("1e20", "request_timeout"),
        ("-1", "request_timeout"),
        ("1e308", "reconnect_delay"),
        ("0", "health_check_interval"),
        ("0", "request_timeout"),
    ] {
        let doc = format!(
            r#"{{"mcpServers": {{"s": {{"command": "x", "connection": {{"{field}": {value}}}}}}}}}"#
        );
        let err = parse(&doc).expect_err(&doc);
        assert!(
            err.starts_with(&format!("mcpServers.s.connection.{field}:")),
            "{err}"
        );
    }
    let err = parse(r#"{"mcpServers": {"s": {"command": "x", "connection": {"reconnect_delay": 10, "max_reconnect_delay": 1}}}}"#)
        .expect_err("max below first");
    assert!(
        err.starts_with("mcpServers.s.connection.max_reconnect_delay:"),
        "{err}"
    );
}

#[test]
fn variables_take_defaults_and_escapes_as_hosts_write_them() {
    let servers = parse(
        r#"{"mcpServers": {
            "a": {"command": "run", "args": ["${UNSET_VAR:-fallback}", "${TOKEN:-unused}", "$${HOME}", "${env:EMPTY:-was empty}"]},
            "w": {"serverUrl": "https://${UNSET_HOST:-mcp.example.com}/mcp"}
        }}"#,
    )
    .expect("parses");
    let ServerTransport::Stdio { args, .. } = &servers[0].transport else {
        panic!("stdio")
    };
    assert_eq!(args, &["fallback", "s3cret", "${HOME}", "was empty"]);
    assert!(matches!(
        &servers[1].transport,
        ServerTransport::Http { url, .. } if url == "https://mcp.example.com/mcp"
    ));
    for (json, want) in [
        (
            r#"{"servers": {"v": {"command": "x", "args": ["${input:token}"]}}}"#,
            "servers.v.args[0]: \"${input:token}\" is a VS Code variable",
        ),
        (
            r#"{"servers": {"v": {"command": "x", "cwd": "${workspaceFolder}"}}}"#,
            "servers.v.cwd: \"${workspaceFolder}\" is a VS Code variable",
        ),
    ] {
        let got = parse(json).expect_err(json);
        assert!(got.starts_with(want), "{got}");
    }
}

#[test]
fn a_restart_budget_can_be_configured() {
    let servers = parse(
        r#"{"mcpServers": {"a": {"command": "x", "connection": {"max_restarts": 5, "restart_window": 60, "max_in_flight": 4, "replay_after_reconnect": true}}, "b": {"command": "y", "connection": {"max_restarts": 2}}}}"#,
    )
    .expect("parses");
    let budget = |i: usize| servers[i].connection.restart_budget.expect("a budget");
    assert_eq!(
        (budget(0).max_restarts, budget(0).window),
        (5, Duration::from_secs(60))
    );
    assert_eq!(budget(1).window, Duration::from_secs(600));
    assert_eq!(servers[0].connection.max_in_flight, Some(4));
    assert!(servers[0].connection.replay_after_reconnect);
    assert!(!servers[1].connection.replay_after_reconnect);
    for (json, want) in [
        (
            r#"{"mcpServers": {"a": {"command": "x", "connection": {"restart_window": 60}}}}"#,
            "mcpServers.a.connection.restart_window: goes with max_restarts",
        ),
        (
            r#"{"mcpServers": {"a": {"command": "x", "connection": {"max_restarts": 0}}}}"#,
            "mcpServers.a.connection.restart_budget: max_restarts must be at least 1",
        ),
    ] {
        let got = parse(json).expect_err(json);
        assert!(got.starts_with(want), "{got}");
    }
}
