//! The tool catalog: every connected server's tools under qualified names,
//! cached per server (by session and `list_changed` count), and the routes
//! from a qualified name back to its server. A component of its own: the
//! pool hands it the connected servers and asks it for routes.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use futures_util::StreamExt;
use mcp_conn_core::protocol::Tool;
use mcp_conn_core::Connection;

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
/// [`crate::ConnectionPool::call_tool_on`].
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

/// What [`crate::ConnectionPool::list_tools`] found.
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

impl Catalog {
    pub(crate) fn new(separator: String) -> Self {
        Catalog {
            separator,
            cache: Mutex::new(HashMap::new()),
            routes: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn forget(&self, server: &str) {
        self.cache.lock().remove(server);
        self.routes.lock().retain(|_, (s, _)| s != server);
    }

    /// The server and tool behind a qualified name, as of the last refresh.
    pub(crate) fn route(&self, qualified: &str) -> Option<(String, String)> {
        self.routes.lock().get(qualified).cloned()
    }

    /// Lists the tools of the `connected` servers (`concurrency` at a time),
    /// from the cache where a server's session and `list_changed` count are
    /// unchanged, and rebuilds the routes.
    pub(crate) async fn refresh(
        &self,
        connected: Vec<(String, Arc<Connection>)>,
        concurrency: usize,
    ) -> ToolCatalog {
        let catalog = self;
        let fetched: Vec<(String, Result<Vec<Tool>, mcp_conn_core::Error>)> =
            futures_util::stream::iter(connected)
                .map(|(name, conn)| async move {
                    let info = conn.info();
                    let generation = (info.connection_count, info.metrics.tools_list_changed);
                    if let Some((g, tools)) = catalog.cache.lock().get(&name) {
                        if *g == generation {
                            return (name, Ok(tools.clone()));
                        }
                    }
                    let listed = match conn.client() {
                        Ok(client) => client.list_tools().await,
                        Err(e) => Err(e),
                    };
                    if let Ok(tools) = &listed {
                        catalog
                            .cache
                            .lock()
                            .insert(name.clone(), (generation, tools.clone()));
                    }
                    (name, listed)
                })
                .buffer_unordered(concurrency.max(1))
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
        *catalog.routes.lock() = routes;
        out
    }
}
