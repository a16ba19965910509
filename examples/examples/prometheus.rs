//! Metrics in Prometheus's text format: a pool of demo servers, some
//! calls (answered, refused, timed out, and a crash), then the scrape page.
//!
//! `cargo run -p examples --example prometheus --features metrics`
//!
//! It prints the rendering and exits, so it needs no network listener. In a
//! service you would serve `handle.render()` on `/metrics` (or use the
//! exporter's own listener, feature `http-listener`) and call
//! `handle.run_upkeep()` every few seconds.

use std::time::Duration;

use examples::serve_if_demo_server;
use mcp_conn_core::telemetry::DURATION_BUCKETS;
use mcp_conn_core::{ConnectionStatus, RequestOptions};
use mcp_conn_pool::ConnectionPool;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use serde_json::json;

const CONFIG: &str = r#"{
  "mcpServers": {
    "math":  { "command": "${env:DEMO_BIN}", "args": ["normal"],        "env": { "MCP_CONN_DEMO_SERVER": "1" } },
    "flaky": { "command": "${env:DEMO_BIN}", "args": ["crash-after 3"], "env": { "MCP_CONN_DEMO_SERVER": "1" },
               "connection": { "reconnect_delay": 0.1 } }
  }
}"#;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    serve_if_demo_server();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // 1. The recorder first: connections register their metrics when they
    //    are created. Durations as real histograms, with buckets for MCP.
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)?
        .install_recorder()?;

    // 2. A pool whose servers are this program again, as the demo server.
    std::env::set_var("DEMO_BIN", std::env::current_exe()?);
    let pool = ConnectionPool::from_config_str(CONFIG)?;
    for (name, outcome) in pool.connect_all().await {
        if let Err(e) = outcome {
            return Err(format!("{name}: {e}").into());
        }
    }

    // 3. Traffic: answered, refused by the server, timed out, and a crash.
    for i in 0..5 {
        pool.call_tool("math__add", json!({"a": i, "b": 1})).await?;
    }
    let math = pool.client("math").await?;
    let refused = math.call_tool("no-such-tool", json!({})).await;
    println!("# an unknown tool: {}", describe(refused.err()));
    let hurried = RequestOptions::new().timeout(Duration::from_millis(50));
    let slow = math
        .call_tool_with("sleep", json!({"ms": 500}), &hurried)
        .await;
    println!("# a slow call: {}", describe(slow.err()));
    let _ = pool.get("math").ok_or("no math")?.health_check().await;

    // "flaky" exits on its fourth request; the pool brings it back.
    pool.list_tools().await;
    for i in 0..3 {
        let crashed = pool
            .call_tool("flaky__echo", json!({"text": format!("call {i}")}))
            .await;
        if let Err(e) = crashed {
            println!("# flaky call {i}: {e}");
        }
    }
    let flaky = pool.get("flaky").ok_or("no flaky")?;
    tokio::time::timeout(
        Duration::from_secs(10),
        flaky.wait_for_status(|s| s == ConnectionStatus::Connected),
    )
    .await?;
    pool.call_tool("flaky__echo", json!({"text": "back"}))
        .await?;

    // 4. What a scrape of /metrics would return.
    handle.run_upkeep();
    println!("{}", handle.render());
    pool.shutdown().await;
    Ok(())
}

fn describe(error: Option<mcp_conn_core::Error>) -> String {
    match error {
        Some(e) => format!("{} ({e})", e.kind()),
        None => "succeeded".into(),
    }
}
