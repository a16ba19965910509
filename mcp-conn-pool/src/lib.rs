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
mod monitor;
mod pool;

use std::path::Path;

pub use catalog::{Collision, QualifiedTool, ToolCatalog};
pub use config::{parse_config, ServerConfig, ServerTransport};
pub use error::{Error, PoolConfigError};
pub use pool::{ConnectionPool, PoolConfig, PoolEvent, PoolHealth};

impl ConnectionPool {
    /// A pool of the enabled servers of an `mcpServers` document, with the
    /// default [`PoolConfig`]. `${VAR}` is read from this process's
    /// environment. Nothing is started until the servers are used.
    pub fn from_config_str(json: &str) -> Result<Self, Error> {
        Self::from_config_str_with(json, PoolConfig::default())
    }

    /// [`ConnectionPool::from_config_str`] with pool settings.
    pub fn from_config_str_with(json: &str, config: PoolConfig) -> Result<Self, Error> {
        let servers = parse_config(json, &config.default_connection, |v| std::env::var(v).ok())?;
        let pool = ConnectionPool::with_config(config);
        for server in servers.into_iter().filter(|s| !s.disabled) {
            add_server(&pool, server)?;
        }
        Ok(pool)
    }

    /// Reads the `mcpServers` document at `path`.
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            PoolConfigError::new("config", format!("cannot read {}: {e}", path.display()))
        })?;
        Self::from_config_str(&text)
    }
}

fn add_server(pool: &ConnectionPool, server: ServerConfig) -> Result<(), Error> {
    let path = format!("mcpServers.{}", server.name);
    match server.transport {
        #[cfg(feature = "stdio")]
        ServerTransport::Stdio {
            command,
            args,
            args_as_written,
            env,
            cwd,
        } => {
            let mut t = mcp_transport_stdio::StdioTransport::new(command, args)
                .args_as_written(args_as_written)
                .envs(env)
                .name(server.name.clone());
            if let Some(cwd) = cwd {
                t = t.cwd(cwd);
            }
            pool.insert_with_config(server.name, t, server.connection)?;
            Ok(())
        }
        #[cfg(feature = "http")]
        ServerTransport::Http {
            url,
            headers,
            legacy_sse,
        } => {
            use mcp_transport_http::{HttpConfigError, HttpMode, HttpTransport};
            let mut b = HttpTransport::builder(url);
            for (k, v) in headers {
                b = b.header(k, v);
            }
            if legacy_sse {
                b = b.mode(HttpMode::LegacySse);
            }
            let t = b.build().map_err(|e| {
                let field = match &e {
                    HttpConfigError::InvalidHeader { name, .. }
                    | HttpConfigError::ReservedHeader { name } => format!("{path}.headers.{name}"),
                    HttpConfigError::InvalidUrl { .. } => format!("{path}.url"),
                    _ => path.clone(),
                };
                PoolConfigError::new(field, e.to_string())
            })?;
            pool.insert_with_config(server.name, t, server.connection)?;
            Ok(())
        }
        #[allow(unreachable_patterns)]
        _ => {
            let _ = pool;
            Err(PoolConfigError::new(
                path,
                "this kind of server is not compiled in (cargo features `stdio`, `http`)",
            )
            .into())
        }
    }
}
