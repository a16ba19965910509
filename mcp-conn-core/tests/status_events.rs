//! The status listener sees every change, in order; the tools/list_changed
//! counter moves with the notification.

mod common;

use std::sync::{Arc, Mutex};

use mcp_conn_core::ConnectionConfig;
use mcp_conn_core::ConnectionStatus::{self, *};

#[tokio::test(start_paused = true)]
async fn the_listener_sees_each_change_in_order() {
    let seen: Arc<Mutex<Vec<(String, ConnectionStatus, ConnectionStatus)>>> = Arc::default();
    let sink = seen.clone();
    let config = ConnectionConfig {
        status_listener: Some(Arc::new(move |name: &str, from, to| {
            sink.lock().expect("lock").push((name.to_owned(), from, to));
        })),
        ..common::config()
    };
    let (conn, _t, mut server) = common::scripted(config);
    let (_client, link) = common::connect(&conn, &mut server).await;
    link.notify("notifications/tools/list_changed", None).await;
    drop(link);
    let _link = common::handshake_next(&mut server).await;
    common::wait_status(&conn, Connected).await;
    conn.disconnect().await;
    let seen = seen.lock().expect("lock").clone();
    let steps: Vec<_> = seen.iter().map(|(_, f, t)| (*f, *t)).collect();
    assert_eq!(
        steps,
        [
            (Disconnected, Connecting),
            (Connecting, Connected),
            (Connected, Reconnecting),
            (Reconnecting, Connected),
            (Connected, Disconnected)
        ]
    );
    assert!(seen.iter().all(|(n, _, _)| n == "mock"));
    assert_eq!(conn.info().metrics.tools_list_changed, 1);
}
