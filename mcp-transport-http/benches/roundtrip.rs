//! Round-trip benchmark over Streamable HTTP, against the rmcp interop server
//! (`interop/rmcp-server`, built into `.cache/bin` by
//! `scripts/install-test-servers.sh`; the bench says so and stops when it is
//! missing; `MCP_BENCH_RMCP` names another binary).
//!
//! `cargo bench -p mcp-transport-http --bench roundtrip` (`MCP_BENCH_CALLS`
//! sets the calls per measure, 20,000 by default). For each reply mode:
//! - SSE replies, handshake era (`initialize`, a session);
//! - SSE replies, stateless era (2026-07-28);
//! - JSON replies, stateless era (the server started with `--json`),
//!
//! one run measures, side by side:
//! 1. the floor: a bare hyper client (hyper-util's pooled client, keep-alive,
//!    `TCP_NODELAY` as ours) POSTing the very bytes and headers our client
//!    sends for a `tools/call echo` and reading the reply to its end;
//! 2. `Client::call_tool("echo", ..)` over `HttpTransport`.
//!
//! Each is measured sequentially (p50, p90, p99) and with 64 calls in
//! flight (calls/s), each in alternating blocks (floor, ours, ours, floor,
//! …) so that drift on a shared machine hits both alike. With 64 in flight
//! the server process's CPU per call is printed too: there, the server is
//! what sets the pace.
//! The client side runs on one current-thread tokio runtime; the server is
//! rmcp on its own current-thread runtime, in its own process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use mcp_conn_core::jsonrpc::Message;
use mcp_conn_core::{
    Client, Connection, ConnectionConfig, Link, LinkTx, ProtocolPreference, Transport,
    TransportError,
};
use mcp_transport_http::HttpTransport;
use serde_json::json;

type Failure = Box<dyn std::error::Error + Send + Sync>;
type Bare = HyperClient<HttpConnector, Full<Bytes>>;

const IN_FLIGHT: usize = 64;
/// Blocks the sequential calls are split into, alternating floor and ours.
const BLOCKS: usize = 20;
/// Blocks the calls with 64 in flight are split into (each side's), also
/// alternating; even, so that each side goes first as often.
const IN_FLIGHT_BLOCKS: usize = 6;
/// What the floor's headers and body must reproduce of ours.
const SENTINEL_ID: i64 = 987_654_321;

/// The rmcp server, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(bin: &PathBuf, json: bool) -> Result<Server, Failure> {
    let mut cmd = Command::new(bin);
    cmd.args(["http", "0"]);
    if json {
        cmd.arg("--json");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().ok_or("the server said nothing")??;
    let addr = first
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected first line: {first}"))?
        .parse()?;
    // Keep draining stderr so that the server never blocks on it.
    std::thread::spawn(move || lines.for_each(drop));
    Ok(Server { child, addr })
}

/// Records what a link sends (used once, to capture our exact messages).
#[derive(Debug)]
struct Recording {
    inner: HttpTransport,
    sent: Arc<Mutex<Vec<Message>>>,
}

struct RecordingTx {
    inner: Box<dyn LinkTx>,
    sent: Arc<Mutex<Vec<Message>>>,
}

#[async_trait]
impl Transport for Recording {
    async fn connect(&self) -> Result<Link, TransportError> {
        let link = self.inner.connect().await?;
        Ok(Link {
            tx: Box::new(RecordingTx {
                inner: link.tx,
                sent: self.sent.clone(),
            }),
            rx: link.rx,
        })
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

#[async_trait]
impl LinkTx for RecordingTx {
    async fn send(&mut self, msg: &Message) -> Result<(), TransportError> {
        self.sent.lock().expect("lock").push(msg.clone());
        self.inner.send(msg).await
    }

    async fn close(&mut self, grace: Duration) -> Result<(), TransportError> {
        self.inner.close(grace).await
    }
}

/// One reply mode to measure.
struct Mode {
    name: &'static str,
    json_server: bool,
    protocol: ProtocolPreference,
}

fn modes() -> Vec<Mode> {
    vec![
        Mode {
            name: "SSE replies, handshake era",
            json_server: false,
            protocol: ProtocolPreference::Handshake,
        },
        Mode {
            name: "SSE replies, stateless era",
            json_server: false,
            protocol: ProtocolPreference::Stateless(Vec::new()),
        },
        Mode {
            name: "JSON replies, stateless era",
            json_server: true,
            protocol: ProtocolPreference::Stateless(Vec::new()),
        },
    ]
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}/mcp")
}

fn transport(addr: SocketAddr) -> Result<HttpTransport, Failure> {
    Ok(HttpTransport::builder(url(addr)).disable_proxy().build()?)
}

fn config(protocol: ProtocolPreference) -> ConnectionConfig {
    ConnectionConfig {
        protocol,
        max_in_flight: Some(IN_FLIGHT * 2),
        ..Default::default()
    }
}

/// What the floor sends: our `tools/call` with any id, and its headers.
struct Script {
    url: http::Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The body split around the id.
    before_id: Vec<u8>,
    after_id: Vec<u8>,
}

impl Script {
    fn body(&self, id: u64) -> Bytes {
        let mut body = Vec::with_capacity(self.before_id.len() + self.after_id.len() + 20);
        body.extend_from_slice(&self.before_id);
        body.extend_from_slice(id.to_string().as_bytes());
        body.extend_from_slice(&self.after_id);
        Bytes::from(body)
    }

    fn request(&self, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::post(self.url.clone());
        if let Some(h) = req.headers_mut() {
            for (name, value) in &self.headers {
                h.insert(name.clone(), value.clone());
            }
        }
        req.body(Full::new(body)).expect("a valid request")
    }
}

fn header(name: &'static str, value: &str) -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static(name),
        HeaderValue::from_str(value).expect("a valid header value"),
    )
}

/// Captures the messages our client sends for one mode (connect and one
/// `echo`), then prepares the floor: the same body and headers, and, in the
/// handshake era, a session of its own opened with our `initialize`.
async fn prepare_floor(bare: &Bare, addr: SocketAddr, mode: &Mode) -> Result<Script, Failure> {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let recording = Recording {
        inner: transport(addr)?,
        sent: sent.clone(),
    };
    let conn = Connection::with_config("capture", recording, config(mode.protocol.clone()));
    let client = conn.connect().await?;
    client.call_tool("echo", json!({"text": "hi"})).await?;
    let version = client.protocol_version().ok_or("no version")?.to_owned();
    conn.disconnect().await;
    let sent = std::mem::take(&mut *sent.lock().expect("lock"));
    let find = |method: &str| {
        sent.iter()
            .find(|m| m.method() == Some(method))
            .cloned()
            .ok_or_else(|| format!("our client sent no {method}"))
    };
    let Message::Request(mut call) = find("tools/call")? else {
        return Err("tools/call is not a request".into());
    };
    call.id = SENTINEL_ID.into();
    let bytes = Message::Request(call).to_vec();
    let at = bytes
        .windows(SENTINEL_ID.to_string().len())
        .position(|w| w == SENTINEL_ID.to_string().as_bytes())
        .ok_or("no id in the body")?;
    let before_id = bytes[..at].to_vec();
    let after_id = bytes[at + SENTINEL_ID.to_string().len()..].to_vec();

    let url: http::Uri = url(addr).parse()?;
    let mut headers = vec![
        (
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        ),
        (CONTENT_TYPE, HeaderValue::from_static("application/json")),
    ];
    if matches!(mode.protocol, ProtocolPreference::Handshake) {
        // A session of the floor's own, opened with our `initialize`.
        let init = find("initialize")?.to_vec();
        let mut req = Request::post(url.clone());
        for (name, value) in &headers {
            req = req.header(name, value);
        }
        let resp = bare
            .request(req.body(Full::new(Bytes::from(init)))?)
            .await?;
        let session = resp
            .headers()
            .get("mcp-session-id")
            .cloned()
            .ok_or("no session id")?;
        resp.into_body().collect().await?;
        headers.push((HeaderName::from_static("mcp-session-id"), session));
        headers.push(header("mcp-protocol-version", &version));
        let initialized = find("notifications/initialized")?.to_vec();
        let mut req = Request::post(url.clone());
        for (name, value) in &headers {
            req = req.header(name, value);
        }
        let resp = bare
            .request(req.body(Full::new(Bytes::from(initialized)))?)
            .await?;
        if !resp.status().is_success() {
            return Err(format!("initialized: {}", resp.status()).into());
        }
        resp.into_body().collect().await?;
    } else {
        headers.push(header("mcp-protocol-version", &version));
        headers.push(header("mcp-method", "tools/call"));
        headers.push(header("mcp-name", "echo"));
    }
    Ok(Script {
        url,
        headers,
        before_id,
        after_id,
    })
}

/// One floor call: POST, read the reply to its end, check it.
async fn floor_call(bare: &Bare, script: &Script, id: u64) -> Result<(), Failure> {
    let resp = bare.request(script.request(script.body(id))).await?;
    if !resp.status().is_success() {
        return Err(format!("the floor got {}", resp.status()).into());
    }
    let body = resp.into_body().collect().await?.to_bytes();
    if !body.windows(4).any(|w| w == b"\"hi\"") {
        return Err(format!("unexpected reply: {}", String::from_utf8_lossy(&body)).into());
    }
    Ok(())
}

async fn our_call(client: &Client) -> Result<(), Failure> {
    let r = client.call_tool("echo", json!({"text": "hi"})).await?;
    if r.text() != "hi" {
        return Err(format!("echo answered {:?}", r.text()).into());
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Figures {
    /// CPU time of the client's thread per call (Linux), if known.
    cpu: Option<Duration>,
    /// CPU time of the server's process per call (Linux; 64 in flight).
    server_cpu: Option<Duration>,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    per_sec: f64,
}

fn summarize(mut samples: Vec<Duration>, busy: Duration) -> Figures {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Figures {
        cpu: None,
        server_cpu: None,
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        per_sec: samples.len() as f64 / busy.as_secs_f64(),
    }
}

struct Measured {
    floor: Figures,
    ours: Figures,
    floor_concurrent: Figures,
    ours_concurrent: Figures,
}

async fn measure(bin: &PathBuf, mode: &Mode, calls: usize) -> Result<Measured, Failure> {
    let server = start_server(bin, mode.json_server)?;
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let bare: Bare = HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(http);
    let script = Arc::new(prepare_floor(&bare, server.addr, mode).await?);
    let conn = Connection::with_config(
        "bench",
        transport(server.addr)?,
        config(mode.protocol.clone()),
    );
    let client = conn.connect().await?;

    let mut id = 0u64;
    for _ in 0..calls / 10 {
        id += 1;
        floor_call(&bare, &script, id).await?;
        our_call(&client).await?;
    }

    // Sequential, in alternating blocks.
    let block = calls / BLOCKS;
    let (mut floor, mut ours) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    let (mut floor_busy, mut ours_busy) = (Duration::ZERO, Duration::ZERO);
    let (mut floor_cpu, mut ours_cpu) = (Some(Duration::ZERO), Some(Duration::ZERO));
    for b in 0..BLOCKS {
        for turn in if b % 2 == 0 { [0, 1] } else { [1, 0] } {
            let cpu_before = thread_cpu();
            let started = Instant::now();
            for _ in 0..block {
                let t = Instant::now();
                if turn == 0 {
                    id += 1;
                    floor_call(&bare, &script, id).await?;
                    floor.push(t.elapsed());
                } else {
                    our_call(&client).await?;
                    ours.push(t.elapsed());
                }
            }
            let cpu = thread_cpu()
                .zip(cpu_before)
                .map(|(after, before)| after - before);
            let total = if turn == 0 {
                floor_busy += started.elapsed();
                &mut floor_cpu
            } else {
                ours_busy += started.elapsed();
                &mut ours_cpu
            };
            *total = total.zip(cpu).map(|(t, c)| t + c);
        }
    }

    // 64 in flight, in alternating blocks too (floor, ours, ours, floor,
    // …): the server's own speed drifts by ±20 % between seconds here, and
    // with 64 in flight the server is what sets the pace.
    let (mut floor_c, mut ours_c) = (Vec::new(), Vec::new());
    let (mut floor_c_busy, mut ours_c_busy) = (Duration::ZERO, Duration::ZERO);
    // CPU per call: [the client's thread, the server's process].
    let (mut floor_c_cpu, mut ours_c_cpu) = ([Duration::ZERO; 2], [Duration::ZERO; 2]);
    let per_task = calls / IN_FLIGHT / IN_FLIGHT_BLOCKS;
    for b in 0..IN_FLIGHT_BLOCKS {
        for turn in if b % 2 == 0 { [0, 1] } else { [1, 0] } {
            let before = [thread_cpu(), process_cpu(server.child.id())];
            let started = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for t in 0..IN_FLIGHT {
                let (bare, script, client) = (bare.clone(), script.clone(), client.clone());
                let first_id = id + 1 + (t * per_task) as u64;
                tasks.spawn(async move {
                    let mut samples = Vec::with_capacity(per_task);
                    for i in 0..per_task {
                        let s = Instant::now();
                        if turn == 0 {
                            floor_call(&bare, &script, first_id + i as u64).await?;
                        } else {
                            our_call(&client).await?;
                        }
                        samples.push(s.elapsed());
                    }
                    Ok::<_, Failure>(samples)
                });
            }
            id += (IN_FLIGHT * per_task) as u64;
            let mut all = Vec::with_capacity(per_task * IN_FLIGHT);
            while let Some(done) = tasks.join_next().await {
                all.extend(done??);
            }
            let busy = started.elapsed();
            let after = [thread_cpu(), process_cpu(server.child.id())];
            let (samples, total_busy, cpu) = if turn == 0 {
                (&mut floor_c, &mut floor_c_busy, &mut floor_c_cpu)
            } else {
                (&mut ours_c, &mut ours_c_busy, &mut ours_c_cpu)
            };
            samples.extend(all);
            *total_busy += busy;
            for ((total, a), b) in cpu.iter_mut().zip(after).zip(before) {
                *total += a.zip(b).map_or(Duration::ZERO, |(a, b)| a - b);
            }
        }
    }
    conn.disconnect().await;
    drop(server);
    Ok(Measured {
        floor: Figures {
            cpu: floor_cpu.map(|c| c / floor.len() as u32),
            ..summarize(floor, floor_busy)
        },
        ours: Figures {
            cpu: ours_cpu.map(|c| c / ours.len() as u32),
            ..summarize(ours, ours_busy)
        },
        floor_concurrent: in_flight(floor_c, floor_c_busy, floor_c_cpu),
        ours_concurrent: in_flight(ours_c, ours_c_busy, ours_c_cpu),
    })
}

/// The figures of the calls made with 64 in flight, with the CPU per call
/// of the client's thread and of the server's process.
fn in_flight(samples: Vec<Duration>, busy: Duration, cpu: [Duration; 2]) -> Figures {
    let per_call = |d: Duration| Some(d / samples.len().max(1) as u32);
    Figures {
        cpu: per_call(cpu[0]),
        server_cpu: per_call(cpu[1]),
        ..summarize(samples, busy)
    }
}

/// The CPU time the calling thread has run (`/proc/thread-self/schedstat`,
/// Linux), which is where the client's runtime runs every task.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// The CPU time (user and system) process `pid` has run, from
/// `/proc/<pid>/stat` (Linux; in clock ticks of 10 ms).
fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (in parentheses): utime, stime are
    // the 12th and 13th of them.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn shown(cpu: Option<Duration>) -> String {
    cpu.map_or_else(|| "-".to_owned(), |c| format!("{:.1}", micros(c)))
}

fn row(mode: &str, measure: &str, f: &Figures, ratio: f64) {
    println!(
        "{:<28} {:<26} {:>8.1} {:>8.1} {:>8.1} {:>9.0} {:>7.2} {:>8} {:>8}",
        mode,
        measure,
        micros(f.p50),
        micros(f.p90),
        micros(f.p99),
        f.per_sec,
        ratio,
        shown(f.cpu),
        shown(f.server_cpu),
    );
}

fn main() -> Result<(), Failure> {
    let bin = std::env::var_os("MCP_BENCH_RMCP").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/bin/rmcp-interop-server"),
        PathBuf::from,
    );
    if !bin.exists() {
        println!(
            "skipped: no rmcp server at {} (run scripts/install-test-servers.sh)",
            bin.display()
        );
        return Ok(());
    }
    let calls: usize = std::env::var("MCP_BENCH_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    // Each in-flight block needs a call per task; each sequential block one.
    let least = IN_FLIGHT * IN_FLIGHT_BLOCKS;
    if calls < least {
        return Err(format!("MCP_BENCH_CALLS must be at least {least}").into());
    }
    let only = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    for mode in modes() {
        if !mode.name.contains(only.as_str()) {
            continue;
        }
        let m = runtime.block_on(measure(&bin, &mode, calls))?;
        results.push((mode.name, m));
    }
    println!(
        "\nStreamable HTTP round trip: tools/call echo against the rmcp server, {calls} calls per measure, \
         client on one current-thread runtime"
    );
    println!(
        "{:<28} {:<26} {:>8} {:>8} {:>8} {:>9} {:>7} {:>8} {:>8}",
        "reply mode",
        "measure",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "calls/s",
        "/floor",
        "cpu µs",
        "srv µs"
    );
    for (name, m) in &results {
        row(name, "bare hyper floor", &m.floor, 1.0);
        row(
            name,
            "Client, sequential",
            &m.ours,
            micros(m.ours.p50) / micros(m.floor.p50),
        );
        row(name, "bare hyper, 64 in flight", &m.floor_concurrent, 1.0);
        row(
            name,
            "Client, 64 in flight",
            &m.ours_concurrent,
            m.ours_concurrent.per_sec / m.floor_concurrent.per_sec,
        );
    }
    println!(
        "\n/floor: sequential p50 over the floor's (goal <= 1.15); in flight, calls/s over the floor's (goal >= 1.00)\n\
         cpu µs: CPU time of the client's thread per call; srv µs: the server process's per call (64 in flight; 10 ms ticks)"
    );
    Ok(())
}
