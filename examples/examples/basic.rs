//! One stdio server: connect, list tools, call one, disconnect (the Python original's
//! first example). `cargo run -p examples --example basic`

use examples::{demo_server, serve_if_demo_server};
use mcp_conn_core::Connection;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    serve_if_demo_server();
    // Any command works here, e.g. StdioTransport::new("npx", ["-y", "@modelcontextprotocol/server-everything"]).
    let connection = Connection::new("demo", demo_server("normal").build()?);

    let client = connection.connect().await?;
    println!(
        "connected to {:?}, protocol {:?}",
        client.server_info().map(|s| &s.name),
        client.protocol_version()
    );
    for tool in client.list_tools().await? {
        println!(
            "  tool {:<6} {}",
            tool.name,
            tool.description.unwrap_or_default()
        );
    }
    let result = client.call_tool("add", json!({"a": 2, "b": 3})).await?;
    println!("add(2, 3) = {}", result.text());
    connection.disconnect().await;
    println!("disconnected: {}", connection.status());
    Ok(())
}
