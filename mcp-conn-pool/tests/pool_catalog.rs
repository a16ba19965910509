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

    let conn = pool.get("s").expect("s");
    let mut notes = conn.notifications();
    notify_tx.send(()).expect("notify");
    tokio::time::timeout(Duration::from_secs(10), notes.recv())
        .await
        .expect("the notification arrived")
        .expect("a notification");
    assert_eq!(conn.info().metrics.tools_list_changed, 1);
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

/// Serves every link the pool opens: `tools/list` answers with the tools
/// the test set last; `change()` sends `tools/list_changed`.
struct ToolServer {
    /// The tools the server offers, changed by the test.
    tools: std::sync::Arc<std::sync::Mutex<serde_json::Value>>,
}

impl ToolServer {
    fn start(
        mut server: mcp_conn_core::testing::MockServer,
        tools: serde_json::Value,
    ) -> (Self, tokio::sync::mpsc::UnboundedSender<Signal>) {
        let state = std::sync::Arc::new(std::sync::Mutex::new(tools));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Signal>();
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let mut link = server.accept().await;
                link.handshake().await;
                loop {
                    tokio::select! {
                        msg = link.recv() => match msg {
                            Some(Message::Request(r)) if r.method == "tools/list" => {
                                let tools = shared.lock().map(|t| t.clone()).unwrap_or_default();
                                link.respond(r.id, json!({"tools": tools})).await;
                            }
                            Some(Message::Request(r)) if r.method == "ping" => {
                                link.respond(r.id, json!({})).await;
                            }
                            Some(_) => {}
                            None => break,
                        },
                        signal = rx.recv() => match signal {
                            Some(Signal::ListChanged) => link.notify("notifications/tools/list_changed", None).await,
                            Some(Signal::Drop) => break,
                            None => return,
                        },
                    }
                }
            }
        });
        (ToolServer { tools: state }, tx)
    }

    fn set(&self, tools: serde_json::Value) {
        if let Ok(mut t) = self.tools.lock() {
            *t = tools;
        }
    }
}

enum Signal {
    ListChanged,
    Drop,
}

async fn next_diff(
    events: &mut tokio::sync::broadcast::Receiver<mcp_conn_pool::PoolEvent>,
) -> mcp_conn_pool::ToolSetDiff {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Ok(mcp_conn_pool::PoolEvent::ToolsChanged { name, diff }) => {
                    assert_eq!(name, "s");
                    return diff;
                }
                Ok(_) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
    .expect("a ToolsChanged event")
}

#[tokio::test(start_paused = true)]
async fn tool_set_changes_are_events_after_list_changed_and_after_a_reconnect() {
    let pool = ConnectionPool::with_config(PoolConfig {
        default_connection: mcp_conn_core::ConnectionConfig {
            reconnect_jitter: 0.0,
            ..Default::default()
        },
        ..Default::default()
    });
    let (transport, server) = MockTransport::pair();
    pool.insert("s", transport).expect("added");
    let schema = json!({"type": "object"});
    let (tools, signal) = ToolServer::start(
        server,
        json!([{"name": "read", "description": "reads", "inputSchema": schema},
               {"name": "write", "description": "writes", "inputSchema": schema}]),
    );
    let mut events = pool.subscribe();
    pool.connect_all().await;
    pool.start_monitoring();
    assert_eq!(
        pool.list_tools().await.tools.len(),
        2,
        "the first list: no event"
    );

    // list_changed: a tool removed, one added, one changed.
    tools.set(
        json!([{"name": "read", "description": "reads a file", "inputSchema": schema},
                     {"name": "list", "description": "lists", "inputSchema": schema}]),
    );
    signal.send(Signal::ListChanged).expect("signal");
    let diff = next_diff(&mut events).await;
    assert_eq!(
        (diff.added, diff.removed, diff.changed),
        (
            vec!["list".to_owned()],
            vec!["write".to_owned()],
            vec!["read".to_owned()]
        )
    );

    // A reconnect to a server that now has another schema for `list`.
    tools.set(json!([{"name": "read", "description": "reads a file", "inputSchema": schema},
                     {"name": "list", "description": "lists", "inputSchema": {"type": "object", "properties": {"dir": {"type": "string"}}}}]));
    signal.send(Signal::Drop).expect("signal");
    let diff = next_diff(&mut events).await;
    assert_eq!(diff.changed, ["list"]);
    assert!(diff.added.is_empty() && diff.removed.is_empty());
    let catalog = pool.list_tools().await;
    assert_eq!(catalog.tools.len(), 2);
    pool.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn without_the_monitor_list_tools_reports_the_change() {
    let pool = ConnectionPool::new();
    let (transport, server) = MockTransport::pair();
    pool.insert("s", transport).expect("added");
    let schema = json!({"type": "object"});
    let (tools, signal) = ToolServer::start(server, json!([{"name": "a", "inputSchema": schema}]));
    let mut events = pool.subscribe();
    pool.connect_all().await;
    pool.list_tools().await;
    tools.set(json!([{"name": "a", "inputSchema": schema}, {"name": "b", "inputSchema": schema}]));
    let conn = pool.get("s").expect("s");
    let mut notes = conn.notifications();
    signal.send(Signal::ListChanged).expect("signal");
    tokio::time::timeout(Duration::from_secs(10), notes.recv())
        .await
        .expect("arrived")
        .expect("a notification");
    pool.list_tools().await;
    assert_eq!(next_diff(&mut events).await.added, ["b"]);
    pool.shutdown().await;
}

/// A list's `ttlMs` (2026-07-28) bounds how long the catalog serves it
/// from the cache; after that the next `list_tools` lists again. No timer:
/// nothing is sent while nobody asks.
#[tokio::test(start_paused = true)]
async fn a_list_ttl_expires_the_cached_list() {
    let pool = ConnectionPool::new();
    let (transport, mut server) = MockTransport::pair();
    pool.insert("s", transport).expect("added");
    let (lists_tx, mut lists) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut link = server.accept().await;
        link.handshake().await;
        let mut version = 0;
        while let Some(msg) = link.recv().await {
            if let Message::Request(r) = msg {
                if r.method == "tools/list" {
                    version += 1;
                    let _ = lists_tx.send(version);
                    link.respond(
                        r.id,
                        json!({"tools": [{"name": format!("tool_v{version}"), "inputSchema": {}}], "ttlMs": 60_000}),
                    )
                    .await;
                }
            }
        }
    });
    pool.connect_all().await;
    assert_eq!(
        pool.list_tools().await.tools[0].qualified_name,
        "s__tool_v1"
    );
    assert_eq!(lists.recv().await, Some(1));
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(
        pool.list_tools().await.tools[0].qualified_name,
        "s__tool_v1"
    );
    assert!(lists.try_recv().is_err(), "within the ttl: from the cache");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        pool.list_tools().await.tools[0].qualified_name,
        "s__tool_v2",
        "past the ttl: listed again"
    );
    assert_eq!(lists.recv().await, Some(2));
}
