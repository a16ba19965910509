//! Era benchmark: the same dual-era server spoken to in each era, in one run.
//! Servers: an in-memory one (no process, no pipe: what our client costs per
//! era), the rmcp (official Rust SDK) server of `interop/rmcp-server` and the
//! official Python SDK's (both installed into `.cache/` by
//! `scripts/install-test-servers.sh`; a missing one is skipped with a
//! message), all over stdio except the first.
//!
//! Per server: the median (and p90) `echo` round trip in each era, the two
//! connections open side by side and called in turn so drift hits both
//! alike; the connect time with era detection (`Auto`) and with the
//! handshake forced; and how many requests each connect sent, which is the
//! number of round trips (a handshake-only server shows what detection costs
//! when it finds no stateless era).
//!
//! `cargo run --release -p examples --example era_bench [calls] [only]`
//! (`only`: run just the servers whose name contains it, e.g. `rmcp`)

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use mcp_conn_core::jsonrpc::Message;
use mcp_conn_core::testing::{FakeServer, MockLink, MockTransport};
use mcp_conn_core::{
    Connection, ConnectionConfig, Link, LinkTx, ProtocolEra, ProtocolPreference, Transport,
    TransportError,
};
use mcp_transport_stdio::StdioTransport;
use serde_json::json;

type Failure = Box<dyn std::error::Error>;

/// A server to measure: makes a fresh transport per connection.
struct Server {
    name: &'static str,
    make: Box<dyn Fn() -> Result<Box<dyn Transport>, Failure>>,
    /// How many connects to time per preference.
    connects: usize,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn servers() -> Vec<Server> {
    let mut out = vec![Server {
        name: "in-memory dual-era (client cost only)",
        make: Box::new(|| Ok(Box::new(in_memory_dual_era()))),
        connects: 50,
    }];
    let rmcp = root().join(".cache/bin/rmcp-interop-server");
    if rmcp.exists() {
        out.push(Server {
            name: "rmcp 3.9 server (stdio)",
            make: Box::new(move || Ok(Box::new(StdioTransport::new(&rmcp, ["stdio"])?))),
            connects: 20,
        });
    } else {
        println!("skipped: the rmcp server (run scripts/install-test-servers.sh)");
    }
    let python = root().join(".cache/venv/bin/python");
    let script = root().join("mcp-conn-testkit/python/interop_server.py");
    if python.exists() {
        out.push(Server {
            name: "Python SDK 2.3.0 server (stdio)",
            make: Box::new(move || {
                Ok(Box::new(StdioTransport::new(
                    &python,
                    [script.as_os_str(), "stdio".as_ref()],
                )?))
            }),
            connects: 5,
        });
    } else {
        println!("skipped: the Python SDK server (run scripts/install-test-servers.sh)");
    }
    out
}

/// An in-memory server that speaks both eras, answering at once.
fn in_memory_dual_era() -> MockTransport {
    let (transport, mut server) = MockTransport::pair();
    tokio::spawn(async move {
        // Ends when the transport (and with it the link sender) is dropped.
        loop {
            let link = server.accept().await;
            tokio::spawn(serve_dual_era(link));
        }
    });
    transport
}

async fn serve_dual_era(mut link: MockLink) {
    let fake = FakeServer::default();
    while let Some(msg) = link.recv().await {
        let Message::Request(req) = msg else { continue };
        if req.method == "server/discover" {
            let result = json!({
                "supportedVersions": ["2026-07-28"],
                "capabilities": {"tools": {}},
                "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "memory", "version": "1"}},
            });
            link.respond(req.id, result).await;
            continue;
        }
        match fake.answer(&req) {
            Some(Ok(result)) => link.respond(req.id, result).await,
            Some(Err(e)) => link.respond_error(req.id, e).await,
            None => {}
        }
    }
}

/// Counts the requests a transport's links send.
#[derive(Debug)]
struct Counting {
    inner: Box<dyn Transport>,
    requests: Arc<AtomicUsize>,
}

struct CountingTx {
    inner: Box<dyn LinkTx>,
    requests: Arc<AtomicUsize>,
}

impl CountingTx {
    fn count(&self, msgs: &[Message]) {
        let n = msgs
            .iter()
            .filter(|m| matches!(m, Message::Request(_)))
            .count();
        self.requests.fetch_add(n, Ordering::SeqCst);
    }
}

#[async_trait]
impl Transport for Counting {
    async fn connect(&self) -> Result<Link, TransportError> {
        let link = self.inner.connect().await?;
        Ok(Link {
            tx: Box::new(CountingTx {
                inner: link.tx,
                requests: self.requests.clone(),
            }),
            rx: link.rx,
        })
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

#[async_trait]
impl LinkTx for CountingTx {
    async fn send(&mut self, msg: &Message) -> Result<(), TransportError> {
        self.count(std::slice::from_ref(msg));
        self.inner.send(msg).await
    }

    async fn send_batch(&mut self, msgs: &[Message]) -> Result<(), TransportError> {
        self.count(msgs);
        self.inner.send_batch(msgs).await
    }

    fn try_send_now(&mut self, msg: &Message) -> bool {
        let sent = self.inner.try_send_now(msg);
        if sent {
            self.count(std::slice::from_ref(msg));
        }
        sent
    }

    async fn close(&mut self, grace: Duration) -> Result<(), TransportError> {
        self.inner.close(grace).await
    }
}

/// A connected connection, how long the connect took and how many requests
/// (round trips) it sent.
async fn connect(
    transport: Box<dyn Transport>,
    protocol: ProtocolPreference,
) -> Result<(Connection, Duration, usize), Failure> {
    let requests = Arc::new(AtomicUsize::new(0));
    let transport = Counting {
        inner: transport,
        requests: requests.clone(),
    };
    let config = ConnectionConfig {
        protocol,
        ..Default::default()
    };
    let conn = Connection::with_config("bench", transport, config);
    let started = Instant::now();
    conn.connect().await?;
    let took = started.elapsed();
    Ok((conn, took, requests.load(Ordering::SeqCst)))
}

fn quantile(v: &mut [Duration], q: f64) -> Duration {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

async fn echo_per_era(server: &Server, calls: usize) -> Result<(), Failure> {
    let (hs, _, _) = connect((server.make)()?, ProtocolPreference::Handshake).await?;
    let (st, _, _) = connect((server.make)()?, ProtocolPreference::Stateless(Vec::new())).await?;
    let (hc, sc) = (hs.client()?, st.client()?);
    assert_eq!(hc.protocol_era(), Some(ProtocolEra::Handshake));
    assert_eq!(sc.protocol_era(), Some(ProtocolEra::Stateless));
    let (mut ht, mut stt) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    let warmup = 20;
    for i in 0..calls + warmup {
        // Alternate which era goes first, so neither always follows the other.
        for era in if i % 2 == 0 { [0, 1] } else { [1, 0] } {
            let (client, times) = if era == 0 {
                (&hc, &mut ht)
            } else {
                (&sc, &mut stt)
            };
            let started = Instant::now();
            let r = client.call_tool("echo", json!({"text": "x"})).await?;
            let took = started.elapsed();
            if r.text() != "x" {
                return Err(format!("echo answered {:?}", r.text()).into());
            }
            if i >= warmup {
                times.push(took);
            }
        }
    }
    hs.disconnect().await;
    st.disconnect().await;
    println!(
        "  echo, handshake era ({}): median {}, p90 {}",
        hc.protocol_version().unwrap_or("?"),
        ms(quantile(&mut ht, 0.5)),
        ms(quantile(&mut ht, 0.9))
    );
    println!(
        "  echo, stateless era ({}): median {}, p90 {}   ({calls} calls each, interleaved)",
        sc.protocol_version().unwrap_or("?"),
        ms(quantile(&mut stt, 0.5)),
        ms(quantile(&mut stt, 0.9))
    );
    Ok(())
}

async fn connect_times(
    name: &str,
    make: &dyn Fn() -> Result<Box<dyn Transport>, Failure>,
    n: usize,
) -> Result<(), Failure> {
    let mut auto = Vec::new();
    let mut forced = Vec::new();
    let (mut auto_rt, mut forced_rt, mut era) = (0, 0, None);
    for _ in 0..n {
        let (c, t, rt) = connect(make()?, ProtocolPreference::Auto).await?;
        era = c.info().protocol_era;
        c.disconnect().await;
        auto.push(t);
        auto_rt = rt;
        let (c, t, rt) = connect(make()?, ProtocolPreference::Handshake).await?;
        c.disconnect().await;
        forced.push(t);
        forced_rt = rt;
    }
    let era = era.map_or_else(|| "?".to_owned(), |e| e.to_string());
    println!(
        "  connect ({name}), median of {n}: Auto (detected {era}) {} in {auto_rt} round trip(s); \
         Handshake forced {} in {forced_rt} round trip(s); detection costs {:+} round trip(s)",
        ms(quantile(&mut auto, 0.5)),
        ms(quantile(&mut forced, 0.5)),
        auto_rt as i64 - forced_rt as i64
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let only = std::env::args().nth(2).unwrap_or_default();
    for server in servers() {
        if !server.name.contains(only.as_str()) {
            continue;
        }
        println!("{}:", server.name);
        echo_per_era(&server, calls).await?;
        connect_times("the server", &*server.make, server.connects).await?;
    }
    if !"in-memory handshake-only".contains(only.as_str()) {
        return Ok(());
    }
    println!("in-memory handshake-only server (FakeServer, answers server/discover -32601):");
    let handshake_only = || -> Result<Box<dyn Transport>, Failure> {
        Ok(Box::new(MockTransport::serving(FakeServer::default())))
    };
    connect_times("handshake-only", &handshake_only, 50).await?;
    Ok(())
}
