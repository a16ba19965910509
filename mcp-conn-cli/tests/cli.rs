//! The built `mcp-conn` binary against real processes: this test program run
//! again as the testkit's fake MCP server, a scripted HTTP server answering
//! 401, a port nothing listens on, a program that does not exist, and (when
//! installed) the official reference server and a Python SDK server.
//!
//! This file has its own `main` (`harness = false`): with
//! `MCP_CONN_CLI_FAKE_SERVER` set, it is the fake server; otherwise it runs
//! the tests below, each with a deadline (every run of the binary is wrapped
//! in `timeout`), and prints `N passed, N failed`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use mcp_conn_testkit::http_server::{Behavior, TestHttpServer};
use mcp_conn_testkit::leaks;
use serde_json::{json, Value};

const FAKE_ENV: &str = "MCP_CONN_CLI_FAKE_SERVER";
/// The longest one run of the binary may take.
const DEADLINE_SECS: &str = "60";

fn main() {
    if std::env::var_os(FAKE_ENV).is_some() {
        std::process::exit(mcp_conn_testkit::fake_server::main());
    }
    let tests: &[(&str, fn())] = &[
        (
            "check_table_json_and_exit_codes",
            check_table_json_and_exit_codes,
        ),
        (
            "check_all_healthy_exits_0_and_leaves_nothing_running",
            check_all_healthy_exits_0_and_leaves_nothing_running,
        ),
        (
            "config_errors_exit_2_naming_the_field",
            config_errors_exit_2_naming_the_field,
        ),
        (
            "no_config_found_exits_2_saying_where_it_looked",
            no_config_found_exits_2_saying_where_it_looked,
        ),
        (
            "finds_the_hosts_configs_in_their_usual_places",
            finds_the_hosts_configs_in_their_usual_places,
        ),
        ("tools_lists_the_catalog", tools_lists_the_catalog),
        (
            "call_prints_text_and_exits_1_on_a_tool_error",
            call_prints_text_and_exits_1_on_a_tool_error,
        ),
        (
            "watch_prints_changes_and_stops_cleanly_on_ctrl_c",
            watch_prints_changes_and_stops_cleanly_on_ctrl_c,
        ),
        ("help_for_every_subcommand", help_for_every_subcommand),
        (
            "ctrl_c_during_check_stops_every_server",
            ctrl_c_during_check_stops_every_server,
        ),
        (
            "check_on_a_terminal_shows_progress_and_the_table",
            check_on_a_terminal_shows_progress_and_the_table,
        ),
        (
            "check_says_who_needs_consent_and_auth_gets_it",
            check_says_who_needs_consent_and_auth_gets_it,
        ),
        (
            "check_shows_the_proxy_tls_version_and_protocol",
            check_shows_the_proxy_tls_version_and_protocol,
        ),
        (
            "interop_check_against_real_servers",
            interop_check_against_real_servers,
        ),
    ];
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let started = Instant::now();
    let (mut passed, mut failed, mut filtered) = (0, 0, 0);
    for (name, test) in tests {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            filtered += 1;
            continue;
        }
        let outcome = std::panic::catch_unwind(test);
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED");
            }
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; {filtered} filtered out; finished in {:.2}s\n",
        if failed == 0 { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        std::process::exit(101);
    }
}

/// A fresh folder, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("mcp-conn-cli-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A stdio server entry running the fake server in `mode`.
fn fake(mode: &str, pidfile: Option<&Path>) -> Value {
    let mut env = json!({ FAKE_ENV: "1" });
    if let Some(p) = pidfile {
        env["FAKE_MCP_PIDFILE"] = json!(p);
    }
    json!({
        "command": std::env::current_exe().unwrap(),
        "args": mode.split_whitespace().collect::<Vec<_>>(),
        "env": env,
    })
}

/// A URL where nothing listens.
fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/mcp")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `mcp-conn args` in `cwd` with `HOME=home` (and the credential store in
/// it), wrapped in `timeout` so that it cannot outlive the deadline.
fn mcp_conn(cwd: &Path, home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("timeout");
    command
        .args(["-k", "5", DEADLINE_SECS, env!("CARGO_BIN_EXE_mcp-conn")])
        .args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env("MCP_CONN_CREDENTIALS", home.join("credentials.json"))
        .env_remove("RUST_LOG");
    command
}

/// [`mcp_conn`] with its output piped, started.
fn spawn(dir: &Dir, args: &[&str]) -> std::process::Child {
    mcp_conn(&dir.0, &dir.0, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs timeout(1)")
}

/// Runs `mcp-conn args` in `cwd` with `HOME=home`, within the deadline.
fn run_in(cwd: &Path, home: &Path, args: &[&str]) -> Run {
    let out = mcp_conn(cwd, home, args).output().expect("runs timeout(1)");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_ne!(run.code, 124, "mcp-conn {args:?} hung: {}", run.stderr);
    run
}

fn run(dir: &Dir, args: &[&str]) -> Run {
    run_in(&dir.0, &dir.0, args)
}

fn no_debug_dump(text: &str) {
    for dump in [
        "Error {",
        "PoolConfigError {",
        "Config(",
        "Some(",
        "panicked",
    ] {
        assert!(!text.contains(dump), "a Debug dump or panic: {text}");
    }
}

fn by_name<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {doc}"))
}

fn check_table_json_and_exit_codes() {
    let dir = Dir::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let unauthorized = rt
        .block_on(TestHttpServer::start(Behavior {
            status_all: Some(401),
            ..Behavior::default()
        }))
        .unwrap();
    let config = json!({"mcpServers": {
        "good": fake("normal", None),
        "crashy": fake("exit-during-initialize", None),
        "missing": {"command": "no-such-mcp-server-program", "args": ["x"]},
        "unreachable": {"type": "http", "url": closed_port_url()},
        "locked": {"url": unauthorized.url()},
        "off": {"command": "whatever", "disabled": true}
    }});
    let path = dir.write("mcp.json", &config.to_string());
    let path = path.to_str().unwrap();

    let table = run(&dir, &["check", "--timeout", "10", path]);
    assert_eq!(table.code, 1, "{}\n{}", table.stdout, table.stderr);
    no_debug_dump(&table.stdout);
    no_debug_dump(&table.stderr);
    let out = &table.stdout;
    assert!(out.starts_with("SERVER"), "{out}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}: {out}"))
            .to_owned()
    };
    assert!(line("good").contains(" ok "), "{out}");
    assert!(line("good").contains("fake-mcp-server"), "{out}");
    assert!(line("missing").contains("FAILED"), "{out}");
    assert!(line("off").contains("disabled"), "{out}");
    assert!(
        out.contains("missing: program not found: no-such-mcp-server-program"),
        "{out}"
    );
    assert!(
        out.contains("unreachable: connection refused at http://127.0.0.1:"),
        "{out}"
    );
    assert!(
        out.contains("locked: 401: this server needs authorization"),
        "{out}"
    );
    assert!(
        out.contains("crashy: the server exited (status 1)"),
        "{out}"
    );
    assert!(out.contains("hint: its last stderr lines:"), "{out}");
    assert!(out.contains("1 of 5 servers ok, 1 disabled"), "{out}");
    assert!(table.stderr.contains("Read 1 config:"), "{}", table.stderr);

    let json_run = run(&dir, &["check", "--json", "--timeout", "10", path]);
    assert_eq!(json_run.code, 1);
    let doc: Value = serde_json::from_str(&json_run.stdout).expect("one JSON document");
    assert_eq!(doc["servers"].as_array().unwrap().len(), 6);
    let good = by_name(&doc, "good");
    assert_eq!(good["status"], "ok");
    assert_eq!(good["tools"], 5);
    assert_eq!(good["server_name"], "fake-mcp-server");
    assert!(good["protocol_version"].is_string());
    assert!(good["connect_ms"].is_u64() && good["probe_ms"].is_u64());
    assert!(good["error"].is_null());
    let missing = by_name(&doc, "missing");
    assert_eq!(missing["status"], "failed");
    assert!(missing["connect_ms"].is_null() && missing["tools"].is_null());
    assert_eq!(
        missing["error"],
        "program not found: no-such-mcp-server-program"
    );
    assert_eq!(by_name(&doc, "unreachable")["status"], "failed");
    assert_eq!(by_name(&doc, "locked")["status"], "failed");
    assert_eq!(by_name(&doc, "off")["status"], "disabled");
    unauthorized.stop();
}

fn check_shows_the_proxy_tls_version_and_protocol() {
    use mcp_conn_testkit::proxy::{ProxyBehavior, TestProxy};
    use mcp_conn_testkit::tls::{TestCa, Usage};
    let dir = Dir::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ca = TestCa::new("cli test CA").unwrap();
    let identity = ca.issue(&["127.0.0.1"], Usage::Server, false).unwrap();
    let h2 = TestCa::server_config(&identity, &[b"h2", b"http/1.1"], None).unwrap();
    let h1 = TestCa::server_config(&identity, &[b"http/1.1"], None).unwrap();
    let (h2_server, h1_server, proxy) = rt.block_on(async {
        (
            TestHttpServer::start_tls(Behavior::default(), h2)
                .await
                .unwrap(),
            TestHttpServer::start_tls(Behavior::default(), h1)
                .await
                .unwrap(),
            TestProxy::start(ProxyBehavior::default()).await.unwrap(),
        )
    });
    let ca_file = dir.write("company-ca.pem", ca.cert_pem());
    let config = json!({"mcpServers": {
        "tunnelled": {"url": h2_server.url(), "caFile": "company-ca.pem", "proxy": proxy.url(None)},
        "direct": {"url": h1_server.url(), "caFile": ca_file, "proxy": false},
        "untrusted": {"url": h2_server.url(), "proxy": false}
    }});
    let path = dir.write("mcp.json", &config.to_string());
    let path = path.to_str().unwrap();

    let table = run(&dir, &["check", "--timeout", "10", path]);
    assert_eq!(table.code, 1, "{}\n{}", table.stdout, table.stderr);
    let out = &table.stdout;
    assert!(out.contains("WIRE"), "{out}");
    assert!(
        out.contains(&format!("HTTP/2 TLSv1.3 via {}", proxy.url(None))),
        "{out}"
    );
    assert!(out.contains("HTTP/1.1 TLSv1.3"), "{out}");
    assert!(
        out.contains("certificate signed by an unknown authority"),
        "{out}"
    );
    assert!(out.contains("caFile"), "the hint names the fix: {out}");
    no_debug_dump(out);

    let json_run = run(&dir, &["check", "--json", "--timeout", "10", path]);
    let doc: Value = serde_json::from_str(&json_run.stdout).expect("one JSON document");
    let tunnelled = by_name(&doc, "tunnelled");
    assert_eq!(tunnelled["status"], "ok", "{tunnelled}");
    assert_eq!(tunnelled["wire"]["protocol"], "HTTP/2");
    assert_eq!(tunnelled["wire"]["tls"], "TLSv1.3");
    assert_eq!(tunnelled["wire"]["proxy"], proxy.url(None).as_str());
    let direct = by_name(&doc, "direct");
    assert_eq!(direct["wire"]["protocol"], "HTTP/1.1");
    assert!(direct["wire"]["proxy"].is_null());
    assert_eq!(by_name(&doc, "untrusted")["status"], "failed");
    assert!(proxy.tunnels() >= 2, "both runs went through the proxy");
}

fn check_all_healthy_exits_0_and_leaves_nothing_running() {
    let dir = Dir::new();
    let pidfile = dir.0.join("server.pid");
    let config = json!({"mcpServers": {
        "a": fake("normal", Some(&pidfile)),
        "b": fake("slow-drip", None),
        "off": {"command": "nothing", "disabled": true}
    }});
    let path = dir.write("c.json", &config.to_string());
    let r = run(&dir, &["check", path.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("2 of 2 servers ok, 1 disabled"),
        "{}",
        r.stdout
    );
    let (pid, _) = leaks::read_pidfile(&pidfile).expect("the server wrote its pid");
    assert!(!leaks::is_alive(pid), "server {pid} still runs after check");
}

fn config_errors_exit_2_naming_the_field() {
    let dir = Dir::new();
    let bad = dir.write(
        "bad.json",
        r#"{"mcpServers": {"fs": {"command": "x", "args": ["ok", 7]}}}"#,
    );
    let r = run(&dir, &["check", bad.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("mcpServers.fs.args[1]: expected a string"),
        "{}",
        r.stderr
    );
    no_debug_dump(&r.stderr);
    let r = run(&dir, &["check", "/no/such/file.json"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("/no/such/file.json: config: cannot read it"),
        "{}",
        r.stderr
    );
    let unset = dir.write(
        "unset.json",
        r#"{"mcpServers": {"w": {"url": "${MCP_CONN_TEST_SURELY_UNSET}"}}}"#,
    );
    let r = run(&dir, &["tools", unset.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("environment variable MCP_CONN_TEST_SURELY_UNSET is not set"),
        "{}",
        r.stderr
    );
    let r = run(
        &dir,
        &["call", "--config", bad.to_str().unwrap(), "fs__x", "[1]"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("must be a JSON object"), "{}", r.stderr);
    let r = run(&dir, &["check", "--timeout", "-1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = run(&dir, &["frobnicate"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

fn no_config_found_exits_2_saying_where_it_looked() {
    let dir = Dir::new();
    let r = run(&dir, &["check"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no MCP config found"), "{}", r.stderr);
    assert!(
        r.stderr.contains(".codeium/windsurf/mcp_config.json"),
        "{}",
        r.stderr
    );
}

fn finds_the_hosts_configs_in_their_usual_places() {
    let home = Dir::new();
    let project = Dir::new();
    // Cursor (user), VS Code (project, `servers` and `${workspaceFolder}`),
    // Claude Code (~/.claude.json, local scope of this project).
    home.write(
        ".cursor/mcp.json",
        &json!({"mcpServers": {"cursor-one": fake("normal", None)}}).to_string(),
    );
    let mut vscode = fake("normal ${workspaceFolder}", None);
    vscode["type"] = json!("stdio");
    project.write(
        ".vscode/mcp.json",
        &json!({"inputs": [{"type": "promptString", "id": "key", "password": true}],
                "servers": {"code-one": vscode}})
        .to_string(),
    );
    let project_path = std::fs::canonicalize(&project.0).unwrap();
    home.write(
        ".claude.json",
        &json!({"numStartups": 3, "projects": {
            project_path.to_str().unwrap(): {"mcpServers": {"claude-local": fake("normal", None)}},
            "/elsewhere": {"mcpServers": {"not-this-one": {"command": "x"}}}
        }})
        .to_string(),
    );
    let r = run_in(&project_path, &home.0, &["check", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("Read 3 configs:"), "{}", r.stderr);
    assert!(r.stderr.contains("(Cursor, 1 server)"), "{}", r.stderr);
    assert!(r.stderr.contains("(VS Code, 1 server)"), "{}", r.stderr);
    assert!(r.stderr.contains("(Claude Code, 1 server)"), "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let names: Vec<_> = doc["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["claude-local", "code-one", "cursor-one"]);
}

fn tools_lists_the_catalog() {
    let dir = Dir::new();
    let config = json!({"mcpServers": {"fk": fake("normal", None)}});
    let path = dir.write("c.json", &config.to_string());
    let r = run(&dir, &["tools", path.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let echo = r
        .stdout
        .lines()
        .find(|l| l.starts_with("fk__echo"))
        .expect("fk__echo");
    assert!(echo.ends_with("Returns its text"), "{echo}");
    assert_eq!(r.stdout.lines().count(), 5, "{}", r.stdout);
    let r = run(&dir, &["tools", "--json", path.to_str().unwrap()]);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["tools"][0]["name"], "fk__add");
    assert_eq!(doc["tools"][0]["server"], "fk");
}

fn call_prints_text_and_exits_1_on_a_tool_error() {
    let dir = Dir::new();
    let config = json!({"mcpServers": {"my__srv": fake("normal", None), "dead": {"command": "no-such-mcp-server-program"}}});
    let path = dir.write("c.json", &config.to_string());
    let path = path.to_str().unwrap();
    let r = run(
        &dir,
        &[
            "call",
            "--config",
            path,
            "my__srv__echo",
            r#"{"text": "hello there"}"#,
        ],
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "hello there\n"),
        "{}",
        r.stderr
    );
    let r = run(
        &dir,
        &[
            "call",
            "--config",
            path,
            "my__srv__add",
            r#"{"a": 2, "b": 40}"#,
        ],
    );
    assert_eq!(r.stdout, "42\n");
    let r = run(&dir, &["call", "--config", path, "my__srv__fail"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("my__srv__fail reported an error"),
        "{}",
        r.stderr
    );
    let r = run(&dir, &["call", "--config", path, "dead__anything"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("program not found"), "{}", r.stderr);
    let r = run(&dir, &["call", "--config", path, "nobody__echo"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("servers: dead, my__srv"), "{}", r.stderr);
    no_debug_dump(&r.stderr);
}

fn watch_prints_changes_and_stops_cleanly_on_ctrl_c() {
    let dir = Dir::new();
    let pidfile = dir.0.join("w.pid");
    let config = json!({"mcpServers": {"w": fake("normal", Some(&pidfile)), "gone": {"command": "no-such-mcp-server-program"}}});
    let path = dir.write("c.json", &config.to_string());
    // `--for`: stops by itself.
    let r = run(&dir, &["watch", "--for", "0.5", path.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("w: connected (fake-mcp-server"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("gone: FAILED: program not found"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("stopped;"), "{}", r.stdout);
    // Ctrl-C (SIGINT) once the summary is printed.
    let mut child = spawn(&dir, &["watch", path.to_str().unwrap()]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let summary = line.contains("2 servers: 1 connected");
        seen.push(line);
        if summary {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("2 servers: 1 connected")),
        "{seen:?}"
    );
    // Hot reload: a broken file changes nothing; then `gone` is removed and
    // `w2` added, and `w` is not touched.
    let mut wait_for = |what: &str| {
        for line in lines.by_ref() {
            let line = line.unwrap();
            let found = line.contains(what);
            seen.push(line);
            if found {
                return;
            }
        }
        panic!("no line with {what:?}: {seen:?}");
    };
    std::fs::write(&path, "{not json").unwrap();
    wait_for("config change refused");
    let pidfile2 = dir.0.join("w2.pid");
    let config = json!({"mcpServers": {"w": fake("normal", Some(&pidfile)), "w2": fake("normal", Some(&pidfile2))}});
    std::fs::write(&path, config.to_string()).unwrap();
    wait_for("config reloaded: added w2; removed gone");
    wait_for("2 servers: 2 connected");
    assert!(
        !seen.iter().any(|l| l.contains("w: connected -> ")),
        "w untouched: {seen:?}"
    );
    // `timeout` passes SIGINT on to mcp-conn.
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("stopped;")), "{rest:?}");
    for pidfile in [&pidfile, &pidfile2] {
        let (pid, _) = leaks::read_pidfile(pidfile).expect("pid");
        assert!(
            !leaks::is_alive(pid),
            "server {pid} still runs after Ctrl-C"
        );
    }
}

/// GETs `url` on loopback (plain HTTP) and returns the `Location` of a
/// redirect, if it is one: what a browser does, one hop at a time.
fn get_location(url: &str) -> Option<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .map(str::to_owned)
}

/// A server behind OAuth (the testkit's authorization server): `check`
/// never asks for consent and says the server needs it (registering
/// nothing); `auth` runs the consent (the test plays the browser) and
/// stores the tokens; then `check` connects with them.
fn check_says_who_needs_consent_and_auth_gets_it() {
    use mcp_conn_testkit::auth_server::{AuthServer, AuthServerConfig};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt
        .block_on(AuthServer::start(AuthServerConfig::default()))
        .unwrap();
    let dir = Dir::new();
    let config = json!({"mcpServers": {"remote": {"url": srv.mcp_url(), "auth": "oauth"}}});
    let path = dir.write("c.json", &config.to_string());
    let path = path.to_str().unwrap();

    let r = run(&dir, &["check", "--json", path]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let row = by_name(&doc, "remote");
    assert_eq!(row["status"], "needs_consent", "{doc}");
    assert_eq!(row["hint"], "run `mcp-conn auth remote`", "{doc}");
    assert!(
        srv.requests_to("register").is_empty(),
        "check registered a client"
    );
    let r = run(&dir, &["check", path]);
    assert!(r.stdout.contains("needs consent"), "{}", r.stdout);

    // No browser opener on this PATH: the URL is printed.
    let mut child = mcp_conn(&dir.0, &dir.0, &["auth", "--config", path, "remote"])
        .env("PATH", "/usr/bin:/bin")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = stderr
        .by_ref()
        .map(|l| l.unwrap())
        .find_map(|l| l.trim().starts_with("http://").then(|| l.trim().to_owned()))
        .expect("the authorization URL is printed");
    // The authorization server consents at once and sends the browser back
    // to mcp-conn's loopback listener.
    let callback = get_location(&url).expect("a redirect to the callback");
    assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
    get_location(&callback);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("remote: authorized and connected"),
        "{stdout}"
    );

    let r = run(&dir, &["check", "--json", path]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(by_name(&doc, "remote")["status"], "ok", "{doc}");
    no_debug_dump(&r.stderr);
    drop(rt);
}

/// Ctrl-C while a server hangs in its handshake: check stops at once with
/// status 130 and leaves no process behind.
fn ctrl_c_during_check_stops_every_server() {
    let dir = Dir::new();
    let pidfile = dir.0.join("hang.pid");
    let config = json!({"mcpServers": {"stuck": fake("hang", Some(&pidfile))}});
    let path = dir.write("c.json", &config.to_string());
    let started = Instant::now();
    let child = spawn(&dir, &["check", "--timeout", "50", path.to_str().unwrap()]);
    // The server runs (a real process: wait for its pid file, bounded).
    let pid = loop {
        if let Some((pid, _)) = leaks::read_pidfile(&pidfile) {
            break pid;
        }
        assert!(started.elapsed().as_secs() < 30, "the server never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("Interrupted: stopping every server"),
        "{stderr}"
    );
    assert!(
        started.elapsed().as_secs() < 40,
        "it waited for the 50 s timeout"
    );
    // The server was still in its handshake: the dropped connect attempt
    // kills it (SIGKILL) without waiting for its exit, which the kernel
    // completes a moment later on a busy machine (seen once in CI). So its
    // end is awaited, bounded.
    assert!(
        leaks::wait_dead(pid, std::time::Duration::from_secs(10)),
        "server {pid} still runs 10 s after Ctrl-C"
    );
    no_debug_dump(&stderr);
}

/// On a terminal (a pseudo-terminal made by script(1)), check draws its
/// live progress and then the same table.
fn check_on_a_terminal_shows_progress_and_the_table() {
    let dir = Dir::new();
    let config = json!({"mcpServers": {"a": fake("normal", None)}});
    let path = dir.write("c.json", &config.to_string());
    let command = format!(
        "{} check {}",
        env!("CARGO_BIN_EXE_mcp-conn"),
        path.display()
    );
    let out = Command::new("timeout")
        .args([
            "-k",
            "5",
            DEADLINE_SECS,
            "script",
            "-qec",
            &command,
            "/dev/null",
        ])
        .current_dir(&dir.0)
        .env("HOME", &dir.0)
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("1 of 1 server ok"), "{text}");
    assert!(text.contains("connecting"), "the live progress: {text}");
    assert!(
        text.contains("\u{1b}["),
        "terminal control sequences: {text}"
    );
    no_debug_dump(&text);
}

fn help_for_every_subcommand() {
    let dir = Dir::new();
    for sub in ["check", "tools", "call", "watch", "auth"] {
        let r = run(&dir, &[sub, "--help"]);
        assert_eq!(r.code, 0, "{sub}");
        assert!(r.stdout.contains("Usage: mcp-conn"), "{sub}: {}", r.stdout);
    }
    let r = run(&dir, &["--help"]);
    assert!(r.stdout.contains("check") && r.stdout.contains("watch"));
}

/// The interop skip helper of the testkit's tests: skip with the reason
/// printed, or fail under `MCP_CONN_REQUIRE_INTEROP`.
fn interop<T>(test: &str, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(t) => Some(t),
        Err(why) => {
            assert!(
                std::env::var_os("MCP_CONN_REQUIRE_INTEROP").is_none(),
                "{test}: interop required, but {why}"
            );
            println!("SKIPPED {test}: {why}");
            None
        }
    }
}

fn interop_check_against_real_servers() {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let everything = workspace.join(".cache/npm/node_modules/.bin/mcp-server-everything");
    let python = workspace.join(".cache/venv/bin/python");
    let script = workspace.join("mcp-conn-testkit/python/interop_server.py");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let sdk = Command::new(&python)
        .args(["-c", "import mcp.server.mcpserver"])
        .output()
        .is_ok_and(|o| o.status.success());
    let found = match (node && everything.exists(), sdk) {
        (true, true) => Ok(()),
        (false, _) => Err(
            "server-everything is not installed (run scripts/install-test-servers.sh)".to_owned(),
        ),
        (_, false) => {
            Err("the Python SDK is not installed (run scripts/install-test-servers.sh)".to_owned())
        }
    };
    if interop("interop_check_against_real_servers", found).is_none() {
        return;
    }
    let dir = Dir::new();
    let config = json!({"mcpServers": {
        "everything": {"command": everything, "args": ["stdio"]},
        "python": {"command": python, "args": [script, "stdio"]},
        "nowhere": {"url": closed_port_url()}
    }});
    let path = dir.write("c.json", &config.to_string());
    let r = run(
        &dir,
        &["check", "--json", "--timeout", "30", path.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let everything = by_name(&doc, "everything");
    assert_eq!(everything["status"], "ok", "{doc}");
    assert_eq!(everything["server_name"], "mcp-servers/everything");
    assert!(everything["tools"].as_u64().unwrap() > 5, "{doc}");
    let python = by_name(&doc, "python");
    assert_eq!(python["status"], "ok", "{doc}");
    assert!(python["tools"].as_u64().unwrap() >= 1, "{doc}");
    assert_eq!(by_name(&doc, "nowhere")["status"], "failed");
}
