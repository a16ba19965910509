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
use mcp_conn_core::{Connection, PendingProbe, ProbeResult, ProbeStart};
use tokio::sync::mpsc;
use tokio::time::Instant;
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

/// A server the monitor probes.
struct Probed {
    /// Weak: a server removed from the pool is not kept alive by its
    /// schedule.
    conn: Weak<Connection>,
    interval: Duration,
    /// Its next probe, unless one runs now.
    next: Option<delay_queue::Key>,
}

/// The longest step of the grid probes are due on.
const MAX_TICK: Duration = Duration::from_millis(20);

/// When a probe `delay` from now is due: rounded up to the grid of
/// `interval / 50` (at most [`MAX_TICK`]) counted from `origin`. Probes due
/// within one step run together, so 10,000 servers probed every second
/// wake the runtime 50 times a second instead of at every millisecond (each
/// wakeup of an idle runtime costs tens of microseconds of CPU), for a
/// probe at most 2 % of its interval late.
pub(crate) fn due_on_grid(
    origin: Instant,
    now: Instant,
    delay: Duration,
    interval: Duration,
) -> Instant {
    let at = now + delay;
    let tick = (interval / 50).min(MAX_TICK).as_nanos();
    if tick == 0 || at <= origin {
        return at;
    }
    let since = (at - origin).as_nanos();
    let steps = since.div_ceil(tick);
    let aligned = steps.saturating_mul(tick);
    match u64::try_from(aligned) {
        Ok(nanos) => origin + Duration::from_nanos(nanos),
        Err(_) => at,
    }
}

/// How often light probes still unanswered are looked at for their
/// deadlines. Their answers wake the monitor themselves (one wake-up for
/// many answers).
const CHECK_EVERY: Duration = Duration::from_millis(50);

/// A light probe in flight ([`Connection::start_probe`]).
struct Waiting {
    name: Arc<str>,
    conn: Arc<Connection>,
    probe: PendingProbe,
}

/// The schedule and the table of probed servers.
struct Servers {
    schedule: DelayQueue<Arc<str>>,
    table: HashMap<Arc<str>, Probed>,
    rng: fastrand::Rng,
    origin: Instant,
    jitter: f64,
}

impl Servers {
    /// A probe of `name` (the connection `probed`) finished: tell the
    /// pool's listeners and schedule the next one. `false`: the pool is
    /// gone.
    fn finished(
        &mut self,
        pool: &Weak<PoolInner>,
        name: Arc<str>,
        probed: &Connection,
        result: ProbeResult,
    ) -> bool {
        let Some(inner) = pool.upgrade() else {
            return false;
        };
        // Removed while its probe ran (or removed and added again): no
        // result, no next probe for the old one.
        let Some(server) = self
            .table
            .get_mut(&name)
            .filter(|s| s.next.is_none() && std::ptr::eq(s.conn.as_ptr(), probed))
        else {
            return true;
        };
        if inner.events.receiver_count() > 0 {
            let _ = inner.events.send(PoolEvent::Probed {
                name: name.to_string(),
                ok: result.ok,
                latency: result.latency,
                error: result.error,
            });
        }
        drop(inner);
        let delay = jittered(server.interval, self.jitter, &mut self.rng);
        let at = due_on_grid(self.origin, Instant::now(), delay, server.interval);
        server.next = Some(self.schedule.insert_at(name, at));
        true
    }
}

pub(crate) async fn run(
    pool: Weak<PoolInner>,
    mut cmds: mpsc::UnboundedReceiver<MonitorCmd>,
    cancel: CancellationToken,
    max_probes: usize,
    jitter: f64,
) {
    // The schedule and the table hold the name as an `Arc<str>`, and the
    // table holds the connection: a probe clones no string and looks
    // nothing up in the pool.
    let mut servers = Servers {
        schedule: DelayQueue::new(),
        table: HashMap::new(),
        rng: fastrand::Rng::new(),
        origin: Instant::now(),
        jitter,
    };
    // Probes that run as futures here (`scheduled_probe`: the stateless
    // era, `ListTools`), and light probes waiting to be looked at.
    let mut probes = FuturesUnordered::new();
    let mut waiting: Vec<Waiting> = Vec::new();
    let answered = Arc::new(tokio::sync::Notify::new());
    let check = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(check);
    let mut check_armed = false;
    // Tool rechecks (after a reconnect or a `tools/list_changed`), one per
    // server at a time; a trigger during one runs it again after.
    let mut rechecks = FuturesUnordered::new();
    let mut rechecking: HashSet<String> = HashSet::new();
    let mut again: HashSet<String> = HashSet::new();
    let max_probes = max_probes.max(1);
    // Made once: a fresh `cancelled()` per wakeup would register with the
    // token again each time.
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    'monitor: loop {
        if !waiting.is_empty() && !check_armed {
            check.as_mut().reset(Instant::now() + CHECK_EVERY);
            check_armed = true;
        }
        tokio::select! {
            biased;
            () = &mut cancelled => break,
            cmd = cmds.recv() => match cmd {
                None => break,
                Some(MonitorCmd::Add(name, interval)) => {
                    let Some(inner) = pool.upgrade() else { break };
                    let conn = inner.get(&name);
                    drop(inner);
                    let name: Arc<str> = Arc::from(name);
                    if let Some(old) = servers.table.remove(&name) {
                        if let Some(key) = old.next {
                            servers.schedule.remove(&key);
                        }
                    }
                    let delay = jittered(interval, jitter, &mut servers.rng);
                    let at = due_on_grid(servers.origin, Instant::now(), delay, interval);
                    let key = servers.schedule.insert_at(name.clone(), at);
                    servers.table.insert(
                        name,
                        Probed {
                            conn: conn.as_ref().map_or_else(Weak::new, Arc::downgrade),
                            interval,
                            next: Some(key),
                        },
                    );
                    // The listener set at insert brings `tools/list_changed`;
                    // in the stateless era a listen stream must ask for it.
                    if let Some(conn) = conn {
                        conn.listen_for_changes().await;
                    }
                }
                Some(MonitorCmd::Remove(name)) => {
                    if let Some(old) = servers.table.remove(name.as_str()) {
                        if let Some(key) = old.next {
                            servers.schedule.remove(&key);
                        }
                    }
                    again.remove(&name);
                }
                Some(MonitorCmd::Recheck(name, queued)) => {
                    if let Some(queued) = queued {
                        queued.store(false, Ordering::Release);
                    }
                    if !servers.table.contains_key(name.as_str()) {
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
                    if servers.table.contains_key(name.as_str()) {
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
                let (name, conn, result): (Arc<str>, Arc<Connection>, ProbeResult) = done;
                if !servers.finished(&pool, name, &conn, result) {
                    break;
                }
            }
            () = async {
                tokio::select! {
                    () = answered.notified() => {}
                    () = &mut check, if check_armed => {}
                }
            }, if !waiting.is_empty() => {
                if check.is_elapsed() {
                    check_armed = false;
                }
                let now = Instant::now();
                // Every waiting probe looked at once; the undecided wait on.
                for Waiting { name, conn, probe } in std::mem::take(&mut waiting) {
                    match conn.check_probe(probe, now) {
                        Ok(result) => {
                            if !servers.finished(&pool, name, &conn, result) {
                                break 'monitor;
                            }
                        }
                        Err(probe) => waiting.push(Waiting { name, conn, probe }),
                    }
                }
            }
            Some(expired) = servers.schedule.next(), if probes.len() + waiting.len() < max_probes => {
                let name = expired.into_inner();
                if pool.strong_count() == 0 {
                    break;
                }
                let Some(server) = servers.table.get_mut(&name) else { continue };
                server.next = None;
                // A connection gone from the pool gets no probe and no next
                // one (its `Remove` is on its way).
                let Some(conn) = server.conn.upgrade() else { continue };
                match conn.start_probe(Some(answered.clone())) {
                    ProbeStart::Sent(probe) => waiting.push(Waiting { name, conn, probe }),
                    ProbeStart::Finished(result) => {
                        if !servers.finished(&pool, name, &conn, result) {
                            break;
                        }
                    }
                    _ => probes.push(async move {
                        let result = conn.scheduled_probe().await;
                        (name, conn, result)
                    }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_due_on_a_grid_never_early_and_at_most_one_step_late() {
        let origin = Instant::now();
        let interval = Duration::from_secs(1);
        let step = Duration::from_millis(20);
        for ms in [0u64, 1, 19, 20, 21, 999, 1001, 12_345] {
            let now = origin + Duration::from_millis(ms);
            let delay = Duration::from_millis(950) + Duration::from_micros(ms * 7);
            let due = due_on_grid(origin, now, delay, interval);
            assert!(due >= now + delay, "never early");
            assert!(due - (now + delay) < step, "at most one step late");
            assert_eq!(
                (due - origin).as_nanos() % step.as_nanos(),
                0,
                "on the grid"
            );
        }
        // A short interval gets a finer grid: 100 ms -> 2 ms steps.
        let due = due_on_grid(
            origin,
            origin,
            Duration::from_millis(101),
            Duration::from_millis(100),
        );
        assert_eq!(due - origin, Duration::from_millis(102));
        // A zero interval has no grid.
        let due = due_on_grid(origin, origin, Duration::from_nanos(5), Duration::ZERO);
        assert_eq!(due - origin, Duration::from_nanos(5));
    }
}
