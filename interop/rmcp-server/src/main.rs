//! A small MCP server built with rmcp (the official Rust SDK), for mcp-conn's
//! interop tests and benchmarks. rmcp 3.9 speaks both protocol eras on the same
//! endpoint: the handshake era (`initialize`, 2024-11-05 to 2025-11-25) and the
//! stateless 2026-07-28 era (`server/discover`, `_meta` on every request).
//!
//! ```text
//! rmcp-interop-server stdio
//! rmcp-interop-server http PORT [--json]
//! ```
//!
//! `http` serves Streamable HTTP at `/mcp` on 127.0.0.1 and prints
//! `listening on 127.0.0.1:PORT` to stderr once bound (PORT 0 picks one).
//! Replies are SSE streams by default; `--json` asks rmcp for
//! `application/json` replies where it allows them (stateless requests; its
//! handshake-era sessions always answer with SSE). With `PIDFILE` set, the
//! process writes `pid N` there first.

use std::convert::Infallible;
use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{schemars, tool, tool_handler, tool_router, ServerHandler, ServiceExt};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to return.
    text: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct AddArgs {
    /// The left operand.
    a: f64,
    /// The right operand.
    b: f64,
}

#[derive(Debug, Clone)]
struct Interop {
    // Read by the code `#[tool_handler]` generates.
    #[allow(dead_code)]
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Interop {
    fn new() -> Self {
        Interop {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Returns its text.")]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }

    #[tool(description = "Adds a and b.")]
    fn add(&self, Parameters(AddArgs { a, b }): Parameters<AddArgs>) -> String {
        (a + b).to_string()
    }
}

#[tool_handler]
impl ServerHandler for Interop {
    fn get_info(&self) -> ServerConfig {
        let mut config = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        config.server_info = Implementation::new("rmcp-interop", "1.0.0");
        config
    }
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

async fn serve_stdio() -> Result<(), Failure> {
    let running = Interop::new().serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}

async fn serve_http(port: u16, json: bool) -> Result<(), Failure> {
    let config = StreamableHttpServerConfig::default().with_json_response(json);
    let mcp = StreamableHttpService::new(
        || Ok(Interop::new()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        // rmcp writes an SSE reply in several small writes (the priming
        // event, the message, the last chunk); with Nagle on, each after the
        // first waits for the client's delayed ACK (~40 ms on Linux).
        stream.set_nodelay(true)?;
        let mcp = mcp.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut mcp = mcp.clone();
                async move {
                    if req.uri().path() != "/mcp" {
                        let mut not_found = hyper::Response::new(Default::default());
                        *not_found.status_mut() = hyper::StatusCode::NOT_FOUND;
                        return Ok::<_, Infallible>(not_found);
                    }
                    tower_service::Service::call(&mut mcp, req).await
                }
            });
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                eprintln!("connection: {e}");
            }
        });
    }
}

fn main() -> Result<(), Failure> {
    if let Some(path) = std::env::var_os("PIDFILE") {
        std::fs::write(path, format!("pid {}\n", std::process::id()))?;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args.as_slice() {
        ["stdio"] => runtime.block_on(serve_stdio()),
        ["http", port] | ["http", port, "--json"] => {
            let json = args.len() == 3;
            runtime.block_on(serve_http(port.parse()?, json))
        }
        _ => Err("usage: rmcp-interop-server stdio | http PORT [--json]".into()),
    }
}
