//! # mcp-transport-stdio
//!
//! The MCP stdio transport for mcp-conn: [`StdioTransport`] runs a server as
//! a child process and talks newline-delimited JSON over its pipes.
//!
//! - No shell: the program is resolved on `PATH` and a missing one is a typed
//!   [`TransportError::NotFound`](mcp_conn_core::TransportError::NotFound).
//! - The child gets an allow-listed environment by default ([`EnvPolicy`]);
//!   environment values never appear in `Debug` or logs.
//! - The child runs in its own process group; shutdown closes stdin, waits,
//!   sends SIGTERM to the group, waits, then SIGKILL, and always reaps.
//! - Framing is bounded ([`StdioTransportBuilder::max_message_size`]): an oversized
//!   line is reported and skipped; a line that is not JSON-RPC is logged as a
//!   protocol violation and dropped. Neither ends the connection.
//! - stderr is drained all the time, forwarded to `tracing`, and its last
//!   lines are attached to the error when the server exits:
//!   `server exited with status 1: <last stderr lines>`.
//!
//! Unix only (process groups and signals).
#![deny(missing_docs)]

#[cfg(not(unix))]
compile_error!("mcp-transport-stdio supports Unix only for now");

mod codec;
mod config;
mod process;
mod transport;

pub use config::{
    EnvPolicy, StderrMode, StdioConfigError, StdioTransportBuilder, DEFAULT_ENV_ALLOW_LIST,
};
pub use transport::StdioTransport;
