//! [`StdioTransport`]: its settings, spawning, and the two link halves.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use mcp_conn_core::jsonrpc::{parse_frame, Frame, Message};
use mcp_conn_core::{
    Cause, ConnectFailure, Inbound, Link, LinkRx, LinkTx, Transport, TransportError,
};
use nix::sys::signal::Signal;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;

use crate::codec::{Line, LineCodec};
use crate::config::{
    EnvPolicy, StderrMode, StdioConfigError, StdioTransportBuilder, DEFAULT_ENV_ALLOW_LIST,
};
use crate::process::{describe, Process};

/// Runs an MCP server as a child process and talks newline-delimited JSON
/// over its stdin and stdout.
///
/// Every `connect()` spawns a fresh process in its own process group, so a
/// launcher (`npx`, `uvx`) and whatever it starts die together. No shell is
/// involved: the program and each argument reach the OS as given.
///
/// ```no_run
/// use mcp_conn_core::Connection;
/// use mcp_transport_stdio::StdioTransport;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let transport = StdioTransport::builder("npx")
///     .args(["-y", "@modelcontextprotocol/server-filesystem", "/tmp"])
///     .env("DEBUG", "1")
///     .cwd("/tmp")
///     .build()?;
/// let connection = Connection::new("filesystem", transport);
/// let client = connection.connect().await?;
/// println!("{} tools", client.list_tools().await?.len());
/// connection.disconnect().await; // stdin closed, then SIGTERM, then SIGKILL if need be
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct StdioTransport {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    /// What `Debug` shows instead of `args`, when set.
    pub(crate) args_as_written: Option<Vec<String>>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) env_policy: EnvPolicy,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) stderr: StderrMode,
    pub(crate) max_message_size: usize,
    pub(crate) stderr_tail_lines: usize,
    pub(crate) stdin_close_wait: Option<Duration>,
    pub(crate) sigterm_wait: Option<Duration>,
    pub(crate) name: Option<Arc<str>>,
}

impl fmt::Debug for StdioTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Environment values are secrets: only their names are shown.
        let env_keys: Vec<_> = self.env.iter().map(|(k, _)| k).collect();
        let mut d = f.debug_struct("StdioTransport");
        d.field("program", &self.program);
        match &self.args_as_written {
            Some(written) => d.field("args", written),
            None => d.field("args", &self.args),
        };
        d.field("env", &env_keys)
            .field("env_policy", &self.env_policy)
            .field("cwd", &self.cwd)
            .field("stderr", &self.stderr)
            .field("max_message_size", &self.max_message_size)
            .finish_non_exhaustive()
    }
}

impl StdioTransport {
    /// Runs `program` with `args`, all other settings at their defaults:
    /// the short form of [`StdioTransport::builder`]. `program` is looked up
    /// on `PATH` (the child's, if the builder's `env("PATH", …)` sets one)
    /// unless it contains a `/`.
    pub fn new<I, S>(program: impl AsRef<OsStr>, args: I) -> Result<Self, StdioConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Self::builder(program).args(args).build()
    }

    /// A builder: every setter is infallible, every check is in
    /// [`StdioTransportBuilder::build`].
    pub fn builder(program: impl AsRef<OsStr>) -> StdioTransportBuilder {
        StdioTransportBuilder::new(program.as_ref().to_owned())
    }

    /// The program as configured.
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    fn log_name(&self) -> Arc<str> {
        self.name.clone().unwrap_or_else(|| {
            let name = Path::new(&self.program)
                .file_name()
                .unwrap_or(&self.program)
                .to_string_lossy();
            Arc::from(name.as_ref())
        })
    }

    /// The environment the child starts with.
    fn child_env(&self) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = match self.env_policy {
            EnvPolicy::InheritAll => std::env::vars_os().collect(),
            EnvPolicy::Empty => Vec::new(),
            EnvPolicy::AllowList => std::env::vars_os()
                .filter(|(k, _)| {
                    let k = k.to_string_lossy();
                    DEFAULT_ENV_ALLOW_LIST.contains(&k.as_ref())
                        || k == "LANG"
                        || k == "LANGUAGE"
                        || k.starts_with("LC_")
                })
                .collect(),
        };
        for (k, v) in &self.env {
            env.retain(|(existing, _)| existing != k);
            env.push((k.clone(), v.clone()));
        }
        env
    }

    /// Finds the program the way a shell would, without a shell.
    fn resolve(&self, env: &[(OsString, OsString)]) -> Result<PathBuf, TransportError> {
        let not_found = || TransportError::NotFound {
            program: self.program.to_string_lossy().into_owned(),
        };
        let program = Path::new(&self.program);
        if self.program.is_empty() {
            return Err(not_found());
        }
        if program.components().count() > 1 {
            let full = match &self.cwd {
                Some(cwd) if program.is_relative() => cwd.join(program),
                _ => program.to_owned(),
            };
            return if is_executable(&full) {
                Ok(full)
            } else {
                Err(not_found())
            };
        }
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| is_executable(candidate))
            .ok_or_else(not_found)
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[async_trait]
impl Transport for StdioTransport {
    async fn connect(&self) -> Result<Link, TransportError> {
        let env = self.child_env();
        if let Some(cwd) = &self.cwd {
            if !cwd.is_dir() {
                return Err(TransportError::connect(
                    ConnectFailure::Invalid,
                    cwd.display().to_string(),
                    Some(Arc::new(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the working directory does not exist",
                    )) as Cause),
                ));
            }
        }
        let program = self.resolve(&env)?;
        let mut cmd = Command::new(&program);
        cmd.args(&self.args)
            .env_clear()
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(match self.stderr {
                StderrMode::Capture => Stdio::piped(),
                StderrMode::Inherit => Stdio::inherit(),
                StderrMode::Discard => Stdio::null(),
            })
            .process_group(0)
            .kill_on_drop(true);
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        // E2BIG, EACCES, ENOEXEC and ENOENT are not retryable: see
        // `TransportError::is_retryable`.
        let mut child = cmd.spawn().map_err(|e| {
            let program = if e.kind() == std::io::ErrorKind::NotFound {
                self.program.to_string_lossy().into_owned()
            } else {
                program.display().to_string()
            };
            TransportError::spawn(program, e)
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(TransportError::spawn(
                program.display().to_string(),
                std::io::Error::other("the child's pipes were not opened"),
            ));
        };
        let stderr = child.stderr.take();
        let name = self.log_name();
        let process = Arc::new(Process::watch(
            name.clone(),
            child,
            stderr,
            self.stderr_tail_lines,
        ));
        tracing::debug!(server = %name, pid = process.pid(), "server started");
        Ok(Link::new(
            StdioTx {
                stdin: Some(stdin),
                buf: Vec::with_capacity(4096),
                process: process.clone(),
                stdin_close_wait: self.stdin_close_wait,
                sigterm_wait: self.sigterm_wait,
                closed: false,
            },
            StdioRx {
                lines: FramedRead::with_capacity(
                    stdout,
                    LineCodec::new(self.max_message_size),
                    64 * 1024,
                ),
                queued: VecDeque::new(),
                process,
                max: self.max_message_size,
                drain_until: None,
            },
        ))
    }

    fn kind(&self) -> &'static str {
        "stdio"
    }
}

/// How long stdout may keep delivering after the process exited (a
/// grandchild may hold it open; what the server wrote before dying is read).
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);
/// How long to wait for the exit status once stdout has ended.
const EXIT_AFTER_EOF: Duration = Duration::from_secs(1);
/// How long to wait for the rest of stderr when building an error.
const STDERR_SETTLE: Duration = Duration::from_millis(500);

async fn exit_error(process: &Process) -> Option<TransportError> {
    let status = process.exit_status()?;
    Some(TransportError::Exited {
        status: describe(status),
        stderr_tail: process.stderr_tail(STDERR_SETTLE).await,
    })
}

struct StdioTx {
    stdin: Option<ChildStdin>,
    buf: Vec<u8>,
    process: Arc<Process>,
    stdin_close_wait: Option<Duration>,
    sigterm_wait: Option<Duration>,
    closed: bool,
}

#[async_trait]
impl LinkTx for StdioTx {
    async fn send(&mut self, msg: &Message) -> Result<(), TransportError> {
        self.send_batch(std::slice::from_ref(msg)).await
    }

    /// One non-blocking write of the whole line, if it fits in `PIPE_BUF`:
    /// a pipe takes such a write whole or not at all (POSIX), so a line is
    /// never left half written. Anything else (a full pipe, a longer line,
    /// an error) is left to `send_batch`.
    fn try_send_now(&mut self, msg: &Message) -> bool {
        let Some(stdin) = self.stdin.as_mut() else {
            return false;
        };
        self.buf.clear();
        msg.write_to(&mut self.buf);
        self.buf.push(b'\n');
        if self.buf.len() > nix::libc::PIPE_BUF {
            return false;
        }
        let mut cx = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
        match std::pin::Pin::new(stdin).poll_write(&mut cx, &self.buf) {
            std::task::Poll::Ready(Ok(n)) if n == self.buf.len() => true,
            std::task::Poll::Ready(Ok(n)) if n > 0 => {
                // Not possible on a pipe; should it happen, the line is cut
                // and the stream unusable: close stdin, so the link ends
                // (and its requests fail) at once instead of hanging.
                tracing::error!(server = %self.process.name, written = n, "a pipe took part of a line; closing the link");
                self.stdin = None;
                true
            }
            _ => false,
        }
    }

    async fn send_batch(&mut self, msgs: &[Message]) -> Result<(), TransportError> {
        let stdin = self.stdin.as_mut().ok_or(TransportError::Closed)?;
        self.buf.clear();
        for msg in msgs {
            msg.write_to(&mut self.buf);
            self.buf.push(b'\n');
        }
        if let Err(e) = stdin.write_all(&self.buf).await {
            // Most likely the server died: report its exit, not the pipe.
            if self.process.wait_exit(EXIT_AFTER_EOF).await.is_some() {
                if let Some(exit) = exit_error(&self.process).await {
                    return Err(exit);
                }
            }
            return Err(e.into());
        }
        Ok(())
    }

    async fn close(&mut self, grace: Duration) -> Result<(), TransportError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let p = &self.process;
        drop(self.stdin.take());
        if p.wait_exit(self.stdin_close_wait.unwrap_or(grace))
            .await
            .is_none()
        {
            tracing::debug!(server = %p.name, "still running after stdin was closed: SIGTERM");
            p.signal_group(Signal::SIGTERM);
            if p.wait_exit(self.sigterm_wait.unwrap_or(grace))
                .await
                .is_none()
            {
                tracing::warn!(server = %p.name, "still running after SIGTERM: SIGKILL");
                p.signal_group(Signal::SIGKILL);
                if p.wait_exit(Duration::from_secs(10)).await.is_none() {
                    tracing::error!(server = %p.name, pid = p.pid(), "did not die after SIGKILL");
                }
            }
        }
        // Whatever else is left in the group (a launcher's children).
        p.signal_group(Signal::SIGKILL);
        Ok(())
    }
}

impl Drop for StdioTx {
    fn drop(&mut self) {
        if !self.closed {
            // Dropped without a graceful close (e.g. the runtime is shutting
            // down): kill the whole group now. The reaper, or tokio's
            // kill_on_drop, collects the exit status.
            self.process.signal_group(Signal::SIGKILL);
        }
    }
}

struct StdioRx {
    lines: FramedRead<ChildStdout, LineCodec>,
    queued: VecDeque<Message>,
    process: Arc<Process>,
    max: usize,
    /// Set once the process exited: read what is left until then.
    drain_until: Option<Instant>,
}

impl StdioRx {
    fn take_line(&mut self, bytes: &[u8]) {
        match parse_frame(bytes) {
            Ok(Frame::Single(msg)) => self.queued.push_back(msg),
            Ok(Frame::Batch(items)) => {
                for item in items {
                    match item {
                        Ok(msg) => self.queued.push_back(msg),
                        Err(e) => self.violation(&e.to_string(), bytes),
                    }
                }
            }
            Err(e) => self.violation(&e.to_string(), bytes),
        }
    }

    fn violation(&self, why: &str, bytes: &[u8]) {
        let preview = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
        tracing::warn!(server = %self.process.name, %why, line = %preview, "protocol violation: dropped a line that is not JSON-RPC");
    }

    async fn end_reason(&self) -> TransportError {
        if self.process.wait_exit(EXIT_AFTER_EOF).await.is_some() {
            if let Some(exit) = exit_error(&self.process).await {
                return exit;
            }
        }
        tracing::warn!(server = %self.process.name, "the server closed stdout but is still running");
        TransportError::Eof
    }
}

#[async_trait]
impl LinkRx for StdioRx {
    async fn recv(&mut self) -> Result<Option<Inbound>, TransportError> {
        loop {
            if let Some(msg) = self.queued.pop_front() {
                return Ok(Some(Inbound::Message(msg)));
            }
            let next = match self.drain_until {
                Some(deadline) => tokio::time::timeout_at(deadline, self.lines.next())
                    .await
                    .unwrap_or(None),
                None => {
                    tokio::select! {
                        biased;
                        line = self.lines.next() => line,
                        _ = self.process.exited() => {
                            self.drain_until = Some(Instant::now() + DRAIN_AFTER_EXIT);
                            continue;
                        }
                    }
                }
            };
            match next {
                Some(Ok(Line::Text(bytes))) => {
                    if !bytes.iter().all(u8::is_ascii_whitespace) {
                        self.take_line(&bytes);
                    }
                }
                Some(Ok(Line::Oversized { size })) => {
                    tracing::warn!(
                        server = %self.process.name,
                        size,
                        limit = self.max,
                        "dropped a message larger than the limit"
                    );
                }
                Some(Err(e)) => {
                    return Err(exit_error(&self.process).await.unwrap_or_else(|| e.into()));
                }
                None => return Err(self.end_reason().await),
            }
        }
    }
}
