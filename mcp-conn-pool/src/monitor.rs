//! The pool's one health monitor: the servers' next probes in a
//! [`Schedule`], probes run inside this one task (light probes answered
//! through one `Notify`, the others as futures), at most
//! `max_concurrent_probes` at a time.

use std::collections::HashSet;
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

use crate::catalog::ToolSetDiff;
use crate::event::PoolEvent;
use crate::pool::PoolInner;
use crate::schedule::{Schedule, Slot};

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

/// How often light probes still unanswered are looked at for their
/// deadlines. Their answers wake the monitor themselves (one wake-up for
/// many answers).
const CHECK_EVERY: Duration = Duration::from_millis(50);

/// A light probe in flight ([`Connection::start_probe`]).
struct Waiting {
    slot: Slot,
    conn: Arc<Connection>,
    probe: PendingProbe,
}

/// A probe of `slot` ended: tells the pool's listeners and schedules the
/// next one. `false`: the pool is gone.
fn finished(
    pool: &Weak<PoolInner>,
    schedule: &mut Schedule,
    slot: Slot,
    result: ProbeResult,
    now: Instant,
) -> bool {
    let Some(inner) = pool.upgrade() else {
        return false;
    };
    // Removed while its probe ran (or removed and added again): no result,
    // no next probe for the old one.
    let Some(name) = schedule.finished(slot, now) else {
        return true;
    };
    // The name is copied only for a listener.
    if inner.events.receiver_count() > 0 {
        let _ = inner.events.send(PoolEvent::Probed {
            name: name.to_string(),
            ok: result.ok,
            latency: result.latency,
            error: result.error,
        });
    }
    true
}

/// Light probes in flight, and a spare list their undecided ones move to
/// when they are looked at (so looking allocates nothing).
#[derive(Default)]
struct Waitings {
    list: Vec<Waiting>,
    spare: Vec<Waiting>,
}

impl Waitings {
    /// Looks at every light probe in flight once; the decided ones are
    /// finished, the others wait on. `false`: the pool is gone.
    fn check(&mut self, pool: &Weak<PoolInner>, schedule: &mut Schedule) -> bool {
        let now = Instant::now();
        std::mem::swap(&mut self.list, &mut self.spare);
        let mut alive = true;
        for Waiting { slot, conn, probe } in self.spare.drain(..) {
            if !alive {
                continue;
            }
            match conn.check_probe(probe, now) {
                Ok(result) => alive = finished(pool, schedule, slot, result, now),
                Err(probe) => self.list.push(Waiting { slot, conn, probe }),
            }
        }
        alive
    }
}

pub(crate) async fn run(
    pool: Weak<PoolInner>,
    mut cmds: mpsc::UnboundedReceiver<MonitorCmd>,
    cancel: CancellationToken,
    max_probes: usize,
    jitter: f64,
) {
    // The schedule holds each server's name as an `Arc<str>` and its
    // connection: a probe clones no string and looks nothing up.
    let mut schedule = Schedule::new(jitter);
    // Probes that run as futures here (`scheduled_probe`: the stateless
    // era, `ListTools`), and light probes waiting to be looked at.
    let mut probes = FuturesUnordered::new();
    let mut waiting = Waitings::default();
    let answered = Arc::new(tokio::sync::Notify::new());
    // One `Notified` at a time, made anew after it fires: one made per turn
    // of the loop would join the `Notify`'s waiters and leave them again
    // each time. (An answer that comes while none waits leaves a permit.)
    let notified = answered.notified();
    tokio::pin!(notified);
    let check = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(check);
    let mut check_armed = false;
    // The next due bucket's timer, reset only when that instant changes.
    let tick = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(tick);
    let mut tick_at: Option<Instant> = None;
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
        // Start what is due, as many as the limit lets run at once.
        let now = Instant::now();
        schedule.take_due(now);
        while probes.len() + waiting.list.len() < max_probes {
            let Some(due) = schedule.next_ready() else {
                break;
            };
            if pool.strong_count() == 0 {
                break 'monitor;
            }
            // A connection gone from the pool gets no probe and no next
            // one (its `Remove` is on its way).
            let Some(conn) = due.conn.upgrade() else {
                continue;
            };
            let slot = due.slot;
            match conn.start_probe(Some(answered.clone())) {
                ProbeStart::Sent(probe) => waiting.list.push(Waiting { slot, conn, probe }),
                ProbeStart::Finished(result) => {
                    if !finished(&pool, &mut schedule, slot, result, now) {
                        break 'monitor;
                    }
                }
                _ => probes.push(async move {
                    let result = conn.scheduled_probe().await;
                    (slot, result)
                }),
            }
        }
        // Woken at the next due instant, unless probes already wait for a
        // free place (a probe that ends wakes the loop then).
        let wake_at = if schedule.has_ready() {
            None
        } else {
            schedule.earliest()
        };
        if wake_at != tick_at {
            if let Some(at) = wake_at {
                tick.as_mut().reset(at);
            }
            tick_at = wake_at;
        }
        if !waiting.list.is_empty() && !check_armed {
            check.as_mut().reset(now + CHECK_EVERY);
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
                    let weak = conn.as_ref().map_or_else(Weak::new, Arc::downgrade);
                    schedule.add(Arc::from(name), weak, interval);
                    // The listener set at insert brings `tools/list_changed`;
                    // in the stateless era a listen stream must ask for it.
                    if let Some(conn) = conn {
                        conn.listen_for_changes().await;
                    }
                }
                Some(MonitorCmd::Remove(name)) => {
                    schedule.remove(&name);
                    again.remove(&name);
                }
                Some(MonitorCmd::Recheck(name, queued)) => {
                    if let Some(queued) = queued {
                        queued.store(false, Ordering::Release);
                    }
                    if !schedule.contains(&name) {
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
                    if schedule.contains(&name) {
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
                let (slot, result): (Slot, ProbeResult) = done;
                if !finished(&pool, &mut schedule, slot, result, Instant::now()) {
                    break;
                }
            }
            () = &mut notified, if !waiting.list.is_empty() => {
                notified.set(answered.notified());
                if !waiting.check(&pool, &mut schedule) {
                    break;
                }
            }
            () = &mut check, if check_armed => {
                check_armed = false;
                if !waiting.check(&pool, &mut schedule) {
                    break;
                }
            }
            () = &mut tick, if tick_at.is_some() => tick_at = None,
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
