//! A server's stderr reaches `tracing`, tagged with the connection's name
//! (alone in its binary: it installs the global subscriber).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{fake, within, PidFile};
use mcp_conn_core::Connection;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn stderr_lines_are_logged_with_the_connection_name() {
    let captured = Captured::default();
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
    let logs = String::from_utf8_lossy(
        &captured
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_owned();
    let line = logs
        .lines()
        .find(|l| l.contains("FAKE_API_KEY is not set"))
        .unwrap_or_else(|| panic!("the stderr line was not logged:\n{logs}"));
    assert!(line.contains("mcp_connection{name=billing-db}"), "{line}");
    assert!(line.contains("mcp_conn::stderr"), "{line}");
}
