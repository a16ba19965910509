//! Applying a config to a running pool: what to add, remove and replace,
//! decided before anything is touched, and a watcher that applies a file
//! again when it changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use futures_util::StreamExt;

use crate::config::ServerConfig;
use crate::error::Error;
use crate::event::PoolEvent;
use crate::pool::{ConnectionPool, PoolInner};

/// What applying a config changed, by server name (each list sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigChanges {
    /// Servers the config added (now connected, or trying).
    pub added: Vec<String>,
    /// Servers the config no longer names, or now disables (shut down).
    pub removed: Vec<String>,
    /// Servers whose entry changed (shut down and started anew).
    pub changed: Vec<String>,
}

impl ConfigChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// What to do, decided from the servers the pool runs from a config
/// (`current`), the names of every server in the pool (`in_pool`), and the
/// enabled servers of the new config.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) add: Vec<ServerConfig>,
    pub(crate) remove: Vec<String>,
    pub(crate) replace: Vec<ServerConfig>,
}

impl Plan {
    pub(crate) fn new(
        current: &BTreeMap<String, ServerConfig>,
        in_pool: &[String],
        new: Vec<ServerConfig>,
    ) -> Plan {
        let mut plan = Plan::default();
        let wanted: Vec<&str> = new.iter().map(|s| s.name.as_str()).collect();
        // Servers added in code (not from a config) are the caller's: a
        // config that does not name them leaves them alone.
        plan.remove = current
            .keys()
            .filter(|name| !wanted.contains(&name.as_str()))
            .cloned()
            .collect();
        for server in new {
            match current.get(&server.name) {
                Some(old) if old.same_as(&server) => {}
                Some(_) => plan.replace.push(server),
                // In the pool but added in code: the config takes it over.
                None if in_pool.contains(&server.name) => plan.replace.push(server),
                None => plan.add.push(server),
            }
        }
        plan
    }

    pub(crate) fn changes(&self) -> ConfigChanges {
        let names = |v: &[ServerConfig]| v.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        let mut changes = ConfigChanges {
            added: names(&self.add),
            removed: self.remove.clone(),
            changed: names(&self.replace),
        };
        changes.added.sort();
        changes.removed.sort();
        changes.changed.sort();
        changes
    }
}

/// Hot reload: applying a config to the running pool.
impl ConnectionPool {
    /// Applies an `mcpServers` document to the running pool (hot reload):
    /// servers it adds are inserted and connected, servers it no longer
    /// names (or disables) are shut down, servers whose entry changed
    /// (transport, arguments, environment, headers after `${VAR}`
    /// expansion, or connection settings) are replaced, and every other
    /// server is not touched, not even reconnected. Servers inserted in
    /// code and not named by the config are left alone.
    ///
    /// The whole document is checked, and every new transport built, before
    /// anything changes: a bad config changes nothing and returns the
    /// error. Returns what changed, also sent as
    /// [`PoolEvent::ConfigApplied`]. One apply runs at a time.
    pub async fn apply_config_str(&self, json: &str) -> Result<crate::ConfigChanges, Error> {
        self.apply_config_with(json, &crate::ConfigContext::default())
            .await
    }

    /// [`ConnectionPool::apply_config_str`] for a document read from a file
    /// (`context` resolves `envFile` and `${workspaceFolder}`).
    pub(crate) async fn apply_config_with(
        &self,
        json: &str,
        context: &crate::ConfigContext,
    ) -> Result<crate::ConfigChanges, Error> {
        let servers = crate::parse_config_with(
            json,
            &self.inner.config.default_connection,
            |v| std::env::var(v).ok(),
            context,
        )?;
        self.apply_servers(servers).await
    }

    /// [`ConnectionPool::apply_config_str`] for servers already read (as
    /// [`crate::parse_config`] gives them; disabled ones count as absent):
    /// for a host that merges several files into one pool.
    pub async fn apply_servers(
        &self,
        servers: Vec<ServerConfig>,
    ) -> Result<crate::ConfigChanges, Error> {
        let _one_at_a_time = self.inner.applying.lock().await;
        let enabled: Vec<ServerConfig> = servers.into_iter().filter(|s| !s.disabled).collect();
        let plan = {
            let current = self.inner.from_config.lock();
            crate::reload::Plan::new(&current, &self.names(), enabled)
        };
        let changes = plan.changes();
        let mut built = Vec::new();
        for server in plan.add.into_iter().chain(plan.replace) {
            let transport = server.transport.build(&server.name, &self.inner.config)?;
            built.push((server, transport));
        }
        let replaced: Vec<&str> = changes.changed.iter().map(String::as_str).collect();
        let gone = plan.remove.iter().map(String::as_str).chain(replaced);
        futures_util::future::join_all(gone.map(|name| self.remove(name))).await;
        let mut started = Vec::new();
        for (server, transport) in built {
            started.push(self.insert_built(server, transport)?);
        }
        futures_util::stream::iter(started)
            .for_each_concurrent(self.inner.config.max_concurrent_connects.max(1), |c| async move {
                if let Err(e) = c.connect().await {
                    tracing::warn!(server = %c.name(), error = %e, "a server the config added did not connect");
                }
            })
            .await;
        if !changes.is_empty() {
            tracing::info!(added = ?changes.added, removed = ?changes.removed, changed = ?changes.changed, "config applied");
        }
        let _ = self
            .inner
            .events
            .send(PoolEvent::ConfigApplied(changes.clone()));
        Ok(changes)
    }

    /// [`ConnectionPool::apply_config_str`] with the document at `path`.
    pub async fn apply_config_file(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<crate::ConfigChanges, Error> {
        let path = path.as_ref();
        let text = tokio::fs::read_to_string(path).await.map_err(|e| {
            crate::PoolConfigError::new("config", format!("cannot read {}: {e}", path.display()))
        })?;
        self.apply_config_with(&text, &crate::ConfigContext::for_file(path))
            .await
    }

    /// Watches the config file at `path` (opt-in): every `every` it is read,
    /// and when its contents changed it is applied
    /// ([`ConnectionPool::apply_config_str`]). A change that cannot be
    /// applied leaves the servers as they are and is reported as
    /// [`PoolEvent::ConfigRejected`]. Watching stops when the returned
    /// watcher is dropped or the pool is gone.
    ///
    /// # Panics
    /// Outside a Tokio runtime (it spawns the watching task).
    pub fn watch_config_file(
        &self,
        path: impl Into<std::path::PathBuf>,
        every: std::time::Duration,
    ) -> crate::ConfigWatcher {
        crate::ConfigWatcher::start(Arc::downgrade(&self.inner), path.into(), every)
    }
}

/// Applies a config file again whenever its contents change, until dropped
/// (see [`ConnectionPool::watch_config_file`]). Holds only a weak reference
/// to the pool: it stops by itself when the pool is gone.
#[derive(Debug)]
pub struct ConfigWatcher {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl ConfigWatcher {
    pub(crate) fn start(pool: Weak<PoolInner>, path: PathBuf, every: Duration) -> Self {
        let cancel = CancellationToken::new();
        // Read now, not when the task first runs: a change made right
        // after this call must be seen as a change.
        let applied = std::fs::read_to_string(&path).ok();
        let task = tokio::spawn(watch(pool, path, applied, every, cancel.clone()));
        ConfigWatcher { cancel, task }
    }

    /// Stops watching and waits for a change being applied to finish.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        let _ = (&mut self.task).await;
    }
}

impl Drop for ConfigWatcher {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn watch(
    pool: Weak<PoolInner>,
    path: PathBuf,
    mut applied: Option<String>,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let Some(inner) = pool.upgrade() else { return };
        let pool = ConnectionPool::from_inner(inner);
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(text) => text,
            Err(e) => {
                // A file being replaced may be missing for a moment: say
                // so once per change, keep the servers running.
                if applied.is_some() {
                    let _ = pool.events().send(PoolEvent::ConfigRejected {
                        error: format!("cannot read {}: {e}", path.display()),
                    });
                    applied = None;
                }
                continue;
            }
        };
        if applied.as_deref() == Some(text.as_str()) {
            continue;
        }
        let context = crate::ConfigContext::for_file(&path);
        tokio::select! {
            () = cancel.cancelled() => return,
            outcome = pool.apply_config_with(&text, &context) => {
                if let Err(e) = outcome {
                    tracing::warn!(path = %path.display(), error = %e, "config change refused; the servers keep running as they were");
                    let _ = pool.events().send(PoolEvent::ConfigRejected { error: e.to_string() });
                }
            }
        }
        applied = Some(text);
    }
}
