//! The link dies with requests pending: every one fails at once with the
//! same typed error that says why.

mod common;

use mcp_conn_core::{ConnectionStatus, Error, TransportError};
use serde_json::json;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn link_death_fails_all_100_pending_requests_at_once() {
    let (conn, _transport, mut server) = common::scripted(common::config());
    let (client, mut link) = common::connect(&conn, &mut server).await;

    let calls: Vec<_> = (0..100)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .call_tool("echo", json!({ "text": i.to_string() }))
                    .await
            })
        })
        .collect();
    for _ in 0..100 {
        common::within("request", link.expect_method("tools/call")).await;
    }

    let died = Instant::now();
    link.fail(TransportError::Exited {
        status: "status 1".into(),
        stderr_tail: vec!["panic: out of memory".into()],
    })
    .await;
    for call in calls {
        let err = common::within("failure", call)
            .await
            .expect("task")
            .expect_err("must fail");
        match &err {
            Error::ConnectionLost {
                connection,
                reason:
                    TransportError::Exited {
                        status,
                        stderr_tail,
                    },
            } => {
                assert_eq!(&**connection, "mock");
                assert_eq!(status, "status 1");
                assert_eq!(stderr_tail, &["panic: out of memory"]);
            }
            other => panic!("unexpected error: {other}"),
        }
        assert!(err.is_retryable());
        assert!(err.to_string().contains("panic: out of memory"), "{err}");
    }
    assert_eq!(Instant::now(), died, "all failed without any timer firing");
    assert_eq!(conn.info().metrics.requests_failed, 100);

    // New calls on the dead session fail at once too.
    assert!(matches!(
        client.ping().await,
        Err(Error::ConnectionLost { .. })
    ));
    assert_ne!(conn.status(), ConnectionStatus::Connected);
}

#[tokio::test(start_paused = true)]
async fn an_orderly_eof_is_reported_as_such() {
    let (conn, _transport, mut server) = common::scripted(common::config());
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.ping().await }
    });
    common::within("ping", link.expect_method("ping")).await;
    drop(link);
    let err = common::within("failure", call)
        .await
        .expect("task")
        .expect_err("fails");
    assert!(
        matches!(
            err,
            Error::ConnectionLost {
                reason: TransportError::Eof,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_the_transport_fails_alone_leaves_the_others_and_the_link() {
    let (conn, _transport, mut server) = common::scripted(common::config());
    let (client, mut link) = common::connect(&conn, &mut server).await;
    let (a, b) = (client.clone(), client.clone());
    let first = tokio::spawn(async move { a.call_tool("echo", json!({"text": "a"})).await });
    let first_req = common::within("first", link.expect_method("tools/call")).await;
    let second = tokio::spawn(async move { b.call_tool("echo", json!({"text": "b"})).await });
    let second_req = common::within("second", link.expect_method("tools/call")).await;

    link.fail_request(
        first_req.id,
        TransportError::MessageTooLarge {
            size: 20 << 20,
            limit: 16 << 20,
        },
    )
    .await;
    link.respond(
        second_req.id,
        json!({"content": [{"type": "text", "text": "b"}]}),
    )
    .await;
    match common::within("first fails", first).await.expect("task") {
        Err(Error::Transport { method, source, .. }) => {
            assert_eq!(method, "tools/call");
            assert!(matches!(source, TransportError::MessageTooLarge { .. }));
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
    let ok = common::within("second", second).await.expect("task");
    assert_eq!(ok.expect("second succeeds").text(), "b");
    assert_eq!(conn.status(), ConnectionStatus::Connected);
    assert!(client.is_open());
}
