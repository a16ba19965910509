//! Passive health: while real traffic succeeds, scheduled probes are
//! skipped; they resume when the server goes quiet.

mod common;

use std::time::Duration;

use mcp_conn_core::jsonrpc::Message;
use mcp_conn_core::testing::{FakeServer, MockTransport};
use mcp_conn_core::{Connection, ConnectionConfig};
use serde_json::json;

fn config() -> ConnectionConfig {
    ConnectionConfig {
        health_check_interval: Duration::from_secs(5),
        ..common::config()
    }
}

#[tokio::test(start_paused = true)]
async fn busy_connections_are_not_probed_and_quiet_ones_are() {
    let conn = Connection::with_config(
        "busy",
        MockTransport::serving(FakeServer::default()),
        config(),
    );
    let client = conn.connect().await.expect("connects");
    conn.start_monitoring().await;
    for _ in 0..60 {
        client
            .call_tool("echo", json!({"text": "x"}))
            .await
            .expect("answered");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let m = conn.info().metrics;
    assert_eq!(
        m.requests_ok, 60,
        "no probe was sent while traffic flowed: {m:?}"
    );
    assert!(m.probes_skipped >= 10, "{m:?}");
    assert_eq!(conn.health_score(), 1.0);
    // Quiet: the probes resume.
    tokio::time::sleep(Duration::from_secs(21)).await;
    let quiet = conn.info().metrics;
    assert!(quiet.requests_ok >= 63, "probes resumed: {quiet:?}");
    assert_eq!(quiet.probes_skipped, m.probes_skipped + 1, "{quiet:?}");
    conn.disconnect().await;
}

#[tokio::test(start_paused = true)]
async fn a_server_that_stops_answering_is_probed_within_an_interval() {
    let (conn, _transport, mut server) = common::scripted(ConnectionConfig {
        request_timeout: Duration::from_secs(2),
        health_check_timeout: Duration::from_secs(1),
        ..config()
    });
    let (client, mut link) = common::connect(&conn, &mut server).await;
    conn.start_monitoring().await;
    let c = client.clone();
    let call = tokio::spawn(async move { c.call_tool("echo", json!({"text": "ok"})).await });
    let req = common::within("call", link.expect_method("tools/call")).await;
    link.respond(req.id, json!({"content": []})).await;
    assert!(call.await.expect("task").is_ok());
    let answered = tokio::time::Instant::now();
    // From now on the server reads but never answers: a ping comes within
    // one interval of the last success.
    let ping = common::within("a probe", async {
        loop {
            match link.recv().await {
                Some(Message::Request(r)) if r.method == "ping" => return r,
                Some(_) => {}
                None => panic!("link closed"),
            }
        }
    })
    .await;
    assert_eq!(ping.method, "ping");
    assert!(
        answered.elapsed() <= Duration::from_secs(10),
        "{:?}",
        answered.elapsed()
    );
    conn.disconnect().await;
}
