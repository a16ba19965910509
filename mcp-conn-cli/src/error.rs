//! The command's own errors: each prints as one sentence, never as a
//! `Debug` dump.

use std::path::PathBuf;
use std::process::ExitCode;

use mcp_conn_pool::PoolConfigError;

/// What stops a command before it can report on servers.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// A config file is wrong (exit 2).
    #[error("{}: {source}", file.display())]
    Config {
        file: PathBuf,
        source: PoolConfigError,
    },
    /// No config was given and none was found (exit 2).
    #[error("no MCP config found; looked for:\n{}\ngive one: mcp-conn check path/to/mcp.json", looked.iter().map(|p| format!("  {}", p.display())).collect::<Vec<_>>().join("\n"))]
    NoConfig { looked: Vec<PathBuf> },
    /// The command line asks for something impossible (exit 2).
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Config { .. } | CliError::NoConfig { .. } | CliError::Usage(_) => {
                ExitCode::from(2)
            }
        }
    }
}
