//! The tool catalog: every connected server's tools under qualified names,
//! cached per server (by session and `list_changed` count), and the routes
//! from a qualified name back to its server. A component of its own: the
//! pool hands it the connected servers and asks it for routes.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::time::Instant;

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

/// How one server's tool set changed between two listings, by tool name
/// (each list sorted). A tool counts as changed when anything of its
/// definition differs: description, title, input or output schema,
/// annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ToolSetDiff {
    /// Tools the server offers now and did not before.
    pub added: Vec<String>,
    /// Tools it no longer offers.
    pub removed: Vec<String>,
    /// Tools it still offers with another definition.
    pub changed: Vec<String>,
}

impl ToolSetDiff {
    /// The difference from `old` to `new`.
    ///
    /// ```
    /// # use mcp_conn_core::protocol::Tool;
    /// # use mcp_conn_pool::ToolSetDiff;
    /// let tool = |name: &str, description: &str| -> Tool {
    ///     serde_json::from_value(serde_json::json!({
    ///         "name": name, "description": description, "inputSchema": {"type": "object"}
    ///     })).unwrap()
    /// };
    /// let old = [tool("read", "reads"), tool("write", "writes")];
    /// let new = [tool("read", "reads a file"), tool("list", "lists")];
    /// let diff = ToolSetDiff::between(&old, &new);
    /// assert_eq!(diff.added, ["list"]);
    /// assert_eq!(diff.removed, ["write"]);
    /// assert_eq!(diff.changed, ["read"]);
    /// ```
    pub fn between(old: &[Tool], new: &[Tool]) -> Self {
        let find = |tools: &[Tool], name: &str| tools.iter().position(|t| t.name == name);
        let mut diff = ToolSetDiff::default();
        for tool in new {
            match find(old, &tool.name) {
                None => diff.added.push(tool.name.clone()),
                Some(i) if old[i] != *tool => diff.changed.push(tool.name.clone()),
                Some(_) => {}
            }
        }
        for tool in old {
            if find(new, &tool.name).is_none() {
                diff.removed.push(tool.name.clone());
            }
        }
        diff.added.sort();
        diff.removed.sort();
        diff.changed.sort();
        diff
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Which session and which `list_changed` count a cached list belongs to.
type Generation = (u64, u64);

/// One server's cached tool list.
struct Cached {
    generation: Generation,
    tools: Vec<Tool>,
    /// When the server's `ttlMs` (2026-07-28) runs out, if it gave one.
    expires: Option<Instant>,
}

pub(crate) struct Catalog {
    separator: String,
    cache: Mutex<HashMap<String, Cached>>,
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

    /// A server's tools: from the cache while its session and
    /// `list_changed` count are unchanged and the list's `ttlMs` (if the
    /// server gave one) has not run out, else listed again. When a list was
    /// cached before and the new one differs, the difference comes too.
    async fn fetch(
        &self,
        name: &str,
        conn: &Connection,
    ) -> Result<(Vec<Tool>, Option<ToolSetDiff>), mcp_conn_core::Error> {
        let info = conn.info();
        let generation = (info.connection_count, info.metrics.tools_list_changed);
        if let Some(c) = self.cache.lock().get(name) {
            let fresh = c.expires.map_or(true, |at| Instant::now() < at);
            if c.generation == generation && fresh {
                return Ok((c.tools.clone(), None));
            }
        }
        let (tools, ttl) = conn.client()?.list_tools_for_caching().await?;
        let cached = Cached {
            generation,
            tools: tools.clone(),
            expires: ttl.and_then(|ttl| Instant::now().checked_add(ttl)),
        };
        let old = self.cache.lock().insert(name.to_owned(), cached);
        let diff = old
            .map(|old| ToolSetDiff::between(&old.tools, &tools))
            .filter(|d| !d.is_empty());
        Ok((tools, diff))
    }

    /// After a reconnect or a `list_changed`: lists the server's tools
    /// again if a list of them was cached (else nobody has seen them yet,
    /// and there is nothing to compare), and returns how they changed.
    pub(crate) async fn recheck(&self, name: &str, conn: &Connection) -> Option<ToolSetDiff> {
        if !self.cache.lock().contains_key(name) {
            return None;
        }
        match self.fetch(name, conn).await {
            Ok((_, diff)) => diff,
            Err(e) => {
                tracing::debug!(server = %name, error = %e, "could not list tools again");
                None
            }
        }
    }

    /// Lists the tools of the `connected` servers (`concurrency` at a time),
    /// from the cache where a server's session and `list_changed` count are
    /// unchanged, and rebuilds the routes. Also returns the servers whose
    /// tools changed since they were last listed.
    pub(crate) async fn refresh(
        &self,
        connected: Vec<(String, Arc<Connection>)>,
        concurrency: usize,
    ) -> (ToolCatalog, Vec<(String, ToolSetDiff)>) {
        let catalog = self;
        type Fetched = Result<(Vec<Tool>, Option<ToolSetDiff>), mcp_conn_core::Error>;
        let fetched: Vec<(String, Fetched)> = futures_util::stream::iter(connected)
            .map(|(name, conn)| async move {
                let listed = catalog.fetch(&name, &conn).await;
                (name, listed)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;

        let mut servers: Vec<(String, Vec<Tool>)> = Vec::new();
        let mut diffs = Vec::new();
        let mut out = ToolCatalog::default();
        for (name, listed) in fetched {
            match listed {
                Ok((tools, diff)) => {
                    if let Some(diff) = diff {
                        diffs.push((name.clone(), diff));
                    }
                    servers.push((name, tools));
                }
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
        (out, diffs)
    }
}
