//! The main job until the pool lands: three connections to in-memory demo
//! servers — connect, list and call tools, then kill one server and watch the
//! connection notice at once and reconnect by itself.
//!
//! Run: `cargo run -p examples --example demo`

use std::time::Duration;

use mcp_conn_core::testing::{FakeServer, MockTransport};
use mcp_conn_core::{Connection, ConnectionConfig, ConnectionStatus, Error};
use serde_json::json;

fn table(connections: &[Connection]) {
    println!(
        "  {:<8} {:<13} {:<12} {:<11} {:>6} {:>9} {:>8}",
        "name", "status", "server", "protocol", "health", "sessions", "uptime"
    );
    for c in connections {
        let i = c.info();
        println!(
            "  {:<8} {:<13} {:<12} {:<11} {:>6.2} {:>9} {:>7.1}s",
            i.name,
            i.status.to_string(),
            i.server_name.unwrap_or_default(),
            i.protocol_version.unwrap_or_default(),
            i.health_score,
            i.connection_count,
            i.total_uptime.as_secs_f64(),
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let config = ConnectionConfig {
        reconnect_delay: Duration::from_millis(300),
        ..Default::default()
    };
    let transports: Vec<MockTransport> = (0..3)
        .map(|_| MockTransport::serving(FakeServer::default()))
        .collect();
    let connections: Vec<Connection> = ["alpha", "beta", "gamma"]
        .iter()
        .zip(&transports)
        .map(|(name, t)| Connection::with_config(*name, t.clone(), config.clone()))
        .collect();

    println!("1. Connecting to three demo servers at once");
    let (a, b, c) = tokio::join!(
        connections[0].connect(),
        connections[1].connect(),
        connections[2].connect()
    );
    for (c, outcome) in connections.iter().zip([a, b, c]) {
        match outcome {
            Ok(_) => println!("  {} connected", c.name()),
            Err(e) => println!("  {} failed: {e}", c.name()),
        }
    }
    table(&connections);

    println!("\n2. Tools of alpha, and two calls");
    let alpha = connections[0].client()?;
    for tool in alpha.list_tools().await? {
        println!(
            "  {:<6} {}",
            tool.name,
            tool.description.unwrap_or_default()
        );
    }
    let sum = alpha.call_tool("add", json!({"a": 20, "b": 22})).await?;
    println!("  alpha: add(20, 22) = {}", sum.text());
    let echo = connections[1]
        .client()?
        .call_tool("echo", json!({"text": "hello from beta"}))
        .await?;
    println!("  beta:  echo = {:?}", echo.text());

    println!("\n3. Killing beta's server; the connection notices and reconnects by itself");
    let beta = &connections[1];
    beta.start_monitoring().await;
    let mut status = beta.subscribe();
    let started = tokio::time::Instant::now();
    transports[1].kill_links();
    loop {
        if status.changed().await.is_err() {
            break;
        }
        let now = *status.borrow_and_update();
        println!(
            "  {:>6.0} ms  beta is {now}",
            started.elapsed().as_secs_f64() * 1000.0
        );
        if now == ConnectionStatus::Connected || now == ConnectionStatus::Error {
            break;
        }
    }
    let again = beta
        .client()?
        .call_tool("echo", json!({"text": "back again"}))
        .await?;
    println!("  beta:  echo = {:?}", again.text());
    let report = beta.health_check().await;
    println!(
        "  beta health check: ok={} latency={:?} score={:.2}",
        report.ok, report.latency, report.connection.health_score
    );

    println!("\n4. Final state");
    table(&connections);
    for c in &connections {
        c.disconnect().await;
    }
    println!("\nAll disconnected.");
    Ok(())
}
