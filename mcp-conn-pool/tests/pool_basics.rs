//! The pool's API: names, duplicates, lazy connects, removal, reports, shutdown.

use mcp_conn_core::testing::{FakeServer, MockTransport};
use mcp_conn_core::ConnectionStatus;
use mcp_conn_pool::{ConnectionPool, Error, PoolEvent};

fn fake() -> MockTransport {
    MockTransport::serving(FakeServer::default())
}

#[tokio::test]
async fn insert_get_names_and_duplicates() {
    let pool = ConnectionPool::new();
    assert!(pool.is_empty());
    pool.insert("b", fake()).expect("added");
    pool.insert("a", fake()).expect("added");
    assert!(matches!(pool.insert("a", fake()), Err(Error::DuplicateName { name }) if name == "a"));
    assert_eq!(pool.names(), ["a", "b"]);
    assert_eq!(pool.len(), 2);
    assert!(pool.get("a").is_some() && pool.get("zzz").is_none());
    assert!(matches!(
        pool.client("zzz").await,
        Err(Error::UnknownServer { .. })
    ));
    assert!(matches!(
        pool.remove("zzz").await,
        Err(Error::UnknownServer { .. })
    ));
}

#[tokio::test]
async fn client_connects_on_first_use_and_remove_disconnects() {
    let pool = ConnectionPool::new();
    let mut events = pool.subscribe();
    let conn = pool.insert("a", fake()).expect("added");
    assert_eq!(
        conn.status(),
        ConnectionStatus::Disconnected,
        "nothing starts on insert"
    );
    let client = pool.client("a").await.expect("connects");
    assert!(client.is_open());
    pool.remove("a").await.expect("removed");
    assert_eq!(conn.status(), ConnectionStatus::Disconnected);
    assert!(!client.is_open());
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    assert_eq!(seen.first(), Some(&PoolEvent::Added { name: "a".into() }));
    assert_eq!(seen.last(), Some(&PoolEvent::Removed { name: "a".into() }));
}

#[tokio::test]
async fn connect_all_reports_each_outcome_and_health_totals() {
    let pool = ConnectionPool::new();
    pool.insert("good", fake()).expect("added");
    let broken = fake();
    broken.script_connects([mcp_conn_core::testing::ConnectOutcome::Refuse(
        mcp_conn_core::TransportError::NotFound {
            program: "missing-server".into(),
        },
    )]);
    pool.insert("broken", broken).expect("added");
    let hung = fake();
    hung.script_connects([mcp_conn_core::testing::ConnectOutcome::Hang]);
    let config = mcp_conn_core::ConnectionConfig {
        connection_timeout: std::time::Duration::from_millis(200),
        ..Default::default()
    };
    pool.insert_with_config("slow", hung, config)
        .expect("added");
    let started = std::time::Instant::now();
    let outcomes = pool.connect_all().await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the slow one did not hold the others"
    );
    assert!(outcomes["good"].is_ok());
    assert!(outcomes["broken"]
        .as_ref()
        .is_err_and(|e| e.to_string().contains("missing-server")));
    assert!(outcomes["slow"]
        .as_ref()
        .is_err_and(mcp_conn_core::Error::is_timeout));
    let report = pool.health_report();
    assert_eq!(
        (
            report.total,
            report.connected,
            report.healthy,
            report.in_error
        ),
        (3, 1, 1, 2)
    );
    assert_eq!(
        report
            .connections
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["broken", "good", "slow"]
    );
    pool.shutdown().await;
    assert_eq!(pool.health_report().connected, 0);
}
