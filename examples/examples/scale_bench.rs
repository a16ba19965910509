//! Scale benchmark (issue #15): N in-memory servers in one `ConnectionPool`.
//!
//! Prints, each beside its goal:
//! - how long `connect_all` takes for N servers;
//! - per idle connected connection, on the library's side: heap bytes (a
//!   counting global allocator: exact), resident memory (`VmRSS`: what the
//!   OS sees, allocator slack included) and tokio tasks alive;
//! - the CPU the pool monitor costs, probing every server once a second
//!   (N probes/s), as a percentage of one core, measured over a window with
//!   `/proc/self/stat` while the servers are idle.
//!
//! The servers cost nothing measurable: each link is answered inline by the
//! transport itself (a [`FakeServer`] answering in `LinkTx::send`, the reply
//! queued for `LinkRx::recv`), so there is no server task and no server
//! channel. What a link's own state costs (its queue and the two boxed
//! halves) is measured separately with N bare links and subtracted, so the
//! figures are the library's alone. With `--mock` the servers are
//! `MockTransport::serving(FakeServer)` instead (a server task and two
//! channels per link, the setup the issue measured): the totals are then
//! printed as they are, with that server side included.
//!
//! `cargo run --release -p examples --example scale_bench [N] [--mock] [--secs S] [--current-thread] [--interval-ms MS]`
//! (N defaults to 10,000; S, the CPU window, to 10; MS, the probe interval,
//! to 1,000; the runtime is tokio's multi-thread one with a worker per core
//! unless `--current-thread`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::task::AtomicWaker;
use mcp_conn_core::jsonrpc::{Message, Request, Response};
use mcp_conn_core::testing::{FakeServer, MockTransport};
use mcp_conn_core::{
    ConnectionConfig, ConnectionStatus, Inbound, Link, LinkRx, LinkTx, Transport, TransportError,
};
use mcp_conn_pool::{ConnectionPool, PoolConfig};
use parking_lot::Mutex;
use std::task::Poll;

#[global_allocator]
static GLOBAL: mcp_conn_testkit::alloc::Counting = mcp_conn_testkit::alloc::Counting;

use mcp_conn_testkit::alloc::{heap_bytes as heap, rss_bytes as rss};

/// CPU time used by the process so far (user + system), from
/// `/proc/self/stat`, in clock ticks of 1/100 s (Linux's `USER_HZ`).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses: utime is the
    // 14th field of the line, stime the 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((tick(11) + tick(12)) * 10)
}

fn tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// A server answered inside the transport: no task, no channel.
#[derive(Debug, Clone)]
struct Inline {
    server: Arc<FakeServer>,
}

struct Wire {
    replies: Mutex<Replies>,
    /// The reading half's waker: one atomic swap per reply, where a
    /// `Notify` takes a lock and keeps a list of waiters.
    ready: AtomicWaker,
    closed: AtomicBool,
}

/// What the server said, not yet read: the oldest reply in a slot of its
/// own (a link holds one at a time but for bursts, so its queue is
/// empty and allocates nothing in the steady state), the rest in order.
#[derive(Default)]
struct Replies {
    first: Option<Message>,
    more: VecDeque<Message>,
}

impl Replies {
    fn push(&mut self, msg: Message) {
        if self.first.is_none() && self.more.is_empty() {
            self.first = Some(msg);
        } else {
            self.more.push_back(msg);
        }
    }

    fn pop(&mut self) -> Option<Message> {
        if let Some(msg) = self.first.take() {
            return Some(msg);
        }
        let msg = self.more.pop_front();
        if msg.is_some() && self.more.is_empty() {
            // An idle link holds no buffer.
            self.more = VecDeque::new();
        }
        msg
    }
}

struct InlineTx {
    server: Arc<FakeServer>,
    wire: Arc<Wire>,
}

struct InlineRx {
    wire: Arc<Wire>,
}

#[async_trait]
impl Transport for Inline {
    async fn connect(&self) -> Result<Link, TransportError> {
        let wire = Arc::new(Wire {
            replies: Mutex::new(Replies::default()),
            ready: AtomicWaker::new(),
            closed: AtomicBool::new(false),
        });
        Ok(Link::new(
            InlineTx {
                server: self.server.clone(),
                wire: wire.clone(),
            },
            InlineRx { wire },
        ))
    }

    fn kind(&self) -> &'static str {
        "inline"
    }
}

fn answer(server: &FakeServer, req: &Request) -> Option<Message> {
    if req.method == "ping" {
        // Parsed once: the server's share of a probe is as small as can be.
        static EMPTY: std::sync::OnceLock<Option<Box<serde_json::value::RawValue>>> =
            std::sync::OnceLock::new();
        let empty = EMPTY
            .get_or_init(|| serde_json::value::RawValue::from_string("{}".into()).ok())
            .clone()?;
        return Some(Message::Response(Response {
            id: Some(req.id.clone()),
            payload: mcp_conn_core::jsonrpc::ResponsePayload::Result(empty),
        }));
    }
    let resp = match server.answer(req)? {
        Ok(result) => Response::result(req.id.clone(), &result).ok()?,
        Err(e) => Response::error(Some(req.id.clone()), e),
    };
    Some(Message::Response(resp))
}

impl InlineTx {
    fn answer_now(&self, msg: &Message) {
        if let Message::Request(req) = msg {
            if let Some(reply) = answer(&self.server, req) {
                self.wire.replies.lock().push(reply);
                self.wire.ready.wake();
            }
        }
    }
}

#[async_trait]
impl LinkTx for InlineTx {
    async fn send(&mut self, msg: &Message) -> Result<(), TransportError> {
        self.answer_now(msg);
        Ok(())
    }

    fn try_send_now(&mut self, msg: &Message) -> bool {
        if self.wire.closed.load(Ordering::SeqCst) {
            return false;
        }
        self.answer_now(msg);
        true
    }

    async fn close(&mut self, _grace: Duration) -> Result<(), TransportError> {
        self.wire.closed.store(true, Ordering::SeqCst);
        self.wire.ready.wake();
        Ok(())
    }
}

#[async_trait]
impl LinkRx for InlineRx {
    async fn recv(&mut self) -> Result<Option<Inbound>, TransportError> {
        let wire = &self.wire;
        let next = || match wire.replies.lock().pop() {
            Some(msg) => Some(Ok(Some(msg.into()))),
            None if wire.closed.load(Ordering::SeqCst) => Some(Ok(None)),
            None => None,
        };
        std::future::poll_fn(|cx| {
            if let Some(got) = next() {
                return Poll::Ready(got);
            }
            // Registered, then looked at again: a reply pushed in between
            // is not missed.
            wire.ready.register(cx.waker());
            next().map_or(Poll::Pending, Poll::Ready)
        })
        .await
    }
}

struct Args {
    n: usize,
    mock: bool,
    secs: u64,
    current_thread: bool,
    /// The probe interval: N servers probed N x 1000 / interval_ms times a
    /// second (a smaller N at a shorter interval keeps the rate with less
    /// memory to touch).
    interval_ms: u64,
    /// `PoolConfig::max_concurrent_probes` (the default unless given).
    max_probes: Option<usize>,
}

fn args() -> Args {
    let mut out = Args {
        n: 10_000,
        mock: false,
        secs: 10,
        current_thread: false,
        interval_ms: 1000,
        max_probes: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--mock" => out.mock = true,
            "--current-thread" => out.current_thread = true,
            "--secs" => out.secs = it.next().and_then(|s| s.parse().ok()).unwrap_or(10),
            "--interval-ms" => {
                out.interval_ms = it.next().and_then(|s| s.parse().ok()).unwrap_or(1000)
            }
            "--max-probes" => out.max_probes = it.next().and_then(|s| s.parse().ok()),
            n => out.n = n.replace('_', "").parse().unwrap_or(out.n),
        }
    }
    out
}

fn transport(mock: bool, server: &Arc<FakeServer>) -> Box<dyn Transport> {
    if mock {
        Box::new(MockTransport::serving(FakeServer::clone(server)))
    } else {
        Box::new(Inline {
            server: server.clone(),
        })
    }
}

/// Lets the runtime finish what is under way (tasks ending, links closing).
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "OVER"
    }
}

fn main() {
    let args = args();
    let runtime = if args.current_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    match runtime {
        Ok(runtime) => runtime.block_on(bench(args)),
        Err(e) => println!("no runtime: {e}"),
    }
}

async fn bench(
    Args {
        n,
        mock,
        secs,
        interval_ms,
        max_probes,
        ..
    }: Args,
) {
    let server_side = if mock {
        "MockTransport::serving(FakeServer): server task + channels included"
    } else {
        "inline FakeServer: no server task; link state measured and subtracted"
    };
    println!("scale_bench: {n} in-memory servers in one pool ({server_side})");
    println!(
        "runtime: {} worker threads",
        tokio::runtime::Handle::current().metrics().num_workers()
    );

    let server = Arc::new(FakeServer::default());
    // What a bare link costs (the server's share), with no connection.
    let link_bytes = if mock {
        0.0
    } else {
        let t = transport(false, &server);
        let before = heap();
        let mut links = Vec::with_capacity(n);
        let vec_bytes = heap() - before;
        for _ in 0..n {
            match t.connect().await {
                Ok(link) => links.push(link),
                Err(e) => {
                    println!("a bare link failed: {e}");
                    return;
                }
            }
        }
        let per = (heap() - before - vec_bytes) as f64 / n as f64;
        drop(links);
        per
    };

    let config = PoolConfig {
        default_connection: ConnectionConfig {
            health_check_interval: Duration::from_millis(interval_ms.max(1)),
            ..Default::default()
        },
        max_concurrent_probes: max_probes.unwrap_or(PoolConfig::default().max_concurrent_probes),
        ..Default::default()
    };
    let pool = ConnectionPool::with_config(config);
    let transports: Vec<Box<dyn Transport>> = (0..n).map(|_| transport(mock, &server)).collect();
    settle().await;
    let (heap0, rss0, tasks0) = (heap(), rss(), tasks());
    for (i, t) in transports.into_iter().enumerate() {
        if let Err(e) = pool.insert(format!("server-{i:05}"), t) {
            println!("insert failed: {e}");
            return;
        }
    }

    let heap_inserted = heap();
    let started = Instant::now();
    let outcomes = pool.connect_all().await;
    let connect_time = started.elapsed();
    let failed = outcomes.values().filter(|o| o.is_err()).count();
    drop(outcomes);
    if failed > 0 {
        println!("{failed} of {n} servers did not connect");
    }
    settle().await;
    let connected = pool
        .names()
        .iter()
        .filter_map(|name| pool.get(name))
        .filter(|c| c.status() == ConnectionStatus::Connected)
        .count();
    let (heap1, rss1, tasks1) = (heap(), rss(), tasks());

    let per_heap = (heap1 - heap0) as f64 / n as f64;
    let ours = per_heap - link_bytes;
    let per_rss = (rss1 - rss0) as f64 / n as f64;
    let per_task = (tasks1 - tasks0) as f64 / n as f64;
    println!("connected: {connected} of {n}");
    println!(
        "  of which: {:.0} B per server inserted (not connected), {:.0} B more once connected",
        (heap_inserted - heap0) as f64 / n as f64,
        (heap1 - heap_inserted) as f64 / n as f64
    );
    println!(
        "connect_all: {:>8.3} s                 goal < 0.5 s     {}",
        connect_time.as_secs_f64(),
        verdict(connect_time < Duration::from_millis(500))
    );
    if mock {
        println!(
            "heap per connection:   {:>8.0} B (server side included)",
            per_heap
        );
    } else {
        println!(
            "heap per connection:   {:>8.0} B  ({per_heap:.0} B - {link_bytes:.0} B per bare link)   goal <= 8192 B   {}",
            ours,
            verdict(ours <= 8192.0)
        );
    }
    println!(
        "RSS per connection:    {:>8.0} B  (allocator slack included)",
        per_rss
    );
    println!(
        "tasks per connection:  {:>8.2}     ({tasks0} -> {tasks1})           goal <= 2        {}",
        per_task,
        verdict(per_task <= 2.0)
    );

    // For comparison: the same number of bare pings, sent by one task in
    // steps of 1 ms (the request round trip alone, no monitor).
    let clients: Vec<_> = pool
        .names()
        .iter()
        .filter_map(|name| pool.get(name))
        .filter_map(|c| c.client().ok())
        .collect();
    if !clients.is_empty() {
        let per_ms = (n / interval_ms.max(1) as usize).max(1);
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let (cpu0, wall0) = (cpu_time(), Instant::now());
        let mut sent = 0u64;
        let mut next = 0usize;
        while wall0.elapsed() < Duration::from_secs(secs.min(5)) {
            tick.tick().await;
            let batch = (0..per_ms).map(|i| clients[(next + i) % clients.len()].ping());
            let answered = futures_util::future::join_all(batch).await;
            sent += answered.iter().filter(|a| a.is_ok()).count() as u64;
            next = (next + per_ms) % clients.len();
        }
        let (cpu1, wall) = (cpu_time(), wall0.elapsed());
        println!(
            "bare pings: {:>8.0} /s at {:.1} % of a core ({:.1} us each): the round trip, for comparison",
            sent as f64 / wall.as_secs_f64(),
            (cpu1 - cpu0).as_secs_f64() / wall.as_secs_f64() * 100.0,
            (cpu1 - cpu0).as_secs_f64() * 1e6 / sent.max(1) as f64
        );
    }
    drop(clients);

    // The monitor: every server probed once a second.
    let probes = |pool: &ConnectionPool| -> u64 {
        pool.names()
            .iter()
            .filter_map(|name| pool.get(name))
            .map(|c| c.info().metrics.requests_ok)
            .sum()
    };
    pool.start_monitoring();
    // One interval (and its jitter) to reach the steady state.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tasks_monitoring = tasks();
    let p0 = probes(&pool);
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (cpu1, wall1) = (cpu_time(), Instant::now());
    let p1 = probes(&pool);
    let wall = wall1 - wall0;
    let cpu = (cpu1 - cpu0).as_secs_f64() / wall.as_secs_f64() * 100.0;
    let rate = (p1 - p0) as f64 / wall.as_secs_f64();
    println!(
        "monitor: {rate:>8.0} probes/s over {:.1} s (tasks while monitoring: {tasks_monitoring})",
        wall.as_secs_f64()
    );
    println!(
        "monitor CPU:           {cpu:>8.1} % of a core              goal <= 5 %      {}",
        verdict(cpu <= 5.0)
    );
    if rate > 0.0 {
        println!(
            "CPU per probe:         {:>8.1} us",
            (cpu1 - cpu0).as_secs_f64() * 1e6 / (p1 - p0) as f64
        );
    }
    let health = pool.health_report();
    println!(
        "after: {} connected, {} healthy of {}",
        health.connected, health.healthy, health.total
    );
    pool.shutdown().await;
}
