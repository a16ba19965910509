//! The tool catalog: qualified names, routing, collisions, caching and
//! refresh after tools/list_changed.

use std::time::Duration;

use mcp_conn_core::jsonrpc::Message;
use mcp_conn_core::testing::{FakeServer, MockTransport};
use mcp_conn_pool::{ConnectionPool, Error, PoolConfig};
use serde_json::json;

#[tokio::test]
async fn tools_are_qualified_and_calls_routed() {
    let pool = ConnectionPool::new();
    pool.insert("alpha", MockTransport::serving(FakeServer::default()))
        .expect("added");
    pool.insert("beta", MockTransport::serving(FakeServer::default()))
        .expect("added");
    pool.connect_all().await;
    let catalog = pool.list_tools().await;
    let names: Vec<&str> = catalog
        .tools
        .iter()
        .map(|t| t.qualified_name.as_str())
        .collect();
    assert_eq!(
        names,
        ["alpha__add", "alpha__echo", "beta__add", "beta__echo"]
    );
    assert!(catalog.collisions.is_empty() && catalog.failed.is_empty());
    assert_eq!(
        pool.call_tool("beta__add", json!({"a": 40, "b": 2}))
            .await
            .expect("routed")
            .text(),
        "42"
    );
    assert_eq!(
        pool.call_tool_on("alpha", "echo", json!({"text": "hi"}))
            .await
            .expect("called")
            .text(),
        "hi"
    );
    assert!(matches!(
        pool.call_tool("gamma__echo", json!({})).await,
        Err(Error::UnknownTool { .. })
    ));
}

#[tokio::test]
async fn the_separator_is_configurable_and_collisions_follow_one_rule() {
    let pool = ConnectionPool::with_config(PoolConfig {
        tool_separator: ".".into(),
        ..Default::default()
    });
    let tools = |names: &[&str]| FakeServer {
        tools: Some(
            names
                .iter()
                .map(|n| json!({"name": n, "inputSchema": {}}))
                .collect(),
        ),
        ..Default::default()
    };
    // "a" + "b.echo" and "a.b" + "echo" both make "a.b.echo".
    pool.insert("a.b", MockTransport::serving(tools(&["echo"])))
        .expect("added");
    pool.insert("a", MockTransport::serving(tools(&["b.echo", "add"])))
        .expect("added");
    pool.connect_all().await;
    let catalog = pool.list_tools().await;
    let names: Vec<&str> = catalog
        .tools
        .iter()
        .map(|t| t.qualified_name.as_str())
        .collect();
    assert_eq!(names, ["a.add", "a.b.echo"]);
    let winner = catalog
        .tools
        .iter()
        .find(|t| t.qualified_name == "a.b.echo")
        .expect("kept");
    assert_eq!(
        winner.server, "a",
        "the server whose name sorts first keeps the name"
    );
    assert_eq!(catalog.collisions.len(), 1);
    assert_eq!(
        (
            catalog.collisions[0].dropped.as_str(),
            catalog.collisions[0].tool.as_str()
        ),
        ("a.b", "echo")
    );
}

#[tokio::test(start_paused = true)]
async fn lists_are_cached_and_refreshed_after_list_changed() {
    let pool = ConnectionPool::new();
    let (transport, mut server) = MockTransport::pair();
    pool.insert("s", transport).expect("added");
    let (lists_tx, mut lists) = tokio::sync::mpsc::unbounded_channel();
    let (notify_tx, mut notify) = tokio::sync::mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        let mut link = server.accept().await;
        link.handshake().await;
        let mut version = 0;
        loop {
            tokio::select! {
                msg = link.recv() => match msg {
                    Some(Message::Request(r)) if r.method == "tools/list" => {
                        version += 1;
                        let _ = lists_tx.send(version);
                        link.respond(r.id, json!({"tools": [{"name": format!("tool_v{version}"), "inputSchema": {}}]})).await;
                    }
                    Some(_) => {}
                    None => return,
                },
                Some(()) = notify.recv() => link.notify("notifications/tools/list_changed", None).await,
            }
        }
    });
    pool.connect_all().await;
    let first = pool.list_tools().await;
    assert_eq!(first.tools[0].qualified_name, "s__tool_v1");
    assert_eq!(lists.recv().await, Some(1));
    let again = pool.list_tools().await;
    assert_eq!(again.tools[0].qualified_name, "s__tool_v1");
    assert!(lists.try_recv().is_err(), "served from the cache");

    notify_tx.send(()).expect("notify");
    let conn = pool.get("s").expect("s");
    tokio::time::timeout(Duration::from_secs(10), async {
        while conn.info().metrics.tools_list_changed == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the notification arrived");
    let fresh = pool.list_tools().await;
    assert_eq!(
        fresh.tools[0].qualified_name, "s__tool_v2",
        "refreshed after list_changed"
    );
}

#[tokio::test]
async fn a_failing_server_is_reported_and_the_others_listed() {
    let pool = ConnectionPool::new();
    pool.insert("ok", MockTransport::serving(FakeServer::default()))
        .expect("added");
    let no_tools = FakeServer {
        capabilities: json!({}),
        ..Default::default()
    };
    pool.insert("bare", MockTransport::serving(no_tools))
        .expect("added");
    pool.connect_all().await;
    let catalog = pool.list_tools().await;
    assert_eq!(catalog.tools.len(), 2);
    assert_eq!(catalog.failed.len(), 1);
    assert_eq!(catalog.failed[0].0, "bare");
}
