//! The child process: its exit status, its stderr, and signals to its group.

use std::collections::VecDeque;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, ChildStderr};
use tokio::sync::watch;
use tokio_util::codec::FramedRead;

use crate::codec::{Line, LineCodec};

/// Longest stderr line kept (longer ones are cut).
const STDERR_LINE_MAX: usize = 4096;

/// A running (or finished) server process and what it left behind.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) name: Arc<str>,
    /// The process id, which is also its process-group id.
    pid: i32,
    exit: watch::Receiver<Option<ExitStatus>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_done: watch::Receiver<bool>,
}

impl Process {
    /// Starts watching `child`: a task waits for its exit (the reaper) and,
    /// if given, a task drains its stderr into `tracing` and a ring buffer.
    /// Both tasks end by themselves once the process and its pipe are gone.
    pub(crate) fn watch(
        name: Arc<str>,
        mut child: Child,
        stderr: Option<ChildStderr>,
        tail_lines: usize,
    ) -> Self {
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .unwrap_or(0);
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(async move {
            let status = child.wait().await;
            match status {
                Ok(status) => {
                    let _ = exit_tx.send(Some(status));
                }
                Err(e) => tracing::warn!(error = %e, "could not wait for the server process"),
            }
        });
        let stderr_tail = Arc::new(Mutex::new(VecDeque::with_capacity(tail_lines)));
        let (done_tx, stderr_done) = watch::channel(stderr.is_none());
        if let Some(stderr) = stderr {
            let tail = stderr_tail.clone();
            let name = name.clone();
            // Inside the caller's span (the connection's name, when a
            // `Connection` spawns the server).
            let span = tracing::Span::current();
            tokio::spawn(tracing::Instrument::instrument(
                async move {
                    let mut lines = FramedRead::new(stderr, LineCodec::new(STDERR_LINE_MAX));
                    while let Some(line) = lines.next().await {
                        let text = match line {
                            Ok(Line::Text(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                            Ok(Line::Oversized { size }) => {
                                format!("[a stderr line of {size} bytes was cut]")
                            }
                            Err(_) => break,
                        };
                        tracing::info!(target: "mcp_conn::stderr", server = %name, "{text}");
                        if tail_lines > 0 {
                            let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
                            if tail.len() == tail_lines {
                                tail.pop_front();
                            }
                            tail.push_back(text);
                        }
                    }
                    let _ = done_tx.send(true);
                },
                span,
            ));
        }
        Process {
            name,
            pid,
            exit,
            stderr_tail,
            stderr_done,
        }
    }

    /// The process id (also its group id).
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `signal` to the whole process group. Errors (the group is
    /// already gone) are ignored.
    pub(crate) fn signal_group(&self, signal: Signal) {
        if self.pid > 0 {
            let _ = killpg(Pid::from_raw(self.pid), signal);
        }
    }

    /// The exit status, if the process has exited.
    pub(crate) fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// Resolves when the process has exited. Cancel-safe.
    pub(crate) async fn exited(&self) -> ExitStatus {
        let mut rx = self.exit.clone();
        let status = rx.wait_for(Option::is_some).await.ok().and_then(|s| *s);
        match status {
            Some(status) => status,
            // The reaper is gone without a status: treat as never exiting.
            None => std::future::pending().await,
        }
    }

    /// Waits up to `within` for the process to exit.
    pub(crate) async fn wait_exit(&self, within: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(within, self.exited()).await.ok()
    }

    /// The last stderr lines, waiting up to `within` for stderr to reach its
    /// end first (so a crash message written just before exit is included).
    pub(crate) async fn stderr_tail(&self, within: Duration) -> Vec<String> {
        let mut done = self.stderr_done.clone();
        let _ = tokio::time::timeout(within, done.wait_for(|d| *d)).await;
        let tail = self
            .stderr_tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        tail.iter().cloned().collect()
    }
}

/// Describes an exit status: `status 1`, `signal 9 (SIGKILL)`.
pub(crate) fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("status {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(s) => format!("signal {sig} ({s})"),
            Err(_) => format!("signal {sig}"),
        },
        (None, None) => "an unknown status".to_owned(),
    }
}
