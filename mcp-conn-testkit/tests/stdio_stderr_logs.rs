//! A server's stderr reaches `tracing`, tagged with the connection's name
//! (alone in its binary: it installs the global subscriber).

mod common;

use common::{fake, within, PidFile};
use mcp_conn_core::Connection;

#[tokio::test]
async fn stderr_lines_are_logged_with_the_connection_name() {
    let captured = common::CapturedLogs::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();

    let pids = PidFile::new();
    let conn = Connection::with_config(
        "billing-db",
        fake("exit-during-initialize", &pids),
        common::config(),
    );
    within("connect", conn.connect())
        .await
        .expect_err("the server exits");
    let logs = captured.text();
    let line = logs
        .lines()
        .find(|l| l.contains("FAKE_API_KEY is not set"))
        .unwrap_or_else(|| panic!("the stderr line was not logged:\n{logs}"));
    assert!(line.contains("mcp_connection{name=billing-db}"), "{line}");
    assert!(line.contains("mcp_conn::stderr"), "{line}");
}
