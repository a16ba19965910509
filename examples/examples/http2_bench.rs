//! HTTP/2 benchmark: 64 `echo` calls in flight on one connection to the
//! testkit's HTTPS server (a certificate from a test authority made here),
//! offering HTTP/1.1 only, then HTTP/2 by ALPN; plain HTTP/1.1 as a
//! reference. Prints calls per second, median and p99 latency, and how many
//! TCP connections the server accepted.
//!
//! `cargo run --release -p examples --example http2_bench [calls]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_conn_core::{Connection, ConnectionConfig};
use mcp_conn_testkit::http_server::{Behavior, TestHttpServer};
use mcp_conn_testkit::tls::{TestCa, Usage};
use mcp_transport_http::{HttpTransport, TlsRoots};
use serde_json::json;
use tokio::task::JoinSet;

const IN_FLIGHT: usize = 64;

struct Figures {
    label: &'static str,
    protocol: &'static str,
    per_second: f64,
    median: Duration,
    p99: Duration,
    connections: u64,
}

async fn run(
    label: &'static str,
    srv: &TestHttpServer,
    ca: Option<&TestCa>,
    calls: usize,
) -> Result<Figures, Box<dyn std::error::Error + Send + Sync>> {
    let mut builder = HttpTransport::builder(srv.url()).disable_proxy();
    if let Some(ca) = ca {
        builder = builder.tls_roots(TlsRoots::ExtraOnly).ca_pem(ca.cert_pem());
    }
    let transport = builder.build()?;
    let config = ConnectionConfig {
        max_in_flight: Some(IN_FLIGHT * 2),
        ..Default::default()
    };
    let conn = Connection::with_config("bench", transport.clone(), config);
    let client = conn.connect().await?;
    // Warm-up: open what the protocol needs.
    let mut warm = JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let c = client.clone();
        warm.spawn(async move { c.call_tool("echo", json!({"text": "warm"})).await });
    }
    while let Some(r) = warm.join_next().await {
        r??;
    }
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for w in 0..IN_FLIGHT {
        let c = client.clone();
        let share = calls / IN_FLIGHT + usize::from(w < calls % IN_FLIGHT);
        workers.spawn(async move {
            let mut times = Vec::with_capacity(share);
            for _ in 0..share {
                let t = Instant::now();
                c.call_tool("echo", json!({"text": "x"})).await?;
                times.push(t.elapsed());
            }
            Ok::<_, mcp_conn_core::Error>(times)
        });
    }
    let mut times = Vec::with_capacity(calls);
    while let Some(r) = workers.join_next().await {
        times.extend(r??);
    }
    let elapsed = started.elapsed();
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let protocol = transport.negotiated().map_or("?", |n| n.http_version);
    conn.disconnect().await;
    Ok(Figures {
        label,
        protocol,
        per_second: calls as f64 / elapsed.as_secs_f64(),
        median: at(0.5),
        p99: at(0.99),
        connections: srv.connections(),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let ca = TestCa::new("bench CA")?;
    let identity = ca.issue(&["127.0.0.1"], Usage::Server, false)?;
    let h1_only = TestCa::server_config(&identity, &[b"http/1.1"], None)?;
    let h2 = TestCa::server_config(&identity, &[b"h2", b"http/1.1"], None)?;
    let mut results = Vec::new();
    let plain = TestHttpServer::start(Behavior::default()).await?;
    results.push(run("plain http", &plain, None, calls).await?);
    for (label, config) in [("https, h1 only", h1_only), ("https, h2 offered", h2)] {
        let srv = TestHttpServer::start_tls(Behavior::default(), Arc::clone(&config)).await?;
        results.push(run(label, &srv, Some(&ca), calls).await?);
    }
    println!("{calls} echo calls, {IN_FLIGHT} in flight, one client:");
    for f in &results {
        println!(
            "{:18} {:8}  {:8.0} calls/s  median {:>9.3?}  p99 {:>9.3?}  {} TCP connections",
            f.label, f.protocol, f.per_second, f.median, f.p99, f.connections
        );
    }
    Ok(())
}
