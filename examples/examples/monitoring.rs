//! Health monitoring and auto-reconnect, live: the server process is killed
//! with SIGKILL twice, and the connection brings it back by itself (the
//! the Python original's second example). `cargo run -p examples --example monitoring`

use std::time::Duration;

use examples::{demo_server, serve_if_demo_server};
use mcp_conn_core::{Connection, ConnectionConfig, ConnectionStatus};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    serve_if_demo_server();
    let pidfile =
        std::env::temp_dir().join(format!("mcp-conn-monitoring-{}.pid", std::process::id()));
    let config = ConnectionConfig {
        health_check_interval: Duration::from_millis(200),
        reconnect_delay: Duration::from_millis(250),
        ..Default::default()
    };
    let transport = demo_server("normal")
        .env("FAKE_MCP_PIDFILE", &pidfile)
        .build()?;
    let connection = Connection::with_config("demo", transport, config);
    connection.connect().await?;
    connection.start_monitoring().await;

    let mut status = connection.subscribe();
    let started = tokio::time::Instant::now();
    let log = tokio::spawn(async move {
        while status.changed().await.is_ok() {
            let now = *status.borrow_and_update();
            println!(
                "  {:>5.0} ms  status: {now}",
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
    });

    for round in 1..=2 {
        let client = connection.connect().await?;
        let r = client
            .call_tool("echo", json!({"text": format!("round {round}")}))
            .await?;
        let pid = mcp_conn_testkit::leaks::read_pidfile(&pidfile)
            .map(|(p, _)| p)
            .ok_or("no pid file")?;
        println!(
            "round {round}: echo -> {:?}; killing server pid {pid} with SIGKILL",
            r.text()
        );
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()?;
        tokio::time::timeout(
            Duration::from_secs(10),
            connection.wait_for_status(|s| s == ConnectionStatus::Reconnecting),
        )
        .await?;
        tokio::time::timeout(
            Duration::from_secs(10),
            connection.wait_for_status(|s| s == ConnectionStatus::Connected),
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(500)).await; // a few health checks on the new session
        let info = connection.info();
        println!(
            "  back: sessions {}, reconnects {}, last error {:?}\n        health {:.2}, last probe {:?}, checks failed {}",
            info.connection_count,
            info.metrics.reconnects,
            info.last_error,
            info.health_score,
            info.last_probe_latency,
            info.metrics.health_checks_failed
        );
    }
    connection.disconnect().await;
    log.abort();
    let _ = std::fs::remove_file(&pidfile);
    Ok(())
}
