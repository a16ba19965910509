//! Round-trip benchmark over stdio, against the fake server's echo.
//!
//! `cargo bench -p mcp-transport-stdio` (add `taskset -c 0` in front to pin
//! client and server to one CPU). One run measures:
//! 1. the floor: a raw newline-JSON `tools/call` round trip through a pipe to
//!    the same server process, blocking I/O, no MCP engine;
//! 2. sequential `tools/call echo` latency through `Client` (p50, p99);
//! 3. throughput with 64 requests in flight through one `Client`.
//!
//! The bench re-executes itself as the server (`MCP_CONN_BENCH_SERVER=1`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_conn_core::{Connection, ConnectionConfig};
use mcp_transport_stdio::StdioTransport;
use serde_json::json;

const SERVER_ENV: &str = "MCP_CONN_BENCH_SERVER";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Figures {
    p50: Duration,
    p99: Duration,
    per_sec: f64,
}

fn summarize(mut samples: Vec<Duration>, total: Duration) -> Figures {
    samples.sort_unstable();
    Figures {
        p50: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
        per_sec: samples.len() as f64 / total.as_secs_f64(),
    }
}

/// The floor: blocking writes and reads of one JSON line each, no engine.
fn floor(exe: &std::path::Path, calls: usize) -> Figures {
    let mut child = Command::new(exe)
        .arg("normal")
        .env(SERVER_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the server");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    let mut run = |n: usize| {
        let mut samples = Vec::with_capacity(n);
        let started = Instant::now();
        for id in 0..n {
            let msg = format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"hi\"}}}}}}\n"
            );
            let t = Instant::now();
            stdin.write_all(msg.as_bytes()).expect("write");
            line.clear();
            stdout.read_line(&mut line).expect("read");
            samples.push(t.elapsed());
        }
        (samples, started.elapsed())
    };
    run(calls / 10); // warm-up
    let (samples, total) = run(calls);
    drop(stdin);
    let _ = child.wait();
    summarize(samples, total)
}

async fn through_client(
    exe: &std::path::Path,
    calls: usize,
    in_flight: usize,
) -> (Figures, Figures) {
    let transport = StdioTransport::builder(exe)
        .arg("normal")
        .env(SERVER_ENV, "1")
        .build()
        .expect("valid settings");
    let conn = Connection::with_config("bench", transport, ConnectionConfig::default());
    let client = conn.connect().await.expect("connect");
    let args = json!({"text": "hi"});

    for _ in 0..calls / 10 {
        client.call_tool("echo", args.clone()).await.expect("call");
    }
    let mut samples = Vec::with_capacity(calls);
    let started = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        client.call_tool("echo", args.clone()).await.expect("call");
        samples.push(t.elapsed());
    }
    let sequential = summarize(samples, started.elapsed());

    let per_task = calls / in_flight;
    let client = Arc::new(client);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let client = client.clone();
        let args = args.clone();
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(per_task);
            for _ in 0..per_task {
                let t = Instant::now();
                client.call_tool("echo", args.clone()).await.expect("call");
                samples.push(t.elapsed());
            }
            samples
        });
    }
    let mut all = Vec::with_capacity(calls);
    while let Some(samples) = tasks.join_next().await {
        all.extend(samples.expect("task"));
    }
    let concurrent = summarize(all, started.elapsed());
    conn.disconnect().await;
    (sequential, concurrent)
}

fn main() {
    if std::env::var_os(SERVER_ENV).is_some() {
        std::process::exit(mcp_conn_testkit::fake_server::main());
    }
    let exe = std::env::current_exe().expect("own path");
    let calls: usize = std::env::var("MCP_BENCH_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50_000);
    let in_flight = 64;

    let floor = floor(&exe, calls);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (seq, conc) = runtime.block_on(through_client(&exe, calls, in_flight));

    println!("\nstdio round trip: tools/call echo, {calls} calls each, client on one current-thread runtime");
    println!(
        "{:<34} {:>10} {:>10} {:>12} {:>10}",
        "measure", "p50 µs", "p99 µs", "calls/s", "p50/floor"
    );
    println!(
        "{:<34} {:>10.1} {:>10.1} {:>12.0} {:>10.2}",
        "raw pipe floor (no engine)",
        micros(floor.p50),
        micros(floor.p99),
        floor.per_sec,
        1.0
    );
    println!(
        "{:<34} {:>10.1} {:>10.1} {:>12.0} {:>10.2}",
        "Client, sequential",
        micros(seq.p50),
        micros(seq.p99),
        seq.per_sec,
        micros(seq.p50) / micros(floor.p50)
    );
    println!(
        "{:<34} {:>10.1} {:>10.1} {:>12.0} {:>10}",
        format!("Client, {in_flight} in flight"),
        micros(conc.p50),
        micros(conc.p99),
        conc.per_sec,
        "-"
    );
    println!(
        "\nthroughput at {in_flight} in flight / sequential rate = {:.2}x (target >= 3x); sequential p50 / floor p50 = {:.2}x (target <= 1.3x)",
        conc.per_sec / seq.per_sec,
        micros(seq.p50) / micros(floor.p50)
    );
}
