//! `mcp-conn check`: connect to every enabled server at once, probe it, list
//! its tools, and report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use console::{style, Term};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use mcp_conn_core::{Connection, ConnectionConfig};
use mcp_conn_pool::{ConnectionPool, PoolConfig, ServerTransport};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::CliError;
use crate::explain::{self, Explained};
use crate::hosts::{self, Loaded};
use crate::output;
use crate::{status, CheckArgs, Interrupt, Outcome};

/// What became of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Connected, answered a ping and listed its tools.
    Ok,
    /// Connected, but a ping or the tool list failed.
    Unhealthy,
    /// Could not connect.
    Failed,
    /// Needs the user's consent (OAuth): `mcp-conn auth NAME`.
    #[serde(rename = "needs_consent")]
    NeedsConsent,
    /// `"disabled": true`: not started.
    Disabled,
}

/// One row of the report (and one object of `--json`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    name: String,
    transport: String,
    status: Status,
    protocol_version: Option<String>,
    server_name: Option<String>,
    server_version: Option<String>,
    tools: Option<usize>,
    connect_ms: Option<u64>,
    probe_ms: Option<u64>,
    error: Option<String>,
    hint: Option<String>,
    config: String,
    /// What an HTTP server's connection negotiated.
    wire: Option<Wire>,
}

/// The proxy, TLS version and HTTP version an HTTP server was reached with.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Wire {
    protocol: Option<String>,
    tls: Option<String>,
    proxy: Option<String>,
}

impl Wire {
    fn of(conn: &Connection) -> Option<Wire> {
        conn.wire_info().map(|w| Wire {
            protocol: w.protocol,
            tls: w.tls_version,
            proxy: w.proxy,
        })
    }

    /// `HTTP/2 TLSv1.3 via http://proxy:3128`.
    fn cell(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(self.protocol.clone());
        parts.extend(self.tls.clone());
        if let Some(proxy) = &self.proxy {
            parts.push(format!("via {proxy}"));
        }
        parts.join(" ")
    }
}

#[derive(Serialize)]
struct Report<'a> {
    servers: &'a [Row],
    configs: Vec<String>,
}

/// `stdio`, `http` or `sse`, and the URL of an HTTP server.
pub(crate) fn describe(t: &ServerTransport) -> (&'static str, Option<String>) {
    match t {
        ServerTransport::Stdio { .. } => ("stdio", None),
        ServerTransport::Http {
            url, legacy_sse, ..
        } => (if *legacy_sse { "sse" } else { "http" }, Some(url.clone())),
        _ => ("?", None),
    }
}

/// The settings `check` connects with: the server's own, but no reconnects
/// and every wait within `timeout`.
pub(crate) fn check_settings(mut c: ConnectionConfig, timeout: Duration) -> ConnectionConfig {
    c.auto_reconnect = false;
    c.connection_timeout = timeout;
    c.request_timeout = timeout;
    c.health_check_timeout = timeout.min(Duration::from_secs(10));
    c
}

/// A pool of the enabled servers, with `settings` applied to each.
pub(crate) fn pool_of(
    loaded: &Loaded,
    concurrency: usize,
    settings: impl Fn(ConnectionConfig) -> ConnectionConfig,
) -> Result<ConnectionPool, CliError> {
    let pool = ConnectionPool::with_config(PoolConfig {
        max_concurrent_connects: concurrency,
        shutdown_timeout: Duration::from_secs(5),
        // Stored tokens are used and refreshed; only `mcp-conn auth` asks.
        ask_for_consent: false,
        ..PoolConfig::default()
    });
    for entry in loaded.enabled() {
        let mut server = entry.server.clone();
        server.connection = settings(server.connection);
        if let Err(e) = pool.insert_server(server) {
            let file = loaded.sources[entry.source].path.clone();
            return Err(match e {
                mcp_conn_pool::Error::Config(source) => CliError::Config { file, source },
                other => CliError::Usage(format!("{}: {other}", file.display())),
            });
        }
    }
    Ok(pool)
}

pub(crate) async fn run(args: CheckArgs) -> Outcome {
    let timeout = args.configs.timeout();
    let loaded = hosts::load(&args.configs.configs, &ConnectionConfig::default())?;
    eprintln!("{}", loaded.describe());
    let pool = pool_of(&loaded, usize::from(args.concurrency), |c| {
        check_settings(c, timeout)
    })?;
    let progress = Progress::new(Term::stderr().is_term());
    let mut interrupt = Interrupt::new();

    let semaphore = Arc::new(Semaphore::new(usize::from(args.concurrency)));
    let mut tasks = JoinSet::new();
    for entry in loaded.enabled() {
        let Some(conn) = pool.get(&entry.server.name) else {
            continue;
        };
        let (kind, url) = describe(&entry.server.transport);
        let bar = progress.start(&entry.server.name);
        let semaphore = semaphore.clone();
        let config = loaded.sources[entry.source].path.display().to_string();
        let pool = pool.clone();
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            bar.connecting();
            // Connect, probe and list within their own timeouts; this outer
            // bound is a backstop so that nothing can hang the command.
            let backstop = timeout * 3 + Duration::from_secs(5);
            let row = tokio::time::timeout(backstop, check_one(&conn, kind, url.as_deref()))
                .await
                .unwrap_or_else(|_| {
                    let mut row = empty_row(conn.name(), kind, Status::Failed);
                    row.error = Some(format!("no outcome within {} s", backstop.as_secs()));
                    row
                });
            let mut row = Row { config, ..row };
            if row.status == Status::Failed {
                authorization(&pool, &mut row);
            }
            bar.done(&row);
            row
        });
    }
    let mut rows: Vec<Row> = Vec::new();
    let interrupted = loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok(row)) => rows.push(row),
                Some(Err(_)) => {}
                None => break false,
            },
            () = interrupt.recv() => break true,
        }
    };
    progress.clear();
    if interrupted {
        eprintln!("Interrupted: stopping every server");
        tasks.abort_all();
        pool.shutdown().await;
        return Ok(std::process::ExitCode::from(130));
    }
    pool.shutdown().await;
    for entry in loaded.entries.iter().filter(|e| e.server.disabled) {
        let (kind, _) = describe(&entry.server.transport);
        let mut row = empty_row(&entry.server.name, kind, Status::Disabled);
        row.config = loaded.sources[entry.source].path.display().to_string();
        rows.push(row);
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));

    let all_ok = rows
        .iter()
        .all(|r| matches!(r.status, Status::Ok | Status::Disabled));
    if args.json {
        let report = Report {
            servers: &rows,
            configs: loaded
                .sources
                .iter()
                .map(|s| s.path.display().to_string())
                .collect(),
        };
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => return Err(CliError::Usage(format!("cannot write JSON: {e}"))),
        }
    } else {
        print_table(&rows);
    }
    Ok(status(all_ok))
}

/// A server with `"auth"` that failed: says whether it needs consent or why
/// its authorization failed.
fn authorization(pool: &ConnectionPool, row: &mut Row) {
    use mcp_conn_pool::auth::OAuthError;
    let Some(e) = pool.authorization_error(&row.name) else {
        return;
    };
    if matches!(*e, OAuthError::ConsentRequired) {
        row.status = Status::NeedsConsent;
        row.error = Some("needs your consent (OAuth)".into());
    } else {
        row.error = Some(format!("authorization failed: {e}"));
    }
    row.hint = Some(format!("run `mcp-conn auth {}`", row.name));
}

fn empty_row(name: &str, kind: &str, status: Status) -> Row {
    Row {
        name: name.to_owned(),
        transport: kind.to_owned(),
        status,
        protocol_version: None,
        server_name: None,
        server_version: None,
        tools: None,
        connect_ms: None,
        probe_ms: None,
        error: None,
        hint: None,
        config: String::new(),
        wire: None,
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn check_one(conn: &Connection, kind: &str, url: Option<&str>) -> Row {
    let mut row = empty_row(conn.name(), kind, Status::Failed);
    let started = Instant::now();
    let connected = conn.connect().await;
    row.wire = Wire::of(conn);
    let client = match connected {
        Ok(client) => client,
        Err(e) => {
            let Explained { reason, hint } = explain::error(&e, url);
            row.error = Some(reason);
            row.hint = hint;
            return row;
        }
    };
    row.connect_ms = Some(ms(started.elapsed()));
    row.protocol_version = client.protocol_version().map(str::to_owned);
    row.server_name = client.server_info().map(|s| s.name.clone());
    row.server_version = client.server_info().map(|s| s.version.clone());
    let probe = conn.health_check().await;
    row.probe_ms = probe.latency.map(ms);
    let has_tools = client
        .server_capabilities()
        .is_some_and(|c| c.tools.is_some());
    let tools = if has_tools {
        client.list_tools().await.map(|t| t.len())
    } else {
        Ok(0)
    };
    match (probe.ok, tools) {
        (true, Ok(n)) => {
            row.tools = Some(n);
            row.status = Status::Ok;
        }
        (false, tools) => {
            row.tools = tools.ok();
            row.status = Status::Unhealthy;
            row.error = Some(format!(
                "connected, but the ping failed: {}",
                probe.error.unwrap_or_default()
            ));
        }
        (true, Err(e)) => {
            row.status = Status::Unhealthy;
            let Explained { reason, hint } = explain::error(&e, url);
            row.error = Some(format!("connected, but listing its tools failed: {reason}"));
            row.hint = hint;
        }
    }
    row
}

fn print_table(rows: &[Row]) {
    let color = Term::stdout().is_term() && console::colors_enabled();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let status = match r.status {
                Status::Ok => "ok",
                Status::Unhealthy => "unhealthy",
                Status::Failed => "FAILED",
                Status::NeedsConsent => "needs consent",
                Status::Disabled => "disabled",
            };
            let server = match (&r.server_name, &r.server_version) {
                (Some(n), Some(v)) => format!("{n} {v}"),
                (Some(n), None) => n.clone(),
                _ => "-".into(),
            };
            let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            vec![
                r.name.clone(),
                r.transport.clone(),
                status.to_owned(),
                dash(r.protocol_version.clone()),
                server,
                dash(r.tools.map(|n| n.to_string())),
                dash(r.connect_ms.map(|n| format!("{n} ms"))),
                dash(r.probe_ms.map(|n| match n {
                    0 => "<1 ms".to_owned(),
                    n => format!("{n} ms"),
                })),
                dash(r.wire.as_ref().map(Wire::cell)),
            ]
        })
        .collect();
    let lines = output::table(
        &[
            "SERVER",
            "TRANSPORT",
            "STATUS",
            "PROTOCOL",
            "SERVER INFO",
            "TOOLS",
            "CONNECT",
            "PROBE",
            "WIRE",
        ],
        &cells,
        &[5, 6, 7],
    );
    for (i, line) in lines.iter().enumerate() {
        if i == 0 && color {
            println!("{}", style(line).bold());
        } else {
            println!("{line}");
        }
    }
    let failures: Vec<&Row> = rows.iter().filter(|r| r.error.is_some()).collect();
    if !failures.is_empty() {
        println!();
    }
    for r in failures {
        let name = if color {
            style(&r.name).red().bold().to_string()
        } else {
            r.name.clone()
        };
        println!("{name}: {}", r.error.as_deref().unwrap_or_default());
        if let Some(hint) = &r.hint {
            for (i, line) in hint.lines().enumerate() {
                let lead = if i == 0 { "  hint: " } else { "    " };
                println!("{lead}{line}");
            }
        }
    }
    let enabled = rows.iter().filter(|r| r.status != Status::Disabled).count();
    let ok = rows.iter().filter(|r| r.status == Status::Ok).count();
    let disabled = rows.len() - enabled;
    println!(
        "\n{ok} of {enabled} server{} ok{}",
        if enabled == 1 { "" } else { "s" },
        if disabled > 0 {
            format!(", {disabled} disabled")
        } else {
            String::new()
        }
    );
}

/// The live display: one spinner per server on a terminal, one line per
/// finished server otherwise.
struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    fn new(terminal: bool) -> Self {
        Progress {
            multi: terminal.then(MultiProgress::new),
        }
    }

    fn start(&self, name: &str) -> Bar {
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new_spinner());
            let style = ProgressStyle::with_template("{spinner} {prefix:<20} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_prefix(name.to_owned());
            bar.set_message("waiting");
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Bar { bar }
    }

    fn clear(&self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    fn connecting(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message("connecting");
        }
    }

    fn done(&self, row: &Row) {
        let what = match row.status {
            Status::Ok => format!(
                "ok ({} ms, {} tools)",
                row.connect_ms.unwrap_or_default(),
                row.tools.unwrap_or_default()
            ),
            _ => format!(
                "{}: {}",
                if row.status == Status::Failed {
                    "failed"
                } else {
                    "unhealthy"
                },
                output::one_line(row.error.as_deref().unwrap_or_default())
            ),
        };
        match &self.bar {
            Some(bar) => bar.finish_with_message(what),
            None => eprintln!("  {}: {what}", row.name),
        }
    }
}
