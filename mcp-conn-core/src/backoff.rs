//! Reconnect delays: the Python original's exponential schedule plus jitter.

use std::time::Duration;

/// The delay schedule between reconnect attempts.
///
/// Attempt `n` (1-based) waits `min(initial · 2^(n-1), max)`, then a random
/// factor in `[1 - jitter, 1 + jitter]` is applied (and the result capped at
/// `max` again). With `jitter = 0` the schedule is exactly the Python original's.
/// The random source is seedable so tests can predict it.
///
/// ```
/// # use std::time::Duration;
/// # use mcp_conn_core::Backoff;
/// let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60), 0.0, None);
/// let delays: Vec<u64> = (1..=7).map(|n| b.delay(n).as_secs()).collect();
/// assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60]);
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
    rng: fastrand::Rng,
}

impl Backoff {
    /// A schedule. `jitter` is clamped to `[0, 1]`; `seed` fixes the random
    /// source (`None` seeds it from the OS).
    pub fn new(initial: Duration, max: Duration, jitter: f64, seed: Option<u64>) -> Self {
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Backoff {
            initial,
            max: max.max(initial),
            jitter,
            rng: seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed),
        }
    }

    /// The delay before attempt `attempt` (1-based; 0 is treated as 1).
    pub fn delay(&mut self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(62);
        let base = self
            .initial
            .checked_mul(1u32.checked_shl(exp).unwrap_or(u32::MAX))
            .unwrap_or(self.max)
            .min(self.max);
        if self.jitter == 0.0 {
            return base;
        }
        let factor = 1.0 + self.jitter * (2.0 * self.rng.f64() - 1.0);
        base.mul_f64(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_schedule_without_jitter() {
        let mut b = Backoff::new(
            Duration::from_millis(500),
            Duration::from_secs(3),
            0.0,
            None,
        );
        let got: Vec<u128> = (0..=6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(got, [500, 500, 1000, 2000, 3000, 3000, 3000]);
        assert_eq!(
            b.delay(u32::MAX),
            Duration::from_secs(3),
            "no overflow on huge attempts"
        );
    }

    #[test]
    fn jitter_stays_in_bounds_and_is_seedable() {
        let mut a = Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(60),
            0.2,
            Some(7),
        );
        let mut b = Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(60),
            0.2,
            Some(7),
        );
        let mut distinct = std::collections::HashSet::new();
        for n in 1..=200u32 {
            let d = a.delay(n % 8 + 1);
            assert_eq!(d, b.delay(n % 8 + 1), "same seed, same schedule");
            let base = Duration::from_secs(1 << (n % 8)).min(Duration::from_secs(60));
            assert!(
                d >= base.mul_f64(0.8) && d <= base.mul_f64(1.2).min(Duration::from_secs(60)),
                "{d:?} vs {base:?}"
            );
            distinct.insert(d);
        }
        assert!(distinct.len() > 50, "jitter actually varies the delays");
    }
}
