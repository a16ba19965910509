//! The monitor's schedule: the servers it probes, each in a numbered slot,
//! and their next probes in buckets, one per step of a time grid.
//!
//! Probes are due on a grid (see [`due_on_grid_nanos`]), so the probes of 10,000
//! servers fall into about 50 instants a second. A bucket per instant
//! (a `BTreeMap` of a few dozen keys) makes scheduling a probe a push onto
//! a `Vec`, and taking what is due a whole bucket at a time, with one timer
//! for the earliest bucket. A `DelayQueue` keeps a timer-wheel entry per
//! server and is polled once per expired item: at 10,000 probes a second
//! that bookkeeping cost more than the rest of the monitor's loop
//! (callgrind: about 1,700 instructions per probe for the queue alone).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use mcp_conn_core::Connection;
use tokio::time::Instant;

/// [`jittered_nanos`] for a `Duration` (the tests' form).
#[cfg(test)]
pub(crate) fn jittered(interval: Duration, jitter: f64, rng: &mut fastrand::Rng) -> Duration {
    Duration::from_nanos(jittered_nanos(nanos(interval), jitter, rng))
}

/// `interval` (nanoseconds) spread by up to ±`jitter` (a fraction), so 1,000
/// servers added at once are not probed in the same instant. As f64 (exact
/// below 104 days), cheaper than `Duration::mul_f64`'s checked conversions.
fn jittered_nanos(interval: u64, jitter: f64, rng: &mut fastrand::Rng) -> u64 {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    if jitter == 0.0 {
        return interval;
    }
    let factor = 1.0 + jitter * (2.0 * rng.f64() - 1.0);
    // `as` saturates.
    (interval as f64 * factor) as u64
}

/// The longest step of the grid probes are due on.
const MAX_TICK: Duration = Duration::from_millis(20);

/// [`due_on_grid_nanos`] with `Instant`s (the tests' form).
#[cfg(test)]
pub(crate) fn due_on_grid(
    origin: Instant,
    now: Instant,
    delay: Duration,
    interval: Duration,
) -> Instant {
    let at = due_on_grid_nanos(nanos(now - origin), nanos(delay), nanos(interval));
    origin + Duration::from_nanos(at)
}

/// When a probe `delay` from `now` is due, in nanoseconds since the grid's
/// origin: rounded up to the grid of `interval / 50` (at most
/// [`MAX_TICK`]). Probes due within one step run together, so 10,000
/// servers probed every second wake the runtime 50 times a second instead
/// of at every millisecond (each wakeup of an idle runtime costs tens of
/// microseconds of CPU), for a probe at most 2 % of its interval late. In
/// u64 (584 years; later saturates): a 128-bit division, or an `Instant`'s
/// own arithmetic, costs more than the rest of scheduling a probe.
fn due_on_grid_nanos(now: u64, delay: u64, interval: u64) -> u64 {
    let at = now.saturating_add(delay);
    let tick = (interval / 50).min(nanos(MAX_TICK));
    if tick == 0 {
        return at;
    }
    at.div_ceil(tick).checked_mul(tick).unwrap_or(at)
}

/// `d` in nanoseconds, saturating at 584 years.
fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

/// Names one server's slot. The generation tells a server from a later
/// one in the same slot: a probe or a listing of a removed server is
/// ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    index: usize,
    generation: u64,
}

/// A server the monitor probes.
struct Probed {
    name: Arc<str>,
    /// Weak: a server removed from the pool is not kept alive by its
    /// schedule.
    conn: Weak<Connection>,
    /// In nanoseconds.
    interval: u64,
    /// When its next probe is due, in nanoseconds since the schedule's
    /// origin; [`NOT_LISTED`] while one is due now or runs.
    next: u64,
}

/// `Probed::next` of a server not listed in a bucket.
const NOT_LISTED: u64 = u64::MAX;

/// One slot: its server, if any, and its generation (bumped when a new
/// server takes it).
struct Entry {
    generation: u64,
    server: Option<Probed>,
}

/// A server whose probe is due: what starting it needs.
pub(crate) struct Due {
    pub(crate) slot: Slot,
    pub(crate) conn: Weak<Connection>,
}

/// The servers probed and when.
pub(crate) struct Schedule {
    entries: Vec<Entry>,
    /// Slots free for reuse.
    free: Vec<usize>,
    by_name: HashMap<Arc<str>, Slot>,
    /// Due instant (nanoseconds since `origin`) → the servers listed for
    /// it. A listing whose server was removed or rescheduled since is
    /// skipped when its bucket is taken.
    buckets: BTreeMap<u64, Vec<Slot>>,
    /// Due, not yet started (more were due than may run at once).
    ready: VecDeque<Slot>,
    rng: fastrand::Rng,
    origin: Instant,
    jitter: f64,
}

impl Schedule {
    pub(crate) fn new(jitter: f64) -> Self {
        Schedule {
            entries: Vec::new(),
            free: Vec::new(),
            by_name: HashMap::new(),
            buckets: BTreeMap::new(),
            ready: VecDeque::new(),
            rng: fastrand::Rng::new(),
            origin: Instant::now(),
            jitter,
        }
    }

    /// Starts probing `name` every `interval`, its first probe one
    /// (jittered) interval from now. A server of that name already here is
    /// replaced.
    pub(crate) fn add(&mut self, name: Arc<str>, conn: Weak<Connection>, interval: Duration) {
        self.remove(&name);
        let server = Probed {
            name: name.clone(),
            conn,
            interval: nanos(interval),
            next: NOT_LISTED,
        };
        let slot = match self.free.pop() {
            Some(index) => {
                let entry = &mut self.entries[index];
                entry.generation += 1;
                entry.server = Some(server);
                Slot {
                    index,
                    generation: entry.generation,
                }
            }
            None => {
                self.entries.push(Entry {
                    generation: 0,
                    server: Some(server),
                });
                Slot {
                    index: self.entries.len() - 1,
                    generation: 0,
                }
            }
        };
        self.by_name.insert(name, slot);
        self.schedule_next(slot, Instant::now());
    }

    /// Stops probing `name`; a probe of it that runs is then ignored. Its
    /// listing stays in its bucket (a `Slot`, 16 bytes) until that bucket
    /// is due, one interval at most, and is skipped then.
    pub(crate) fn remove(&mut self, name: &str) {
        if let Some(slot) = self.by_name.remove(name) {
            self.entries[slot.index].server = None;
            self.free.push(slot.index);
        }
    }

    /// Whether `name` is probed.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The server in `slot`, if it is still the one the slot names.
    fn server(&mut self, slot: Slot) -> Option<&mut Probed> {
        let entry = self.entries.get_mut(slot.index)?;
        if entry.generation != slot.generation {
            return None;
        }
        entry.server.as_mut()
    }

    /// Lists the next probe of `slot`'s server, one jittered interval from
    /// `now`, on the grid.
    fn schedule_next(&mut self, slot: Slot, now: Instant) {
        let now = self.since_origin(now);
        let (jitter, rng) = (self.jitter, &mut self.rng);
        let Some(server) = self
            .entries
            .get_mut(slot.index)
            .and_then(|e| e.server.as_mut())
        else {
            return;
        };
        let delay = jittered_nanos(server.interval, jitter, rng);
        // Never the mark of a server not listed (584 years from now).
        let at = due_on_grid_nanos(now, delay, server.interval).min(NOT_LISTED - 1);
        server.next = at;
        self.buckets.entry(at).or_default().push(slot);
    }

    fn since_origin(&self, at: Instant) -> u64 {
        nanos(at.saturating_duration_since(self.origin))
    }

    /// Moves the servers due by `now` to the ready list.
    pub(crate) fn take_due(&mut self, now: Instant) {
        let now = self.since_origin(now);
        while let Some(entry) = self.buckets.first_entry() {
            if *entry.key() > now {
                break;
            }
            let (at, listed) = entry.remove_entry();
            for slot in listed {
                // Skipped: removed, or replaced by a server listed anew.
                if let Some(server) = self.server(slot).filter(|s| s.next == at) {
                    server.next = NOT_LISTED;
                    self.ready.push_back(slot);
                }
            }
        }
    }

    /// When the earliest listed probe is due, if any is.
    pub(crate) fn earliest(&self) -> Option<Instant> {
        // A due time past what the platform's `Instant` holds is never.
        let (at, _) = self.buckets.first_key_value()?;
        self.origin.checked_add(Duration::from_nanos(*at))
    }

    /// Whether a probe is due and not started.
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The next due probe to start, oldest first.
    pub(crate) fn next_ready(&mut self) -> Option<Due> {
        while let Some(slot) = self.ready.pop_front() {
            if let Some(server) = self.server(slot).filter(|s| s.next == NOT_LISTED) {
                return Some(Due {
                    slot,
                    conn: server.conn.clone(),
                });
            }
        }
        None
    }

    /// A probe of `slot`'s server ended (by `now`): lists its next one and
    /// gives its name, if the slot still holds that server (else it was
    /// removed while its probe ran: no next probe).
    pub(crate) fn finished(&mut self, slot: Slot, now: Instant) -> Option<&Arc<str>> {
        self.server(slot).filter(|s| s.next == NOT_LISTED)?;
        self.schedule_next(slot, now);
        Some(&self.entries[slot.index].server.as_ref()?.name)
    }
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

    impl Schedule {
        fn name_of(&mut self, due: &Due) -> String {
            self.server(due.slot)
                .map_or_else(String::new, |s| s.name.to_string())
        }
    }

    #[test]
    fn jitter_spreads_an_interval_within_its_fraction() {
        let mut rng = fastrand::Rng::with_seed(7);
        let second = Duration::from_secs(1);
        assert_eq!(jittered(second, 0.0, &mut rng), second);
        assert_eq!(jittered(second, f64::NAN, &mut rng), second);
        let spread: Vec<Duration> = (0..1000).map(|_| jittered(second, 0.1, &mut rng)).collect();
        assert!(spread
            .iter()
            .all(|d| *d >= Duration::from_millis(900) && *d <= Duration::from_millis(1100)));
        assert!(spread.iter().any(|d| *d < Duration::from_millis(950)));
        assert!(spread.iter().any(|d| *d > Duration::from_millis(1050)));
        // Past u64 nanoseconds (584 years): saturates, never panics.
        let huge = Duration::from_secs(u64::MAX / 2);
        assert!(jittered(huge, 0.5, &mut rng) <= huge.mul_f64(1.5));
    }

    #[tokio::test(start_paused = true)]
    async fn an_interval_of_centuries_is_listed_far_off_and_never_due() {
        let start = Instant::now();
        // No jitter: the due time saturates, onto the mark of a server
        // not listed but for the clamp.
        let mut s = Schedule::new(0.0);
        s.add("forever".into(), Weak::new(), Duration::MAX);
        assert_eq!(
            s.buckets.keys().copied().collect::<Vec<_>>(),
            [NOT_LISTED - 1]
        );
        let due = s.earliest().expect("listed");
        assert!(due >= start + Duration::from_secs(500 * 365 * 24 * 3600));
        s.take_due(start + Duration::from_secs(400 * 365 * 24 * 3600));
        assert!(s.next_ready().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_removed_and_added_again_in_one_grid_step_is_due_once() {
        let mut s = Schedule::new(0.0);
        let second = Duration::from_secs(1);
        let start = Instant::now();
        s.add("a".into(), Weak::new(), second);
        s.remove("a");
        s.add("a".into(), Weak::new(), second);
        // Both listings fall in the same bucket; only the live one counts.
        s.take_due(start + second);
        assert_eq!(names(&mut s), ["a"]);
    }

    fn names(schedule: &mut Schedule) -> Vec<String> {
        std::iter::from_fn(|| schedule.next_ready())
            .collect::<Vec<_>>()
            .iter()
            .map(|due| schedule.name_of(due))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn servers_come_due_one_interval_later_and_again_after_each_probe() {
        let mut s = Schedule::new(0.0);
        let second = Duration::from_secs(1);
        s.add("a".into(), Weak::new(), second);
        s.add("b".into(), Weak::new(), 2 * second);
        let start = Instant::now();
        s.take_due(start + second - Duration::from_millis(1));
        assert!(!s.has_ready(), "nothing is due early");
        assert_eq!(s.earliest(), Some(start + second));
        s.take_due(start + second);
        let due = s.next_ready().expect("a is due");
        assert_eq!(s.name_of(&due), "a");
        assert!(s.next_ready().is_none());
        // While a's probe runs it is not listed again.
        s.take_due(start + 10 * second);
        assert_eq!(names(&mut s), ["b"]);
        tokio::time::advance(3 * second).await;
        assert_eq!(
            s.finished(due.slot, Instant::now()).map(|n| &**n),
            Some("a")
        );
        assert_eq!(s.earliest(), Some(start + 4 * second));
    }

    #[tokio::test(start_paused = true)]
    async fn a_removed_server_is_not_probed_and_its_running_probe_is_ignored() {
        let mut s = Schedule::new(0.0);
        let second = Duration::from_secs(1);
        let start = Instant::now();
        s.add("gone".into(), Weak::new(), second);
        s.add("running".into(), Weak::new(), second);
        s.take_due(start + second);
        let gone = s.next_ready().expect("due");
        let running = s.next_ready().expect("due");
        assert_eq!(
            [s.name_of(&gone), s.name_of(&running)],
            ["gone", "running"],
            "in the order added"
        );
        s.remove("gone");
        assert!(!s.contains("gone"));
        assert_eq!(
            s.finished(gone.slot, Instant::now()),
            None,
            "removed while it ran"
        );
        // Its slot, reused by a new server, does not take the old probe.
        s.add("new".into(), Weak::new(), second);
        assert_eq!(s.finished(gone.slot, Instant::now()), None);
        assert_eq!(
            s.finished(running.slot, Instant::now()).map(|n| &**n),
            Some("running")
        );
        // Its result is not the new server's, even while the new one's own
        // probe runs.
        s.take_due(start + second);
        let new = s.next_ready().expect("new is due");
        assert_eq!(s.name_of(&new), "new");
        assert_eq!(s.finished(gone.slot, Instant::now()), None);
        assert_eq!(
            s.finished(new.slot, Instant::now()).map(|n| &**n),
            Some("new")
        );
        // Replaced by name while listed: only the new listing counts.
        s.add("running".into(), Weak::new(), 5 * second);
        s.take_due(start + 3 * second);
        assert_eq!(names(&mut s), ["new"]);
        s.take_due(start + 6 * second);
        assert_eq!(names(&mut s), ["running"]);
    }
}
