//! Applying a config to a running pool: what to add, remove and replace,
//! decided before anything is touched, and a watcher that applies a file
//! again when it changes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Weak;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
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
