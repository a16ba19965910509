//! A Streamable HTTP server: connect, list tools, call one, disconnect.
//! `cargo run -p examples --example http [URL]`
//!
//! Without a URL it starts the testkit's scripted MCP HTTP server on
//! 127.0.0.1 (SSE replies, sessions) and talks to that.

use mcp_conn_core::Connection;
use mcp_conn_testkit::http_server::{Behavior, Reply, TestHttpServer};
use mcp_transport_http::HttpTransport;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let local;
    let url = match std::env::args().nth(1) {
        Some(url) => url,
        None => {
            local = TestHttpServer::start(Behavior {
                reply: Reply::Sse,
                ..Default::default()
            })
            .await?;
            local.url()
        }
    };
    let transport = HttpTransport::builder(&url)
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()?;
    let connection = Connection::new("web", transport);
    let client = connection.connect().await?;
    println!(
        "connected to {url}: {:?}, protocol {:?}",
        client.server_info().map(|s| &s.name),
        client.protocol_version()
    );
    for tool in client.list_tools().await? {
        println!("  tool {}", tool.name);
    }
    let r = client
        .call_tool(
            "echo",
            json!({"text": "over Streamable HTTP", "message": "over Streamable HTTP"}),
        )
        .await?;
    println!("echo -> {:?}", r.text());
    client.ping().await?;
    connection.disconnect().await; // DELETEs the session
    println!("disconnected: {}", connection.status());
    Ok(())
}
