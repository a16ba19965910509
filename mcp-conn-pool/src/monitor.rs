//! The pool's one health monitor: a schedule of next-probe times in a
//! `DelayQueue`, probes run as futures inside this one task, at most
//! `max_concurrent_probes` at a time.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use mcp_conn_core::{Connection, HealthReport};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::time::{delay_queue, DelayQueue};

use crate::catalog::ToolSetDiff;
use crate::event::PoolEvent;
use crate::pool::PoolInner;

/// What the pool tells its monitor.
#[derive(Debug)]
pub(crate) enum MonitorCmd {
    /// Start probing this server every `interval`.
    Add(String, Duration),
    /// Stop probing it.
    Remove(String),
    /// It (re)connected, or sent `tools/list_changed`: compare its tools
    /// with the cached list. The flag, when given, is cleared on receipt:
    /// the sender queues no other recheck for that server before.
    Recheck(String, Option<Arc<AtomicBool>>),
}

/// `interval` spread by up to ±`jitter` (a fraction), so 1,000 servers added
/// at once are not probed in the same instant.
pub(crate) fn jittered(interval: Duration, jitter: f64, rng: &mut fastrand::Rng) -> Duration {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    if jitter == 0.0 {
        return interval;
    }
    interval.mul_f64(1.0 + jitter * (2.0 * rng.f64() - 1.0))
}

pub(crate) async fn run(
    pool: Weak<PoolInner>,
    mut cmds: mpsc::UnboundedReceiver<MonitorCmd>,
    cancel: CancellationToken,
    max_probes: usize,
    jitter: f64,
) {
    let mut schedule: DelayQueue<String> = DelayQueue::new();
    let mut keys: HashMap<String, (delay_queue::Key, Duration)> = HashMap::new();
    let mut intervals: HashMap<String, Duration> = HashMap::new();
    let mut probes = FuturesUnordered::new();
    // Tool rechecks (after a reconnect or a `tools/list_changed`), one per
    // server at a time; a trigger during one runs it again after.
    let mut rechecks = FuturesUnordered::new();
    let mut rechecking: HashSet<String> = HashSet::new();
    let mut again: HashSet<String> = HashSet::new();
    let mut rng = fastrand::Rng::new();
    let max_probes = max_probes.max(1);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            cmd = cmds.recv() => match cmd {
                None => break,
                Some(MonitorCmd::Add(name, interval)) => {
                    if let Some((key, _)) = keys.remove(&name) {
                        schedule.remove(&key);
                    }
                    let key = schedule.insert(name.clone(), jittered(interval, jitter, &mut rng));
                    keys.insert(name.clone(), (key, interval));
                    intervals.insert(name.clone(), interval);
                    let Some(pool) = pool.upgrade() else { break };
                    // The listener set at insert brings `tools/list_changed`;
                    // in the stateless era a listen stream must ask for it.
                    if let Some(conn) = pool.get(&name) {
                        conn.listen_for_changes().await;
                    }
                }
                Some(MonitorCmd::Remove(name)) => {
                    if let Some((key, _)) = keys.remove(&name) {
                        schedule.remove(&key);
                    }
                    intervals.remove(&name);
                    again.remove(&name);
                }
                Some(MonitorCmd::Recheck(name, queued)) => {
                    if let Some(queued) = queued {
                        queued.store(false, Ordering::Release);
                    }
                    if !intervals.contains_key(&name) {
                        continue;
                    }
                    if rechecking.contains(&name) {
                        again.insert(name);
                    } else if let Some(f) = recheck(&pool, name.clone()) {
                        rechecking.insert(name);
                        rechecks.push(f);
                    }
                }
            },
            Some((name, diff)) = rechecks.next(), if !rechecks.is_empty() => {
                rechecking.remove(&name);
                let Some(inner) = pool.upgrade() else { break };
                if let Some(diff) = diff {
                    if intervals.contains_key(&name) {
                        let _ = inner.events.send(PoolEvent::ToolsChanged { name: name.clone(), diff });
                    }
                }
                drop(inner);
                if again.remove(&name) {
                    if let Some(f) = recheck(&pool, name.clone()) {
                        rechecking.insert(name);
                        rechecks.push(f);
                    }
                }
            }
            Some(done) = probes.next(), if !probes.is_empty() => {
                let (name, report): (String, HealthReport) = done;
                let Some(pool) = pool.upgrade() else { break };
                // Removed while its probe ran: no result, no next probe.
                if let Some(interval) = intervals.get(&name).copied() {
                    let _ = pool.events.send(PoolEvent::Probed {
                        name: name.clone(),
                        ok: report.ok,
                        latency: report.latency,
                        error: report.error.clone(),
                    });
                    let key = schedule.insert(name.clone(), jittered(interval, jitter, &mut rng));
                    keys.insert(name, (key, interval));
                }
            }
            Some(expired) = schedule.next(), if probes.len() < max_probes => {
                let name = expired.into_inner();
                keys.remove(&name);
                let Some(pool) = pool.upgrade() else { break };
                let conn: Option<Arc<Connection>> = pool.get(&name);
                drop(pool);
                if let Some(conn) = conn {
                    probes.push(async move {
                        let report = conn.scheduled_health_check().await;
                        (name, report)
                    });
                }
            }
        }
    }
    tracing::debug!("pool monitor stopped");
}

type Recheck = Pin<Box<dyn Future<Output = (String, Option<ToolSetDiff>)> + Send>>;

/// A recheck of one server's tools, run as a future inside the monitor.
fn recheck(pool: &Weak<PoolInner>, name: String) -> Option<Recheck> {
    let pool = pool.upgrade()?;
    let conn = pool.get(&name)?;
    // The catalog, not the pool: a recheck never keeps a dropped pool alive.
    let catalog = pool.catalog.clone();
    Some(Box::pin(async move {
        let diff = catalog.recheck(&name, &conn).await;
        (name, diff)
    }))
}
