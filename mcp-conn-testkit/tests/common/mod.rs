//! Helpers for the stdio fault tests: the fake server, deadlines, pid files.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mcp_conn_core::ConnectionConfig;
use mcp_conn_testkit::leaks;
use mcp_transport_stdio::{StdioTransport, StdioTransportBuilder};

#[allow(unused_imports)]
pub use mcp_conn_core::testing::{wait_status, within, DEADLINE};

/// The fake server in `mode`, writing its pids to `pidfile`.
pub fn fake(mode: &str, pidfile: &PidFile) -> StdioTransport {
    fake_builder(mode, pidfile).build().expect("valid settings")
}

/// [`fake`], still open to more settings.
pub fn fake_builder(mode: &str, pidfile: &PidFile) -> StdioTransportBuilder {
    StdioTransport::builder(env!("CARGO_BIN_EXE_fake-mcp-server"))
        .args(mode.split_whitespace())
        .env("FAKE_MCP_PIDFILE", &pidfile.0)
        .shutdown_timeouts(Duration::from_millis(500), Duration::from_millis(500))
}

/// Settings for fast fault tests: short timeouts, quick reconnects.
pub fn config() -> ConnectionConfig {
    ConnectionConfig {
        reconnect_delay: Duration::from_millis(50),
        max_reconnect_delay: Duration::from_millis(200),
        reconnect_jitter: 0.0,
        connection_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        close_grace: Duration::from_millis(500),
        ..Default::default()
    }
}

/// Polls `cond` until it holds (for facts no event announces, such as a
/// process that is not our child dying), failing after the deadline.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// A unique pid-file path, removed on drop.
pub struct PidFile(pub PathBuf);

impl PidFile {
    pub fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        PidFile(std::env::temp_dir().join(format!("mcp-conn-test-{}-{n}.pid", std::process::id())))
    }

    /// The server's pid (and its grandchild's), once written.
    pub async fn pids(&self) -> (i32, Option<i32>) {
        let mut found = None;
        eventually("the pid file", || {
            found = leaks::read_pidfile(&self.0);
            found.is_some()
        })
        .await;
        found.unwrap_or_else(|| unreachable!())
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Asserts that the process is gone (or a zombie about to be reaped by init).
pub async fn assert_dead(what: &str, pid: i32) {
    eventually(&format!("{what} (pid {pid}) to die"), || {
        !leaks::is_alive(pid)
    })
    .await;
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether `node` runs here.
pub fn has_node() -> bool {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// An interop test's dependency: `Some` when it is installed. Otherwise the
/// test is skipped with the reason printed, or fails when
/// `MCP_CONN_REQUIRE_INTEROP` is set (as in CI).
pub fn interop<T>(test: &str, found: Result<T, &str>) -> Option<T> {
    match found {
        Ok(t) => Some(t),
        Err(why) => {
            assert!(
                std::env::var_os("MCP_CONN_REQUIRE_INTEROP").is_none(),
                "{test}: interop required, but {why}"
            );
            // Straight to the stderr handle: the test harness captures
            // `eprintln!` of passing tests, and a skip must be seen.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
            None
        }
    }
}

/// The path of an npm-installed file of server-everything, if it and node are there.
pub fn everything(test: &str, relative: &str) -> Option<PathBuf> {
    let path = workspace().join(".cache/npm/node_modules").join(relative);
    let found = match (has_node(), path.exists()) {
        (false, _) => Err("node is not installed"),
        (true, false) => {
            Err("server-everything is not installed (run scripts/install-test-servers.sh)")
        }
        (true, true) => Ok(path),
    };
    interop(test, found)
}

/// A `tracing` writer that keeps what is logged, for tests that read the
/// logs (the stderr forwarding, the no-secret checks).
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
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
