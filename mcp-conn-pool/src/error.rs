//! The pool's error type.

/// Everything the pool can fail with.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A server with this name is already in the pool.
    #[error("a server named `{name}` is already in the pool")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// No server with this name is in the pool.
    #[error("no server named `{name}` in the pool")]
    UnknownServer {
        /// The name.
        name: String,
    },
    /// No tool with this qualified name is in the catalog.
    #[error("no tool `{qualified}` in the catalog")]
    UnknownTool {
        /// The qualified name asked for.
        qualified: String,
    },
    /// The connection failed (it names the server).
    #[error(transparent)]
    Connection(#[from] mcp_conn_core::Error),
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] PoolConfigError),
}

/// A configuration error, naming the server and the field:
/// `servers.fs.args[2]: expected a string`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PoolConfigError {
    /// Where: `servers.<name>.<field>…` (or `config` for the document).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl PoolConfigError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        PoolConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}
