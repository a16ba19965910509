//! Soak: many real stdio servers (the fake server) in one pool, a tenth of
//! them killed at random every couple of seconds, 16 callers calling all
//! the time. Memory (RSS) and open file descriptors must stay flat (the
//! curve is printed), no call may hang, and no process may be left after
//! shutdown.
//!
//! By default a short run (60 servers, 8 s) that CI runs with the tests.
//! The long run is opt-in:
//!
//! ```sh
//! MCP_CONN_SOAK_SERVERS=1000 MCP_CONN_SOAK_SECS=600 \
//!   cargo test --release -p mcp-conn-testkit --test soak -- --nocapture
//! ```
//!
//! Memory is judged by the live heap (a counting allocator: exact), not by
//! RSS, which the allocator's caching and fragmentation move; both are
//! printed.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_conn_core::ConnectionConfig;
use mcp_conn_pool::{ConnectionPool, PoolConfig};
use mcp_conn_testkit::alloc::{heap_bytes, rss_bytes, Counting};
use mcp_conn_testkit::leaks;
use mcp_transport_stdio::StdioTransport;
use serde_json::json;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_killed_at_random_under_steady_calls() {
    let servers = setting("MCP_CONN_SOAK_SERVERS", 60) as usize;
    let secs = setting("MCP_CONN_SOAK_SECS", 8);
    let dir = std::env::temp_dir().join(format!("mcp-conn-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pool = ConnectionPool::with_config(PoolConfig {
        default_connection: ConnectionConfig {
            reconnect_delay: Duration::from_millis(100),
            max_reconnect_delay: Duration::from_secs(1),
            max_reconnect_attempts: 1000,
            health_check_interval: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            close_grace: Duration::from_millis(500),
            ..Default::default()
        },
        max_concurrent_connects: 32,
        shutdown_timeout: Duration::from_secs(60),
        ..Default::default()
    });
    let pidfiles: Vec<_> = (0..servers)
        .map(|i| dir.join(format!("s{i}.pid")))
        .collect();
    for (i, pidfile) in pidfiles.iter().enumerate() {
        let transport = StdioTransport::builder(env!("CARGO_BIN_EXE_fake-mcp-server"))
            .args(["normal"])
            .env("FAKE_MCP_PIDFILE", pidfile)
            .shutdown_timeouts(Duration::from_millis(300), Duration::from_millis(300))
            .build()
            .expect("valid settings");
        pool.insert(format!("s{i}"), transport).expect("added");
    }
    let started = Instant::now();
    let connected = pool.connect_all().await;
    let failed = connected.values().filter(|r| r.is_err()).count();
    assert_eq!(failed, 0, "every server connects at first");
    pool.start_monitoring();
    println!(
        "soak: {servers} servers connected in {:?}; {secs} s of 16 callers, a tenth killed every 2 s",
        started.elapsed()
    );

    let deadline = Instant::now() + Duration::from_secs(secs);
    let (ok, failed, hung) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..16u64 {
        let (pool, ok, failed, hung) = (pool.clone(), ok.clone(), failed.clone(), hung.clone());
        callers.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(caller);
            while Instant::now() < deadline {
                let name = format!("s{}", rng.usize(..servers));
                let call = pool.call_tool_on(&name, "echo", json!({"text": "soak"}));
                match tokio::time::timeout(Duration::from_secs(30), call).await {
                    Ok(Ok(_)) => ok.fetch_add(1, Ordering::Relaxed),
                    // A server that was just killed: lost, backing off, restarting.
                    Ok(Err(_)) => failed.fetch_add(1, Ordering::Relaxed),
                    Err(_) => hung.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
    }

    // The killer, and the curve: RSS and fds every 2 s.
    let mut rng = fastrand::Rng::with_seed(7);
    let mut killed: HashSet<i32> = HashSet::new();
    let mut curve = Vec::new();
    while Instant::now() < deadline {
        for _ in 0..servers.div_ceil(10) {
            let pidfile = &pidfiles[rng.usize(..servers)];
            if let Some((pid, _)) = leaks::read_pidfile(pidfile) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .stderr(std::process::Stdio::null())
                    .status();
                killed.insert(pid);
            }
        }
        let sample = (
            started.elapsed().as_secs(),
            (heap_bytes().max(0) / 1024) as u64,
            leaks::open_fds(),
            (rss_bytes() / 1024) as u64,
        );
        println!(
            "soak: t={:>4} s  heap={:>7} KiB  fds={:>5}  rss={:>7} KiB  calls ok={} failed={} hung={}",
            sample.0,
            sample.1,
            sample.2,
            sample.3,
            ok.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
            hung.load(Ordering::Relaxed)
        );
        curve.push(sample);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    while callers.join_next().await.is_some() {}
    println!(
        "soak: {} processes killed; calls ok={} failed={} hung={}",
        killed.len(),
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        hung.load(Ordering::Relaxed)
    );
    assert_eq!(hung.load(Ordering::Relaxed), 0, "a call hung");
    assert!(ok.load(Ordering::Relaxed) > 0, "calls got through");
    // Flat: the last sample is within bounds of the first (the process
    // count is the same, so fds and memory must not grow with the kills).
    if let (Some(first), Some(last)) = (curve.first(), curve.last()) {
        assert!(
            last.2 <= first.2 + servers / 10 + 16,
            "fds grew: {first:?} -> {last:?}"
        );
        // The heap of a pool under load varies with what is in flight at
        // the instant of the sample: a quarter, plus 8 KiB per server.
        assert!(
            last.1 <= first.1 * 5 / 4 + 8 * servers as u64,
            "heap grew: {first:?} -> {last:?}"
        );
    }

    common::within("shutdown", pool.shutdown()).await;
    // No process left: neither a server nor a zombie child.
    let mut left = Vec::new();
    for pidfile in &pidfiles {
        if let Some((pid, _)) = leaks::read_pidfile(pidfile) {
            if leaks::is_alive(pid) {
                left.push(pid);
            }
        }
    }
    assert!(left.is_empty(), "servers still running: {left:?}");
    let children: Vec<i32> = leaks::my_children()
        .into_iter()
        .filter(|p| leaks::exists(*p))
        .collect();
    assert!(
        children.is_empty(),
        "child processes left (zombies included): {children:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
