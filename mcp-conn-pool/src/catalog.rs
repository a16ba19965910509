//! The tool catalog: every connected server's tools under qualified names.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use futures_util::StreamExt;
use mcp_conn_core::protocol::{CallToolResult, Tool};
use mcp_conn_core::ConnectionStatus;
use serde_json::Value;

use crate::error::Error;
use crate::pool::ConnectionPool;

/// A tool under its qualified name, `server` + separator + `tool`.
#[derive(Debug, Clone, PartialEq)]
pub struct QualifiedTool {
    /// `server__tool` (with the configured separator).
    pub qualified_name: String,
    /// The server it lives on.
    pub server: String,
    /// The tool as the server describes it.
    pub tool: Tool,
}

/// Two tools that would share a qualified name (possible when a server name
/// contains the separator). The server whose name sorts first keeps it; the
/// other tool is left out of the catalog, and reachable with
/// [`ConnectionPool::call_tool_on`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    /// The contested name.
    pub qualified_name: String,
    /// The server that keeps it.
    pub kept: String,
    /// The server whose tool was left out.
    pub dropped: String,
    /// The left-out tool's own name.
    pub tool: String,
}

/// What [`ConnectionPool::list_tools`] found.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ToolCatalog {
    /// Every tool, sorted by qualified name.
    pub tools: Vec<QualifiedTool>,
    /// Names two servers wanted (see [`Collision`]).
    pub collisions: Vec<Collision>,
    /// Connected servers whose tools could not be listed, with why.
    pub failed: Vec<(String, mcp_conn_core::Error)>,
}

/// Which session and which `list_changed` count a cached list belongs to.
type Generation = (u64, u64);

pub(crate) struct Catalog {
    separator: String,
    cache: Mutex<HashMap<String, (Generation, Vec<Tool>)>>,
    routes: Mutex<HashMap<String, (String, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Catalog {
    pub(crate) fn new(separator: String) -> Self {
        Catalog {
            separator,
            cache: Mutex::new(HashMap::new()),
            routes: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn forget(&self, server: &str) {
        lock(&self.cache).remove(server);
        lock(&self.routes).retain(|_, (s, _)| s != server);
    }
}

impl ConnectionPool {
    /// Every connected server's tools under qualified names. Each server's
    /// list is cached, and fetched again after that server sends
    /// `notifications/tools/list_changed` or reconnects.
    pub async fn list_tools(&self) -> ToolCatalog {
        let catalog = &self.inner().catalog;
        let connected: Vec<_> = self
            .all_connections()
            .into_iter()
            .filter(|(_, c)| c.status() == ConnectionStatus::Connected)
            .collect();
        let fetched: Vec<(String, Result<Vec<Tool>, mcp_conn_core::Error>)> =
            futures_util::stream::iter(connected)
                .map(|(name, conn)| async move {
                    let info = conn.info();
                    let generation = (info.connection_count, info.metrics.tools_list_changed);
                    if let Some((g, tools)) = lock(&catalog.cache).get(&name) {
                        if *g == generation {
                            return (name, Ok(tools.clone()));
                        }
                    }
                    let listed = match conn.client() {
                        Ok(client) => client.list_tools().await,
                        Err(e) => Err(e),
                    };
                    if let Ok(tools) = &listed {
                        lock(&catalog.cache).insert(name.clone(), (generation, tools.clone()));
                    }
                    (name, listed)
                })
                .buffer_unordered(self.config().max_concurrent_connects.max(1))
                .collect()
                .await;

        let mut servers: Vec<(String, Vec<Tool>)> = Vec::new();
        let mut out = ToolCatalog::default();
        for (name, listed) in fetched {
            match listed {
                Ok(tools) => servers.push((name, tools)),
                Err(e) => out.failed.push((name, e)),
            }
        }
        servers.sort_by(|a, b| a.0.cmp(&b.0));
        let mut routes: HashMap<String, (String, String)> = HashMap::new();
        for (server, tools) in servers {
            for tool in tools {
                let qualified_name = format!("{server}{}{}", catalog.separator, tool.name);
                if let Some((kept, _)) = routes.get(&qualified_name) {
                    tracing::warn!(%qualified_name, %kept, dropped = %server, "tool name collision");
                    out.collisions.push(Collision {
                        qualified_name,
                        kept: kept.clone(),
                        dropped: server.clone(),
                        tool: tool.name.clone(),
                    });
                    continue;
                }
                routes.insert(qualified_name.clone(), (server.clone(), tool.name.clone()));
                out.tools.push(QualifiedTool {
                    qualified_name,
                    server: server.clone(),
                    tool,
                });
            }
        }
        out.tools
            .sort_by(|a, b| a.qualified_name.cmp(&b.qualified_name));
        out.failed.sort_by(|a, b| a.0.cmp(&b.0));
        *lock(&catalog.routes) = routes;
        out
    }

    /// Calls a tool by its qualified name (as [`ConnectionPool::list_tools`]
    /// gives it), on the server it belongs to.
    pub async fn call_tool(
        &self,
        qualified: &str,
        arguments: Value,
    ) -> Result<CallToolResult, Error> {
        let route = lock(&self.inner().catalog.routes).get(qualified).cloned();
        let route = match route {
            Some(r) => Some(r),
            None => {
                self.list_tools().await;
                lock(&self.inner().catalog.routes).get(qualified).cloned()
            }
        };
        let (server, tool) = route.ok_or_else(|| Error::UnknownTool {
            qualified: qualified.to_owned(),
        })?;
        self.call_tool_on(&server, &tool, arguments).await
    }

    /// Calls `tool` on `server` (connecting it first if need be).
    pub async fn call_tool_on(
        &self,
        server: &str,
        tool: &str,
        arguments: Value,
    ) -> Result<CallToolResult, Error> {
        let client = self.client(server).await?;
        Ok(client.call_tool(tool, arguments).await?)
    }
}
