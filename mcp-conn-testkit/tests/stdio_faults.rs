//! The stdio fault matrix: for each fault of the fake server, what the caller
//! sees, that nothing hangs, that pending requests fail rather than vanish,
//! that the connection recovers where it should, and that no process is left.

mod common;

use std::time::{Duration, Instant};

use common::{fake, within, PidFile};
use mcp_conn_core::{
    Connection, ConnectionConfig, ConnectionStatus, Error, RequestOptions, TransportError,
};
use mcp_conn_testkit::leaks;
use mcp_transport_stdio::{EnvPolicy, StdioTransport};
use nix_kill::kill9;
use serde_json::json;

mod nix_kill {
    /// SIGKILLs a process by pid, from the outside (as the OOM killer would).
    pub(super) fn kill9(pid: i32) {
        let status = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -9 {pid} failed");
    }
}

/// The exit of a server: `ConnectionLost` mid-session, `Connect` when it
/// died during the handshake.
fn exited(err: &Error) -> (&str, &[String]) {
    match err {
        Error::ConnectionLost {
            reason:
                TransportError::Exited {
                    status,
                    stderr_tail,
                },
            ..
        }
        | Error::Connect {
            source:
                TransportError::Exited {
                    status,
                    stderr_tail,
                },
            ..
        } => (status, stderr_tail),
        other => panic!("expected a lost connection with an exit status, got: {other}"),
    }
}

#[tokio::test]
async fn crash_mid_session_fails_the_request_with_status_and_stderr_then_reconnects() {
    let pids = PidFile::new();
    let conn = Connection::with_config("crashy", fake("crash-after 2", &pids), common::config());
    let client = within("connect", conn.connect()).await.expect("connects");
    let (first_pid, _) = pids.pids().await;
    for i in 0..2 {
        within(
            "call",
            client.call_tool("echo", json!({"text": i.to_string()})),
        )
        .await
        .expect("answered");
    }
    let err = within("crash", client.call_tool("echo", json!({"text": "boom"})))
        .await
        .expect_err("crashes");
    let (status, stderr) = exited(&err);
    assert_eq!(status, "status 3");
    assert!(
        stderr
            .iter()
            .any(|l| l.contains("crashing after 2 requests")),
        "{stderr:?}"
    );
    assert!(
        err.to_string()
            .contains("server exited with status 3: fake-mcp-server: crashing after 2 requests"),
        "{err}"
    );

    // It reconnects by itself to a fresh process.
    common::wait_status(&conn, ConnectionStatus::Connected).await;
    common::eventually("a new pid", || {
        leaks::read_pidfile(&pids.0).is_some_and(|(p, _)| p != first_pid)
    })
    .await;
    common::assert_dead("the crashed server", first_pid).await;
    let again = conn.client().expect("connected");
    within("call", again.call_tool("echo", json!({"text": "back"})))
        .await
        .expect("answered");
    let info = conn.info();
    assert_eq!(info.connection_count, 2);
    assert_eq!(info.metrics.reconnects, 1);
    within("disconnect", conn.disconnect()).await;
    let (last, _) = pids.pids().await;
    common::assert_dead("the last server", last).await;
}

#[tokio::test]
async fn sigkill_mid_request_is_back_within_one_backoff_step() {
    let pids = PidFile::new();
    let config = ConnectionConfig {
        reconnect_delay: Duration::from_millis(300),
        max_reconnect_delay: Duration::from_millis(300),
        ..common::config()
    };
    let conn = Connection::with_config("killed", fake("normal", &pids), config);
    let client = within("connect", conn.connect()).await.expect("connects");
    let (pid, _) = pids.pids().await;
    let call = tokio::spawn({
        let c = client.clone();
        async move { c.call_tool("sleep", json!({"ms": 10_000})).await }
    });
    let mut status = conn.subscribe();
    // Let the request reach the server, then kill it.
    within("ping", client.ping()).await.expect("pong");
    let killed = Instant::now();
    kill9(pid);
    let err = within("failure", call)
        .await
        .expect("task")
        .expect_err("fails");
    assert_eq!(exited(&err).0, "signal 9 (SIGKILL)");
    within(
        "reconnecting",
        status.wait_for(|s| *s == ConnectionStatus::Reconnecting),
    )
    .await
    .expect("status");
    within(
        "connected",
        status.wait_for(|s| *s == ConnectionStatus::Connected),
    )
    .await
    .expect("status");
    let took = killed.elapsed();
    // One backoff step (300 ms) plus a process start; far from the next step.
    assert!(
        took < Duration::from_millis(300 + 1500),
        "back after {took:?}"
    );
    within("disconnect", conn.disconnect()).await;
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_and_is_shut_down() {
    let pids = PidFile::new();
    let config = ConnectionConfig {
        connection_timeout: Duration::from_millis(500),
        ..common::config()
    };
    let conn = Connection::with_config("hang", fake("hang", &pids), config);
    let started = Instant::now();
    let err = within("connect", conn.connect())
        .await
        .expect_err("times out");
    assert!(
        matches!(&err, Error::Timeout { operation, .. } if operation == "connect"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(conn.status(), ConnectionStatus::Error);
    let (pid, _) = pids.pids().await;
    common::assert_dead("the hung server", pid).await;
}

#[tokio::test]
async fn a_server_answering_only_pings_times_out_calls_but_stays_healthy() {
    let pids = PidFile::new();
    let conn = Connection::with_config("pings", fake("ping-only", &pids), common::config());
    let client = within("connect", conn.connect()).await.expect("connects");
    let opts = RequestOptions::new().timeout(Duration::from_millis(300));
    let err = within("call", client.call_tool_with("echo", json!({}), &opts))
        .await
        .expect_err("times out");
    assert!(err.is_timeout(), "{err}");
    let report = within("health", conn.health_check()).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(conn.status(), ConnectionStatus::Connected);
    within("disconnect", conn.disconnect()).await;
    common::assert_dead("server", pids.pids().await.0).await;
}

#[tokio::test]
async fn garbage_and_oversized_lines_are_skipped_without_harm() {
    for mode in ["garbage", "oversized 200000"] {
        let pids = PidFile::new();
        let transport = common::fake_builder(mode, &pids)
            .max_message_size(64 * 1024)
            .build()
            .expect("valid settings");
        let conn = Connection::with_config(mode, transport, common::config());
        let client = within("connect", conn.connect()).await.expect("connects");
        for i in 0..20 {
            let r = within(
                "call",
                client.call_tool("echo", json!({"text": i.to_string()})),
            )
            .await;
            assert_eq!(r.expect("answered").text(), i.to_string(), "{mode}");
        }
        assert_eq!(conn.status(), ConnectionStatus::Connected, "{mode}");
        assert_eq!(
            conn.info().connection_count,
            1,
            "{mode}: the link never broke"
        );
        within("disconnect", conn.disconnect()).await;
    }
}

#[tokio::test]
async fn a_server_that_closes_stdout_but_runs_on_is_replaced_and_killed() {
    let pids = PidFile::new();
    let conn = Connection::with_config("mute", fake("close-stdout", &pids), common::config());
    within("connect", conn.connect()).await.expect("connects");
    let (first, _) = pids.pids().await;
    // The link ends at once; the connection reconnects, and the old process,
    // which ignores stdin EOF, is shut down by the ladder.
    common::eventually("a reconnect", || conn.info().connection_count >= 2).await;
    common::assert_dead("the mute server", first).await;
    within("disconnect", conn.disconnect()).await;
    common::assert_dead("the last server", pids.pids().await.0).await;
}

#[tokio::test]
async fn exit_during_initialize_reports_status_and_stderr() {
    let pids = PidFile::new();
    let conn = Connection::with_config(
        "badconf",
        fake("exit-during-initialize", &pids),
        common::config(),
    );
    let err = within("connect", conn.connect()).await.expect_err("fails");
    let (status, stderr) = exited(&err);
    assert_eq!(status, "status 1");
    assert_eq!(
        stderr,
        ["fake-mcp-server: cannot start: FAKE_API_KEY is not set"]
    );
    assert_eq!(conn.status(), ConnectionStatus::Error);
    assert!(conn
        .info()
        .last_error
        .is_some_and(|e| e.message.contains("FAKE_API_KEY")));
}

#[tokio::test]
async fn a_server_ignoring_sigterm_is_killed_within_the_ladder() {
    let pids = PidFile::new();
    let conn = Connection::with_config("stubborn", fake("ignore-sigterm", &pids), common::config());
    within("connect", conn.connect()).await.expect("connects");
    let (pid, _) = pids.pids().await;
    let started = Instant::now();
    within("disconnect", conn.disconnect()).await;
    // 500 ms after stdin close + 500 ms after SIGTERM, then SIGKILL.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    common::assert_dead("the stubborn server", pid).await;
}

#[tokio::test]
async fn grandchildren_die_with_the_server() {
    // Closed gracefully…
    let pids = PidFile::new();
    let conn = Connection::with_config(
        "launcher",
        fake("spawn-grandchild", &pids),
        common::config(),
    );
    within("connect", conn.connect()).await.expect("connects");
    let (pid, grandchild) = pids.pids().await;
    let grandchild = grandchild.expect("a grandchild");
    assert!(leaks::is_alive(grandchild));
    within("disconnect", conn.disconnect()).await;
    common::assert_dead("server", pid).await;
    common::assert_dead("grandchild", grandchild).await;

    // …and when the server itself is killed.
    let pids = PidFile::new();
    let conn = Connection::with_config(
        "launcher2",
        fake("spawn-grandchild", &pids),
        common::config(),
    );
    within("connect", conn.connect()).await.expect("connects");
    let (pid, grandchild) = pids.pids().await;
    let grandchild = grandchild.expect("a grandchild");
    kill9(pid);
    common::eventually("a reconnect", || conn.info().connection_count >= 2).await;
    common::assert_dead("the orphaned grandchild", grandchild).await;
    within("disconnect", conn.disconnect()).await;
}

#[tokio::test]
async fn a_stderr_flood_never_blocks_the_server() {
    let pids = PidFile::new();
    let conn = Connection::with_config("loud", fake("flood-stderr", &pids), common::config());
    let client = within("connect", conn.connect()).await.expect("connects");
    for i in 0..200 {
        let r = within(
            "call",
            client.call_tool("echo", json!({"text": i.to_string()})),
        )
        .await;
        assert_eq!(r.expect("answered").text(), i.to_string());
    }
    within("disconnect", conn.disconnect()).await;
}

#[tokio::test]
async fn a_slow_drip_is_reassembled() {
    let pids = PidFile::new();
    let conn = Connection::with_config("drip", fake("slow-drip", &pids), common::config());
    let client = within("connect", conn.connect()).await.expect("connects");
    let r = within(
        "call",
        client.call_tool("echo", json!({"text": "one drop at a time"})),
    )
    .await;
    assert_eq!(r.expect("answered").text(), "one drop at a time");
    within("disconnect", conn.disconnect()).await;
}

#[tokio::test]
async fn an_unsupported_version_is_refused_and_the_process_ended() {
    let pids = PidFile::new();
    let conn = Connection::with_config("old", fake("reject-version", &pids), common::config());
    let err = within("connect", conn.connect())
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, Error::UnsupportedVersion { offered, .. } if offered == "1999-01-01"),
        "{err}"
    );
    common::assert_dead("server", pids.pids().await.0).await;
}

#[tokio::test]
async fn a_missing_program_is_a_typed_error_naming_it() {
    let conn = Connection::new(
        "ghost",
        StdioTransport::new("mcp-server-that-does-not-exist", ["--x"]).expect("valid settings"),
    );
    let err = within("connect", conn.connect()).await.expect_err("fails");
    match &err {
        Error::Connect {
            source: TransportError::NotFound { program },
            ..
        } => {
            assert_eq!(program, "mcp-server-that-does-not-exist");
        }
        other => panic!("unexpected {other}"),
    }
    assert!(!err.is_retryable());
    let missing_dir = StdioTransport::builder("true")
        .cwd("/no/such/dir")
        .build()
        .expect("a missing directory is found at connect");
    let err = within("connect", Connection::new("nodir", missing_dir).connect())
        .await
        .expect_err("fails");
    assert!(err.to_string().contains("/no/such/dir"), "{err}");
}

#[tokio::test]
async fn the_environment_is_an_allow_list_and_values_stay_secret() {
    let pids = PidFile::new();
    let builder = common::fake_builder("normal", &pids).env("MCP_TEST_TOKEN", "s3cr3t-value");
    let transport = builder.clone().build().expect("valid settings");
    assert!(
        !format!("{transport:?}").contains("s3cr3t-value"),
        "env values never in Debug"
    );
    let conn = Connection::with_config("env", transport, common::config());
    let client = within("connect", conn.connect()).await.expect("connects");
    let get = |name: &'static str| {
        let c = client.clone();
        async move {
            within("env", c.call_tool("env", json!({"name": name})))
                .await
                .expect("answered")
        }
    };
    assert_eq!(get("MCP_TEST_TOKEN").await.text(), "s3cr3t-value");
    assert!(!get("PATH").await.is_error(), "PATH is allowed");
    // Cargo sets this for the test process; the server must not inherit it.
    assert!(get("CARGO_MANIFEST_DIR").await.is_error());
    within("disconnect", conn.disconnect()).await;

    let conn = Connection::with_config(
        "env-all",
        builder
            .inherit_env(EnvPolicy::InheritAll)
            .build()
            .expect("valid settings"),
        common::config(),
    );
    let client = within("connect", conn.connect()).await.expect("connects");
    let r = within(
        "env",
        client.call_tool("env", json!({"name": "CARGO_MANIFEST_DIR"})),
    )
    .await
    .expect("answered");
    assert!(!r.is_error());
    within("disconnect", conn.disconnect()).await;
}

#[tokio::test]
async fn dropping_everything_without_disconnect_kills_the_server() {
    let pids = PidFile::new();
    let conn =
        Connection::with_config("dropped", fake("spawn-grandchild", &pids), common::config());
    let client = within("connect", conn.connect()).await.expect("connects");
    let (pid, grandchild) = pids.pids().await;
    drop(conn);
    drop(client);
    common::assert_dead("server", pid).await;
    common::assert_dead("grandchild", grandchild.expect("grandchild")).await;
}

#[tokio::test]
async fn a_panic_in_the_users_task_leaves_no_process() {
    let pids = PidFile::new();
    let transport = fake("normal", &pids);
    let task = tokio::spawn(async move {
        let conn = Connection::with_config("panicky", transport, common::config());
        conn.connect().await.expect("connects");
        panic!("the user's code failed");
    });
    assert!(within("task", task).await.is_err_and(|e| e.is_panic()));
    common::assert_dead("server", pids.pids().await.0).await;
}

#[tokio::test]
async fn an_idle_server_dying_is_noticed_without_any_request() {
    let pids = PidFile::new();
    let conn = Connection::with_config(
        "idle",
        fake("normal", &pids),
        ConnectionConfig {
            auto_reconnect: false,
            ..common::config()
        },
    );
    within("connect", conn.connect()).await.expect("connects");
    kill9(pids.pids().await.0);
    common::wait_status(&conn, ConnectionStatus::Error).await;
    let last = conn
        .info()
        .last_error
        .map(|e| e.message)
        .unwrap_or_default();
    assert!(last.contains("signal 9"), "{last}");
}

#[test]
fn settings_that_cannot_work_are_refused_by_build() {
    use mcp_transport_stdio::StdioConfigError;
    assert!(matches!(
        StdioTransport::new("", ["x"]),
        Err(StdioConfigError::EmptyProgram)
    ));
    assert!(matches!(
        StdioTransport::new("server", ["ok", "bad\0arg"]),
        Err(StdioConfigError::NulByte { what }) if what == "args[1]"
    ));
    assert!(matches!(
        StdioTransport::builder("server").env("", "v").build(),
        Err(StdioConfigError::InvalidEnvName { .. })
    ));
    assert!(matches!(
        StdioTransport::builder("server")
            .max_message_size(0)
            .build(),
        Err(StdioConfigError::Zero {
            setting: "max_message_size"
        })
    ));
    assert!(matches!(
        StdioTransport::builder("server")
            .args(["a", "b"])
            .args_as_written(["a"])
            .build(),
        Err(StdioConfigError::ArgsAsWrittenMismatch {
            args: 2,
            written: 1
        })
    ));
}

#[tokio::test]
async fn a_spawn_that_can_never_succeed_is_not_retried() {
    // An argument list longer than the kernel accepts: E2BIG from exec.
    let huge = "x".repeat(4 << 20);
    let transport = StdioTransport::new("true", [huge.as_str()]).expect("valid settings");
    let conn = Connection::with_config("too-long", transport, common::config());
    let err = within("connect", conn.connect()).await.expect_err("fails");
    match &err {
        Error::Connect {
            source: TransportError::Spawn { source, .. },
            ..
        } => assert_eq!(source.raw_os_error(), Some(7), "E2BIG: {err}"),
        other => panic!("expected a spawn failure, got {other}"),
    }
    assert!(!err.is_retryable(), "{err}");
    // The implicit path does not try again at once either.
    assert!(matches!(
        conn.ensure_connected().await,
        Err(Error::Backoff { .. })
    ));
    assert_eq!(conn.status(), ConnectionStatus::Error);
}

/// A runtime shut down under a connected connection kills its server, even
/// while the application still holds the `Connection` and a `Client` (the
/// handles must not keep the process: since the sending half lives where
/// senders can reach it, this is worth holding down).
#[test]
fn a_runtime_shut_down_kills_the_server_even_with_handles_kept() {
    let pids = PidFile::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let (conn, client, pid) = runtime.block_on(async {
        let conn = Connection::with_config("rt", fake("normal", &pids), common::config());
        let client = within("connect", conn.connect()).await.expect("connects");
        let (pid, _) = within("pid", pids.pids()).await;
        (conn, client, pid)
    });
    assert!(leaks::is_alive(pid));
    drop(runtime);
    assert!(
        leaks::wait_dead(pid, Duration::from_secs(10)),
        "server {pid} still running 10 s after the runtime shut down"
    );
    drop((client, conn));
}
