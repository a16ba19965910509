//! Era benchmark: the same dual-era server (the official Python SDK's, from
//! `.cache/venv`, see `scripts/install-test-servers.sh`) spoken to in each
//! era, in one run. Prints the median `echo` round trip per era and the
//! connect time with era detection (`Auto`) and without (`Handshake`).
//!
//! `cargo run --release -p examples --example era_bench [calls]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mcp_conn_core::{Connection, ConnectionConfig, ProtocolEra, ProtocolPreference};
use mcp_transport_stdio::StdioTransport;
use serde_json::json;

fn server() -> Option<(PathBuf, PathBuf)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".cache/venv/bin/python");
    let script = root.join("mcp-conn-testkit/python/interop_server.py");
    (python.exists() && script.exists()).then_some((python, script))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

async fn connect(
    preference: ProtocolPreference,
) -> Result<(Connection, Duration), Box<dyn std::error::Error>> {
    let (python, script) = server().ok_or("run scripts/install-test-servers.sh first")?;
    let transport = StdioTransport::new(&python, [script.as_os_str(), "stdio".as_ref()])?;
    let config = ConnectionConfig {
        protocol: preference,
        ..Default::default()
    };
    let conn = Connection::with_config("bench", transport, config);
    let started = Instant::now();
    conn.connect().await?;
    Ok((conn, started.elapsed()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let mut results = Vec::new();
    for (label, preference) in [
        ("handshake", ProtocolPreference::Handshake),
        ("stateless", ProtocolPreference::Stateless(Vec::new())),
    ] {
        let (conn, _) = connect(preference).await?;
        let client = conn.client()?;
        let era = client.protocol_era();
        let mut times = Vec::with_capacity(calls);
        for i in 0..calls + 20 {
            let started = Instant::now();
            client.call_tool("echo", json!({"text": "x"})).await?;
            if i >= 20 {
                times.push(started.elapsed()); // after a warm-up
            }
        }
        conn.disconnect().await;
        results.push((label, era, median(times)));
    }
    for (label, era, m) in &results {
        println!("echo, {label:9} era ({era:?}): median {m:?} over {calls} calls");
    }
    // Connect times: the server's start dominates, so compare medians.
    let mut auto = Vec::new();
    let mut forced = Vec::new();
    for _ in 0..5 {
        let (c, t) = connect(ProtocolPreference::Auto).await?;
        assert_eq!(c.info().protocol_era, Some(ProtocolEra::Stateless));
        c.disconnect().await;
        auto.push(t);
        let (c, t) = connect(ProtocolPreference::Handshake).await?;
        c.disconnect().await;
        forced.push(t);
    }
    println!(
        "connect: detected (Auto, one server/discover) median {:?}; handshake forced (initialize + initialized) median {:?}",
        median(auto),
        median(forced)
    );
    Ok(())
}
