//! Safe replay after reconnect: a request safe to repeat whose link died
//! before its answer is sent once more on the new link, when the
//! connection opted in; every other request fails with `ConnectionLost`.

mod common;

use std::time::Duration;

use mcp_conn_core::testing::{MockLink, MockServer};
use mcp_conn_core::{Connection, ConnectionConfig, Error, RequestOptions};
use serde_json::json;

use common::{handshake_next, within};

fn config(replay: bool) -> ConnectionConfig {
    ConnectionConfig {
        replay_after_reconnect: replay,
        reconnect_delay: Duration::from_millis(10),
        ..common::config()
    }
}

/// Answers `tools/list` with a tool `safe` (read-only), `same` (idempotent)
/// and `risky` (no hints).
async fn list(conn: &Connection, link: &mut MockLink) {
    let (tools, ()) = tokio::join!(conn.list_tools(), async {
        let req = link.expect_method("tools/list").await;
        link.respond(
            req.id,
            json!({"tools": [
                {"name": "safe", "inputSchema": {}, "annotations": {"readOnlyHint": true}},
                {"name": "same", "inputSchema": {}, "annotations": {"idempotentHint": true, "readOnlyHint": false}},
                {"name": "risky", "inputSchema": {}, "annotations": {"destructiveHint": true}},
            ]}),
        )
        .await;
    });
    assert_eq!(tools.expect("tools").len(), 3);
}

/// The server receives `method`, then dies before answering; the
/// connection reconnects to a new link, which is returned.
async fn die_during(method: &str, mut link: MockLink, server: &mut MockServer) -> MockLink {
    link.expect_method(method).await;
    drop(link);
    handshake_next(server).await
}

/// Pings through `link` and returns the method of the first request the
/// server saw: a lost request sent again would come before the ping.
async fn first_after(conn: &Connection, link: &mut MockLink) -> String {
    let (ping, method) = tokio::join!(conn.ping(), async {
        let req = link.expect_request().await;
        let method = req.method.clone();
        if method == "ping" {
            link.respond(req.id, json!({})).await;
        }
        method
    });
    if method == "ping" {
        ping.expect("pong");
    }
    method
}

#[tokio::test(start_paused = true)]
async fn a_list_is_sent_again_on_the_new_link_and_answered() {
    let (conn, _t, mut server) = common::scripted(config(true));
    let (_client, link) = common::connect(&conn, &mut server).await;
    let (tools, ()) = within("replayed", async {
        tokio::join!(conn.list_tools(), async {
            let mut link = die_during("tools/list", link, &mut server).await;
            let again = link.expect_method("tools/list").await;
            link.respond(again.id, json!({"tools": []})).await;
        })
    })
    .await;
    assert_eq!(tools.expect("the replay answered").len(), 0);
    assert_eq!(conn.info().metrics.reconnects, 1);
}

#[tokio::test(start_paused = true)]
async fn without_the_setting_nothing_is_replayed() {
    let (conn, _t, mut server) = common::scripted(config(false));
    let (_client, link) = common::connect(&conn, &mut server).await;
    let (tools, mut link) = within("lost", async {
        tokio::join!(
            conn.list_tools(),
            die_during("tools/list", link, &mut server)
        )
    })
    .await;
    assert!(
        matches!(tools, Err(Error::ConnectionLost { .. })),
        "{tools:?}"
    );
    assert_eq!(
        first_after(&conn, &mut link).await,
        "ping",
        "the lost list never came again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_tool_call_is_replayed_only_when_safe() {
    let (conn, _t, mut server) = common::scripted(config(true));
    let (_client, mut link) = common::connect(&conn, &mut server).await;
    list(&conn, &mut link).await;

    // No hints: fails as without replay, and is not sent again.
    let (result, mut link) = within("risky", async {
        tokio::join!(
            conn.call_tool("risky", json!({})),
            die_during("tools/call", link, &mut server)
        )
    })
    .await;
    assert!(
        matches!(result, Err(Error::ConnectionLost { .. })),
        "{result:?}"
    );
    assert_eq!(
        first_after(&conn, &mut link).await,
        "ping",
        "not sent again"
    );

    // Read-only or idempotent by annotation, or marked by the caller: sent
    // again once, and the caller sees one answer.
    for (tool, opts) in [
        ("safe", RequestOptions::new()),
        ("same", RequestOptions::new()),
        ("risky", RequestOptions::new().idempotent()),
    ] {
        let (result, next) = within(tool, async {
            tokio::join!(conn.call_tool_with(tool, json!({}), &opts), async {
                let mut next = die_during("tools/call", link, &mut server).await;
                let again = next.expect_method("tools/call").await;
                assert_eq!(
                    again.params.as_ref().map(|p| p["name"].clone()),
                    Some(json!(tool))
                );
                next.respond(
                    again.id,
                    json!({"content": [{"type": "text", "text": tool}]}),
                )
                .await;
                next
            })
        })
        .await;
        assert_eq!(result.expect("replayed").text(), tool);
        link = next;
    }
    drop(link);
}

#[tokio::test(start_paused = true)]
async fn a_request_is_replayed_once_at_most() {
    let (conn, _t, mut server) = common::scripted(config(true));
    let (_client, link) = common::connect(&conn, &mut server).await;
    let (tools, _link) = within("twice lost", async {
        tokio::join!(conn.list_tools(), async {
            let link = die_during("tools/list", link, &mut server).await;
            die_during("tools/list", link, &mut server).await
        })
    })
    .await;
    assert!(
        matches!(tools, Err(Error::ConnectionLost { .. })),
        "{tools:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn no_replay_when_the_connection_gives_up() {
    let config = ConnectionConfig {
        auto_reconnect: false,
        ..config(true)
    };
    let (conn, _t, mut server) = common::scripted(config);
    let (_client, mut link) = common::connect(&conn, &mut server).await;
    let (tools, ()) = within("lost", async {
        tokio::join!(conn.list_tools(), async {
            link.expect_method("tools/list").await;
            drop(link);
        })
    })
    .await;
    assert!(
        matches!(tools, Err(Error::ConnectionLost { .. })),
        "{tools:?}"
    );
}
