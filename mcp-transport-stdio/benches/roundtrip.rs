//! Round-trip benchmark over stdio, against the fake server's echo.
//!
//! `cargo bench -p mcp-transport-stdio` (add `taskset -c 0` in front to pin
//! client and server to one CPU). One run measures:
//! 1. the floor: a raw newline-JSON `tools/call` round trip through a pipe to
//!    the same server process, blocking I/O, no MCP engine;
//! 2. the async floor: the same round trip from one tokio task, still no
//!    engine;
//! 3. sequential `tools/call echo` latency through `Client` (p50, p99);
//!
//! (these three in alternating blocks, so that drift hits them alike), and
//! 4. throughput with 64 requests in flight through one `Client`.
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

fn line(id: usize) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"hi\"}}}}}}\n"
    )
}

/// The floor: blocking writes and reads of one JSON line each, no engine.
struct Floor {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
    line: String,
    next: usize,
}

impl Floor {
    fn start(exe: &std::path::Path) -> Self {
        let mut child = Command::new(exe)
            .arg("normal")
            .env(SERVER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the server");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Floor {
            child,
            stdin,
            stdout,
            line: String::new(),
            next: 0,
        }
    }

    fn block(&mut self, n: usize, samples: &mut Vec<Duration>) {
        for _ in 0..n {
            let msg = line(self.next);
            self.next += 1;
            let t = Instant::now();
            self.stdin.write_all(msg.as_bytes()).expect("write");
            self.line.clear();
            self.stdout.read_line(&mut self.line).expect("read");
            samples.push(t.elapsed());
        }
    }

    fn stop(self) {
        let Floor {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let _ = child.wait();
    }
}

/// The async floor: the same round trip from one tokio task (non-blocking
/// pipes, the runtime's epoll), still with no engine: what any client on
/// tokio pays before doing any MCP work.
struct AsyncFloor {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::BufReader<tokio::process::ChildStdout>,
    line: String,
    next: usize,
}

impl AsyncFloor {
    fn start(exe: &std::path::Path) -> Self {
        let mut child = tokio::process::Command::new(exe)
            .arg("normal")
            .env(SERVER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the server");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = tokio::io::BufReader::new(child.stdout.take().expect("stdout"));
        AsyncFloor {
            child,
            stdin,
            stdout,
            line: String::new(),
            next: 0,
        }
    }

    async fn block(&mut self, n: usize, samples: &mut Vec<Duration>) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        for _ in 0..n {
            let msg = line(self.next);
            self.next += 1;
            let t = Instant::now();
            self.stdin.write_all(msg.as_bytes()).await.expect("write");
            self.line.clear();
            self.stdout.read_line(&mut self.line).await.expect("read");
            samples.push(t.elapsed());
        }
    }

    async fn stop(self) {
        let AsyncFloor {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let _ = child.wait().await;
    }
}

/// How many blocks the sequential measures alternate in, so that drift on
/// a shared machine hits all three alike.
const BLOCKS: usize = 20;

struct Sequential {
    floor: Figures,
    async_floor: Figures,
    client: Figures,
}

async fn measure(exe: &std::path::Path, calls: usize, in_flight: usize) -> (Sequential, Figures) {
    let transport = StdioTransport::builder(exe)
        .arg("normal")
        .env(SERVER_ENV, "1")
        .build()
        .expect("valid settings");
    let conn = Connection::with_config("bench", transport, ConnectionConfig::default());
    let client = conn.connect().await.expect("connect");
    let args = json!({"text": "hi"});
    let mut floor = Floor::start(exe);
    let mut async_floor = AsyncFloor::start(exe);

    // Warm-up.
    let warm = calls / 10;
    let mut scratch = Vec::with_capacity(warm);
    floor.block(warm, &mut scratch);
    async_floor.block(warm, &mut scratch).await;
    for _ in 0..warm {
        client.call_tool("echo", args.clone()).await.expect("call");
    }

    let per_block = calls / BLOCKS;
    let mut samples = [(); 3].map(|()| (Vec::with_capacity(calls), Duration::ZERO));
    for _ in 0..BLOCKS {
        let t = Instant::now();
        floor.block(per_block, &mut samples[0].0);
        samples[0].1 += t.elapsed();
        let t = Instant::now();
        async_floor.block(per_block, &mut samples[1].0).await;
        samples[1].1 += t.elapsed();
        let t = Instant::now();
        for _ in 0..per_block {
            let t = Instant::now();
            client.call_tool("echo", args.clone()).await.expect("call");
            samples[2].0.push(t.elapsed());
        }
        samples[2].1 += t.elapsed();
    }
    floor.stop();
    async_floor.stop().await;
    let [f, a, c] = samples.map(|(s, total)| summarize(s, total));
    let sequential = Sequential {
        floor: f,
        async_floor: a,
        client: c,
    };

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

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (sequential, conc) = runtime.block_on(measure(&exe, calls, in_flight));
    let Sequential {
        floor,
        async_floor,
        client: seq,
    } = sequential;

    println!("\nstdio round trip: tools/call echo, {calls} calls each (sequential measures in {BLOCKS} alternating blocks), client on one current-thread runtime");
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
        "tokio pipe (no engine)",
        micros(async_floor.p50),
        micros(async_floor.p99),
        async_floor.per_sec,
        micros(async_floor.p50) / micros(floor.p50)
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
        "\nthroughput at {in_flight} in flight / sequential rate = {:.2}x (target >= 3x); sequential p50 / floor p50 = {:.2}x (target <= 1.4x)",
        conc.per_sec / seq.per_sec,
        micros(seq.p50) / micros(floor.p50)
    );
}
