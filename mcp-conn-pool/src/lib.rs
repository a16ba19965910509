//! # mcp-conn-pool
//!
//! A keyed pool of named MCP connections behind one shared health monitor,
//! built in code or from the `mcpServers` JSON that desktop MCP hosts use.
//!
//! - [`ConnectionPool`]: insert, remove, get, `client(name)` (connects on
//!   first use), `connect_all()` (concurrent, bounded), `shutdown()`.
//! - One monitor task for the whole pool: a `DelayQueue` of next-probe times
//!   with jitter, probes bounded, holding only a `Weak` to the pool. Pooled
//!   connections have no monitor tasks of their own.
//! - [`PoolEvent`]s: status changes (in order), probe results, added, removed.
//! - A tool catalog under qualified names (`server__tool`), cached per server
//!   and refreshed after `tools/list_changed` or a reconnect.
//!
//! Features `stdio` and `http` (both on by default) let a config name
//! servers of either kind; without `http` no HTTP stack is compiled.
#![deny(missing_docs)]

mod catalog;
pub mod config;
mod error;
mod event;
mod monitor;
mod pool;
mod settings;

pub use catalog::{Collision, QualifiedTool, ToolCatalog};
pub use config::{parse_config, ServerConfig, ServerTransport};
pub use error::{Error, PoolConfigError};
pub use event::{PoolEvent, PoolHealth};
pub use pool::ConnectionPool;
pub use settings::PoolConfig;
