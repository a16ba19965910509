//! # mcp-conn-testkit
//!
//! Test tools for mcp-conn (not published):
//! - [`fake_server`]: a small MCP server over stdio with fault modes, run as
//!   the `fake-mcp-server` binary or from any program that re-executes itself;
//! - [`auth_server`]: an OAuth authorization server with a protected MCP
//!   endpoint, in process, for the OAuth client's tests;
//! - [`tls`]: a certificate authority made by the test, the certificates it
//!   issues, and server configurations for the HTTPS test server;
//! - [`proxy`]: a small HTTP proxy (`CONNECT` tunnels and forwarding), with
//!   optional Basic credentials and a refusing mode, counting what it did;
//! - [`alloc`]: a counting global allocator and the resident set size, for
//!   benchmarks and soak tests that measure memory;
//! - [`leaks`]: counts of open file descriptors and child processes, to assert
//!   that nothing is left behind.
//!
//! The fault-matrix tests live in this crate's `tests/` folder, where Cargo
//! provides the binary's path.
#![deny(missing_docs)]

pub mod alloc;
pub mod auth_server;
pub mod fake_server;
mod fake_stateless;
pub mod http_server;
mod http_stateless;
pub mod leaks;
pub mod proxy;
pub mod tls;
