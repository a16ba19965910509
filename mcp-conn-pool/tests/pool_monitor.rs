//! One monitor task for the whole pool: task count, bounded probes,
//! intervals, events in order, removal during a probe, drop ends it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mcp_conn_core::jsonrpc::Message;
use mcp_conn_core::testing::{FakeServer, MockTransport};
use mcp_conn_core::ConnectionConfig;
use mcp_conn_core::ConnectionStatus::*;
use mcp_conn_pool::{ConnectionPool, PoolConfig, PoolEvent};
use serde_json::json;

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

fn every(interval_secs: u64) -> ConnectionConfig {
    ConnectionConfig {
        health_check_interval: Duration::from_secs(interval_secs),
        reconnect_jitter: 0.0,
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_thousand_connections_are_monitored_by_one_task_at_their_intervals() {
    let pool = ConnectionPool::with_config(PoolConfig {
        default_connection: every(30),
        probe_jitter: 0.1,
        ..Default::default()
    });
    let mut events = pool.subscribe();
    for i in 0..1000 {
        pool.insert(
            format!("s{i:04}"),
            MockTransport::serving(FakeServer::default()),
        )
        .expect("added");
    }
    assert!(pool.connect_all().await.values().all(Result::is_ok));
    let before = alive_tasks();
    pool.start_monitoring();
    assert_eq!(
        alive_tasks(),
        before + 1,
        "one monitor task, not one per connection"
    );

    let mut probes: HashMap<String, usize> = HashMap::new();
    let started = tokio::time::Instant::now();
    let mut max_tasks = 0;
    while started.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        max_tasks = max_tasks.max(alive_tasks());
        while let Ok(e) = events.try_recv() {
            if let PoolEvent::Probed { name, ok, .. } = e {
                assert!(ok);
                *probes.entry(name).or_default() += 1;
            }
        }
    }
    assert_eq!(max_tasks, before + 1, "probes run inside the monitor");
    assert_eq!(probes.len(), 1000, "every server was probed");
    // Every 30 s ± 10 % over 300 s: 9 to 11 probes each.
    assert!(
        probes.values().all(|n| (9..=11).contains(n)),
        "{:?}",
        probes.values().min().zip(probes.values().max())
    );
    pool.stop_monitoring().await;
    assert_eq!(alive_tasks(), before);
}

#[tokio::test(start_paused = true)]
async fn probes_are_bounded() {
    let pool = ConnectionPool::with_config(PoolConfig {
        default_connection: every(10),
        max_concurrent_probes: 3,
        probe_jitter: 0.0,
        ..Default::default()
    });
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    for i in 0..12 {
        let (transport, mut server) = MockTransport::pair();
        pool.insert(format!("s{i}"), transport).expect("added");
        let (in_flight, most) = (in_flight.clone(), most.clone());
        tokio::spawn(async move {
            let mut link = server.accept().await;
            link.handshake().await;
            while let Some(msg) = link.recv().await {
                if let Message::Request(r) = msg {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(2)).await; // a slow server
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    link.respond(r.id, json!({})).await;
                }
            }
        });
    }
    assert!(pool.connect_all().await.values().all(Result::is_ok));
    pool.start_monitoring();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        most.load(Ordering::SeqCst),
        3,
        "never more than 3 probes at once"
    );
    pool.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn status_events_arrive_in_order() {
    let transport = MockTransport::serving(FakeServer::default());
    let pool = ConnectionPool::with_config(PoolConfig {
        default_connection: every(30),
        ..Default::default()
    });
    let mut events = pool.subscribe();
    pool.insert("a", transport.clone()).expect("added");
    pool.client("a").await.expect("connects");
    transport.kill_links();
    let conn = pool.get("a").expect("a");
    tokio::time::timeout(
        Duration::from_secs(60),
        conn.wait_for_status(|s| s == Reconnecting),
    )
    .await
    .expect("lost");
    tokio::time::timeout(
        Duration::from_secs(60),
        conn.wait_for_status(|s| s == Connected),
    )
    .await
    .expect("back");
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    let change = |from, to| PoolEvent::StatusChanged {
        name: "a".into(),
        from,
        to,
    };
    assert_eq!(
        seen,
        [
            PoolEvent::Added { name: "a".into() },
            change(Disconnected, Connecting),
            change(Connecting, Connected),
            change(Connected, Reconnecting),
            change(Reconnecting, Connected),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn removal_during_a_probe_stops_that_server_only() {
    let pool = ConnectionPool::with_config(PoolConfig {
        default_connection: every(10),
        probe_jitter: 0.0,
        ..Default::default()
    });
    let (transport, mut server) = MockTransport::pair();
    pool.insert("held", transport).expect("added");
    pool.insert("other", MockTransport::serving(FakeServer::default()))
        .expect("added");
    let (link_tx, link_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut link = server.accept().await;
        link.handshake().await;
        let _ = link_tx.send(link);
    });
    assert!(pool.connect_all().await.values().all(Result::is_ok));
    let mut link = link_rx.await.expect("link");
    let mut events = pool.subscribe();
    pool.start_monitoring();
    // The probe of "held" arrives and is never answered…
    let ping = tokio::time::timeout(Duration::from_secs(30), link.recv())
        .await
        .expect("probe");
    assert!(matches!(ping, Some(Message::Request(r)) if r.method == "ping"));
    // …and the server is removed while it hangs.
    pool.remove("held").await.expect("removed");
    tokio::time::sleep(Duration::from_secs(100)).await;
    let mut probed: HashMap<String, usize> = HashMap::new();
    while let Ok(e) = events.try_recv() {
        if let PoolEvent::Probed { name, .. } = e {
            *probed.entry(name).or_default() += 1;
        }
    }
    assert_eq!(
        probed.get("held"),
        None,
        "no result and no next probe for a removed server"
    );
    assert!(probed.get("other").copied().unwrap_or(0) >= 9, "{probed:?}");
    assert!(pool.is_monitoring());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_pool_ends_the_monitor() {
    let base = alive_tasks();
    let pool = ConnectionPool::new();
    pool.start_monitoring();
    pool.start_monitoring(); // idempotent
    assert_eq!(alive_tasks(), base + 1);
    drop(pool);
    tokio::time::timeout(Duration::from_secs(10), async {
        while alive_tasks() > base {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the monitor ended");
}

/// The monitor's probes (light ones: no timer of their own, and no answer
/// to wake the monitor) still find a server that stopped answering, alone
/// in its pool: each unanswered by its deadline is a failure, and after
/// `max_consecutive_health_failures` the session is replaced.
#[tokio::test(start_paused = true)]
async fn a_server_that_stops_answering_is_found_and_replaced() {
    use mcp_conn_core::testing::PingMode;
    let pool = ConnectionPool::with_config(PoolConfig {
        default_connection: ConnectionConfig {
            health_check_timeout: Duration::from_secs(1),
            max_consecutive_health_failures: 2,
            ..every(10)
        },
        probe_jitter: 0.0,
        ..Default::default()
    });
    let hung = MockTransport::serving(FakeServer {
        ping: PingMode::Ignore,
        ..Default::default()
    });
    pool.insert("hung", hung.clone()).expect("added");
    let mut events = pool.subscribe();
    assert!(pool.connect_all().await.values().all(Result::is_ok));
    pool.start_monitoring();
    tokio::time::timeout(Duration::from_secs(120), hung.wait_for_connects(2))
        .await
        .expect("the hung server's session is replaced within two intervals and their deadlines");
    let mut failed = 0;
    while let Ok(e) = events.try_recv() {
        if let PoolEvent::Probed { ok, error, .. } = e {
            assert!(
                !ok && error.is_some(),
                "a ping nobody answers cannot succeed"
            );
            failed += 1;
        }
    }
    assert!(failed >= 2, "{failed} failed probes");
    pool.shutdown().await;
}
