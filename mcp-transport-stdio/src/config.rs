//! Building a [`StdioTransport`]: its settings, and the one place they are
//! checked.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::transport::StdioTransport;

/// The variables a child gets from the parent under [`EnvPolicy::AllowList`],
/// besides the locale variables (`LANG`, `LANGUAGE`, `LC_*`).
pub const DEFAULT_ENV_ALLOW_LIST: &[&str] = &["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"];

/// Which of the parent's environment variables the server inherits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvPolicy {
    /// Only [`DEFAULT_ENV_ALLOW_LIST`] and the locale variables (default):
    /// a server never sees the parent's secrets by accident.
    #[default]
    AllowList,
    /// The whole parent environment.
    InheritAll,
    /// Nothing: only what was set with `.env()`.
    Empty,
}

/// What happens to the server's stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StderrMode {
    /// Read all the time, forwarded to `tracing` (target `mcp_conn::stderr`),
    /// and the last lines attached to the error when the server exits (default).
    #[default]
    Capture,
    /// Shared with this process's stderr.
    Inherit,
    /// Discarded.
    Discard,
}

/// A [`StdioTransport`] setting that cannot work, found by
/// [`StdioTransportBuilder::build`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StdioConfigError {
    /// The program is empty.
    #[error("the program to run is empty")]
    EmptyProgram,
    /// A NUL byte, which no program, argument or variable can hold.
    #[error("{what} contains a NUL byte")]
    NulByte {
        /// Which setting (`program`, `args[2]`, `env FOO`, `cwd`).
        what: String,
    },
    /// An environment variable name that is empty or holds `=`.
    #[error("invalid environment variable name {name:?}")]
    InvalidEnvName {
        /// The name.
        name: String,
    },
    /// A setting that must not be zero.
    #[error("`{setting}` must be greater than zero")]
    Zero {
        /// The setting.
        setting: &'static str,
    },
    /// `args_as_written` does not have one entry per argument.
    #[error("args_as_written has {written} entries for {args} arguments")]
    ArgsAsWrittenMismatch {
        /// How many arguments.
        args: usize,
        /// How many written forms.
        written: usize,
    },
}

/// Builds a [`StdioTransport`]: infallible setters, every check in
/// [`StdioTransportBuilder::build`].
///
/// ```
/// use mcp_transport_stdio::{StdioConfigError, StdioTransport};
///
/// let t = StdioTransport::builder("my-server").arg("--stdio").env("DEBUG", "1").build();
/// assert!(t.is_ok());
/// let bad = StdioTransport::builder("my-server").env("A=B", "1").build();
/// assert!(matches!(bad, Err(StdioConfigError::InvalidEnvName { .. })));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct StdioTransportBuilder {
    inner: StdioTransport,
}

impl StdioTransportBuilder {
    pub(crate) fn new(program: OsString) -> Self {
        StdioTransportBuilder {
            inner: StdioTransport {
                program,
                args: Vec::new(),
                args_as_written: None,
                env: Vec::new(),
                env_policy: EnvPolicy::default(),
                cwd: None,
                stderr: StderrMode::default(),
                max_message_size: 16 * 1024 * 1024,
                stderr_tail_lines: 20,
                stdin_close_wait: None,
                sigterm_wait: None,
                name: None,
            },
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.inner.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner
            .args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// The arguments as the user wrote them, before `${VAR}` expansion:
    /// `Debug` shows these instead of the real ones, which may hold secrets
    /// (`--header "Authorization: Bearer ${TOKEN}"`). The pool's config
    /// reader sets them.
    pub fn args_as_written<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner.args_as_written = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Sets an environment variable for the server (its value is never logged).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.inner
            .env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.env.extend(
            vars.into_iter()
                .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())),
        );
        self
    }

    /// Chooses what the server inherits of this process's environment.
    pub fn inherit_env(mut self, policy: EnvPolicy) -> Self {
        self.inner.env_policy = policy;
        self
    }

    /// Sets the server's working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.inner.cwd = Some(dir.into());
        self
    }

    /// Chooses what happens to the server's stderr.
    pub fn stderr(mut self, mode: StderrMode) -> Self {
        self.inner.stderr = mode;
        self
    }

    /// The largest message accepted from the server (default 16 MiB). A
    /// longer line is reported, skipped, and does not end the connection.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.inner.max_message_size = bytes;
        self
    }

    /// How many stderr lines to keep for error reports (default 20).
    pub fn stderr_tail_lines(mut self, lines: usize) -> Self {
        self.inner.stderr_tail_lines = lines;
        self
    }

    /// The shutdown ladder's waits: after closing stdin, and after SIGTERM.
    /// By default both are the connection's `close_grace`.
    pub fn shutdown_timeouts(
        mut self,
        after_stdin_close: Duration,
        after_sigterm: Duration,
    ) -> Self {
        self.inner.stdin_close_wait = Some(after_stdin_close);
        self.inner.sigterm_wait = Some(after_sigterm);
        self
    }

    /// The name used in logs (default: the program's file name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.inner.name = Some(Arc::from(name.into()));
        self
    }

    /// Checks the settings and returns the transport. Whether the program
    /// exists and the working directory is there is checked by each
    /// `connect()` (they may appear later), as typed transport errors.
    pub fn build(self) -> Result<StdioTransport, StdioConfigError> {
        let t = self.inner;
        if t.program.is_empty() {
            return Err(StdioConfigError::EmptyProgram);
        }
        let nul = |s: &OsStr| s.as_encoded_bytes().contains(&0);
        if nul(&t.program) {
            return Err(StdioConfigError::NulByte {
                what: "program".into(),
            });
        }
        if let Some(i) = t.args.iter().position(|a| nul(a)) {
            return Err(StdioConfigError::NulByte {
                what: format!("args[{i}]"),
            });
        }
        for (k, v) in &t.env {
            let name = k.to_string_lossy();
            if k.is_empty() || name.contains('=') || nul(k) {
                return Err(StdioConfigError::InvalidEnvName {
                    name: name.into_owned(),
                });
            }
            if nul(v) {
                return Err(StdioConfigError::NulByte {
                    what: format!("env {name}"),
                });
            }
        }
        if t.cwd.as_ref().is_some_and(|c| nul(c.as_os_str())) {
            return Err(StdioConfigError::NulByte { what: "cwd".into() });
        }
        if t.max_message_size == 0 {
            return Err(StdioConfigError::Zero {
                setting: "max_message_size",
            });
        }
        if let Some(written) = &t.args_as_written {
            if written.len() != t.args.len() {
                return Err(StdioConfigError::ArgsAsWrittenMismatch {
                    args: t.args.len(),
                    written: written.len(),
                });
            }
        }
        Ok(t)
    }
}
