//! The main job: a pool of demo servers from an `mcpServers` config.
//!
//! `cargo run -p examples --example pool [config.json]`
//!
//! Without a config file it uses a built-in one whose servers are this very
//! program, started again as the bundled demo MCP server, and runs every
//! step: connect, catalog, calls, a crash and its reconnect. With your own
//! config it runs only the steps that make sense for any servers: connect,
//! catalog, a health probe of each, the final state.

use std::time::Duration;

use examples::{serve_if_demo_server, DEMO_SERVER_ENV};
use mcp_conn_core::ConnectionStatus;
use mcp_conn_pool::{ConnectionPool, PoolEvent};
use serde_json::json;

const DEFAULT_CONFIG: &str = r#"{
  "mcpServers": {
    "files":  { "command": "${env:DEMO_BIN}", "args": ["normal"],        "env": { "MCP_CONN_DEMO_SERVER": "1" } },
    "search": { "command": "${env:DEMO_BIN}", "args": ["normal"],        "env": { "MCP_CONN_DEMO_SERVER": "1" } },
    "math":   { "command": "${env:DEMO_BIN}", "args": ["normal"],        "env": { "MCP_CONN_DEMO_SERVER": "1" } },
    "flaky":  { "command": "${env:DEMO_BIN}", "args": ["crash-after 3"], "env": { "MCP_CONN_DEMO_SERVER": "1" },
                "connection": { "reconnect_delay": 0.2, "health_check_interval": 5 } },
    "legacy": { "command": "no-such-mcp-server", "disabled": true }
  }
}"#;

fn table(pool: &ConnectionPool) {
    let report = pool.health_report();
    println!(
        "  {:<8} {:<13} {:<17} {:>6} {:>8} {:>9} {:>8}",
        "server", "status", "server name", "health", "sessions", "requests", "uptime"
    );
    for c in &report.connections {
        println!(
            "  {:<8} {:<13} {:<17} {:>6.2} {:>8} {:>9} {:>7.1}s",
            c.name,
            c.status.to_string(),
            c.server_name.clone().unwrap_or_else(|| "-".into()),
            c.health_score,
            c.connection_count,
            c.metrics.requests_ok + c.metrics.requests_failed,
            c.total_uptime.as_secs_f64()
        );
    }
    println!(
        "  total {}: {} connected, {} healthy, {} in error",
        report.total, report.connected, report.healthy, report.in_error
    );
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    serve_if_demo_server();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Display, never a Debug dump.
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let own_config = std::env::args().nth(1);
    let demo = own_config.is_none();
    let pool = match own_config {
        Some(path) => {
            println!("Loading {path}");
            ConnectionPool::from_config_file(&path).map_err(|e| format!("{path}: {e}"))?
        }
        None => {
            // The built-in config runs this program as its servers.
            std::env::set_var("DEMO_BIN", std::env::current_exe()?);
            let _ = DEMO_SERVER_ENV;
            ConnectionPool::from_config_str(DEFAULT_CONFIG)?
        }
    };
    let mut events = pool.subscribe();

    println!("1. Connecting {} servers at once", pool.len());
    for (name, outcome) in pool.connect_all().await {
        match outcome {
            Ok(client) => println!(
                "  {name:<8} connected ({:?})",
                client.server_info().map(|s| s.name.as_str()).unwrap_or("?")
            ),
            Err(e) => println!("  {name:<8} FAILED: {e}"),
        }
    }
    pool.start_monitoring();
    table(&pool);

    println!("\n2. The tool catalog");
    let catalog = pool.list_tools().await;
    for t in &catalog.tools {
        println!(
            "  {:<16} {}",
            t.qualified_name,
            t.tool.description.clone().unwrap_or_default()
        );
    }
    for (server, e) in &catalog.failed {
        println!("  ({server}: {e})");
    }

    if !demo {
        println!("\n3. A health probe of each connected server");
        for name in pool.names() {
            let Some(conn) = pool.get(&name) else {
                continue;
            };
            if !conn.is_connected() {
                continue;
            }
            let report = conn.health_check().await;
            match (report.ok, report.latency) {
                (true, Some(latency)) => {
                    println!("  {name:<8} ok in {:.1} ms", latency.as_secs_f64() * 1000.0)
                }
                _ => println!("  {name:<8} failed: {}", report.error.unwrap_or_default()),
            }
        }
        println!("\n4. Final state");
        table(&pool);
        pool.shutdown().await;
        println!("\nShut down: every server process was stopped and reaped.");
        return Ok(());
    }

    println!("\n3. Calls through the catalog");
    let sum = pool
        .call_tool("math__add", json!({"a": 20, "b": 22}))
        .await?;
    println!("  math__add(20, 22)  -> {}", sum.text());
    let echo = pool
        .call_tool("search__echo", json!({"text": "hello, pool"}))
        .await?;
    println!("  search__echo       -> {:?}", echo.text());

    println!("\n4. \"flaky\" crashes after three requests (listing its tools was the first); watch it come back");
    while events.try_recv().is_ok() {} // start the event log from here
    for i in 1..=3 {
        match pool
            .call_tool("flaky__echo", json!({"text": format!("call {i}")}))
            .await
        {
            Ok(r) => println!("  flaky__echo #{i}     -> {:?}", r.text()),
            Err(e) => println!("  flaky__echo #{i}     -> error: {e}"),
        }
    }
    let flaky = pool.get("flaky").ok_or("no flaky server")?;
    let started = tokio::time::Instant::now();
    let back = tokio::time::timeout(
        Duration::from_secs(10),
        flaky.wait_for_status(|s| s == ConnectionStatus::Connected),
    )
    .await;
    while let Ok(e) = events.try_recv() {
        match e {
            PoolEvent::StatusChanged { name, from, to } => {
                println!("  event: {name} {from} -> {to}")
            }
            PoolEvent::Probed { name, ok, .. } => println!(
                "  event: probed {name}: {}",
                if ok { "ok" } else { "failed" }
            ),
            other => println!("  event: {other:?}"),
        }
    }
    match back {
        Ok(_) => println!(
            "  flaky is back after {:.0} ms",
            started.elapsed().as_secs_f64() * 1000.0
        ),
        Err(_) => println!("  flaky did not come back in 10 s"),
    }
    let again = pool
        .call_tool("flaky__echo", json!({"text": "after the crash"}))
        .await?;
    println!("  flaky__echo        -> {:?}", again.text());

    println!("\n5. Final state");
    table(&pool);
    pool.shutdown().await;
    println!("\nShut down: every server process was stopped and reaped.");
    Ok(())
}
