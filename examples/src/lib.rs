//! Runnable programs for mcp-conn: `cargo run -p examples --example <name>`.
//!
//! - `pool` (the README's main job): several demo servers from an
//!   `mcpServers` config, a health table, the tool catalog, and one server
//!   crashing and coming back.
//! - `basic`: one stdio server: connect, list tools, call one, disconnect.
//! - `monitoring`: health monitoring and auto-reconnect, live, as the server
//!   is killed.
//! - `http`: a Streamable HTTP server.
//! - `demo`: connections over the in-memory transport.
//!
//! The stdio examples run this crate's own binary as the demo server (the
//! testkit's fake MCP server), so nothing but Rust is needed.
#![deny(missing_docs)]

/// The environment variable that makes an example act as the demo server.
pub const DEMO_SERVER_ENV: &str = "MCP_CONN_DEMO_SERVER";

/// If this process was started as the demo server, serve and exit.
pub fn serve_if_demo_server() {
    if std::env::var_os(DEMO_SERVER_ENV).is_some() {
        std::process::exit(mcp_conn_testkit::fake_server::main());
    }
}

/// A stdio transport (its builder) that runs this program again as the demo
/// server in `mode` (see `mcp_conn_testkit::fake_server`).
pub fn demo_server(mode: &str) -> mcp_transport_stdio::StdioTransportBuilder {
    let exe = std::env::current_exe().unwrap_or_else(|_| "fake-mcp-server".into());
    mcp_transport_stdio::StdioTransport::builder(exe)
        .args(mode.split_whitespace())
        .env(DEMO_SERVER_ENV, "1")
}
