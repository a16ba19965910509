//! Streamable HTTP (and the legacy HTTP+SSE fallback) against the scripted
//! test server in `mcp_conn_testkit::http_server`. One test binary, with a
//! module per concern.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod eras;
mod failures;
mod legacy;
mod load;
mod proxy;
mod sessions;
mod streams;
mod tls;

use common::within;
use mcp_conn_core::{Connection, ConnectionStatus, Error, TransportError};
use mcp_conn_testkit::http_server::{Behavior, Recorded, Reply, TestHttpServer};
use mcp_transport_http::HttpTransport;
use serde_json::json;

/// A test server with `behavior`.
async fn server(behavior: Behavior) -> TestHttpServer {
    TestHttpServer::start(behavior)
        .await
        .expect("the test server starts")
}

/// A connection with fast test settings to `url`, default transport.
fn connection(url: &str) -> Connection {
    Connection::with_config(
        "web",
        HttpTransport::new(url).expect("valid url"),
        common::config(),
    )
}

/// A test server replying in `reply` mode (its other settings the
/// defaults), and a connection to it.
async fn replying(reply: Reply) -> (TestHttpServer, Connection) {
    let srv = server(Behavior {
        reply,
        ..Default::default()
    })
    .await;
    let conn = connection(&srv.url());
    (srv, conn)
}

/// What the server recorded after the era probe: the probe
/// (`server/discover`, answered `-32601` by this handshake-era server) must
/// be the first request, and is left out.
fn after_probe(srv: &TestHttpServer) -> Vec<Recorded> {
    let mut reqs = srv.requests();
    assert_eq!(
        reqs.first().and_then(Recorded::rpc_method),
        Some("server/discover"),
        "the era probe comes first"
    );
    reqs.remove(0);
    reqs
}

/// Calls the `echo` tool and returns its text.
async fn echo(conn: &Connection, text: &str) -> String {
    let client = conn.client().expect("connected");
    within("echo", client.call_tool("echo", json!({ "text": text })))
        .await
        .expect("answered")
        .text()
}

/// The transport's error behind `err`, which must have one.
fn transport_error(err: &Error) -> &TransportError {
    err.transport_error()
        .unwrap_or_else(|| panic!("not a transport error: {err}"))
}

/// Whether `err` is a failure to connect: the link could not be opened, or
/// was lost during the handshake (both are `Connect`, on every transport).
fn is_connect_failure(err: &Error) -> bool {
    matches!(err, Error::Connect { .. })
}

/// A port of 127.0.0.1 that nothing listens on: bound, read, closed.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Why a connection whose handshake is refused at its end (the
/// `notifications/initialized` POST) failed: from `connect()` if it waits
/// for that POST, else from the session it made, once the link is lost.
async fn handshake_error(conn: &Connection) -> Error {
    match within("connect", conn.connect()).await {
        Err(err) => err,
        Ok(client) => {
            common::wait_status(conn, ConnectionStatus::Error).await;
            within("ping", client.ping()).await.expect_err("lost")
        }
    }
}
