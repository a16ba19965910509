//! The fake MCP server (stdio). Usage: `fake-mcp-server [MODE [ARG]]`, or the
//! mode in `FAKE_MCP_MODE`. See `mcp_conn_testkit::fake_server` for the modes.

fn main() {
    std::process::exit(mcp_conn_testkit::fake_server::main());
}
