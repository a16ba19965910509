//! The health score: the Python original's weighted average of recent
//! outcomes (probes, connects, requests lost in transport).

/// How many recent outcomes the score looks at (the Python original's 10).
pub const HEALTH_WINDOW: usize = 10;

/// The Python original's health score over `outcomes` (oldest first, `true` = success):
/// the formula alone. What a connection feeds it, and the states that
/// override it, are on [`crate::Connection::health_score`].
///
/// outcome `i` of `n` weighs `0.5^(n-1-i)`, so the newest weighs 1 and each
/// older one half as much; the score is the weighted share of successes.
/// Only the last [`HEALTH_WINDOW`] outcomes count. No outcomes: 1.0.
///
/// ```
/// # use mcp_conn_core::health_score;
/// assert_eq!(health_score([] as [bool; 0]), 1.0);
/// assert_eq!(health_score([true, false]), 1.0 / 3.0);
/// assert_eq!(health_score([false, true]), 2.0 / 3.0);
/// ```
pub fn health_score(outcomes: impl IntoIterator<Item = bool>) -> f64 {
    let outcomes: Vec<bool> = outcomes.into_iter().collect();
    let recent = &outcomes[outcomes.len().saturating_sub(HEALTH_WINDOW)..];
    if recent.is_empty() {
        return 1.0;
    }
    let n = recent.len();
    let (mut weighted, mut total) = (0.0, 0.0);
    for (i, ok) in recent.iter().enumerate() {
        let w = 0.5f64.powi((n - 1 - i) as i32);
        total += w;
        if *ok {
            weighted += w;
        }
    }
    weighted / total
}

/// The last outcomes of a connection's health checks: the last
/// [`HEALTH_WINDOW`] as bits, newest in bit 0 (kept in the connection's own
/// state: no buffer of its own to fetch on every probe).
#[derive(Debug, Clone, Default)]
pub(crate) struct HealthHistory {
    outcomes: u16,
    len: u8,
    consecutive_failures: u32,
}

// Every outcome the score looks at fits in `outcomes`.
const _: () = assert!(HEALTH_WINDOW <= u16::BITS as usize);

impl HealthHistory {
    /// A health probe's outcome: into the score and the failure streak.
    pub(crate) fn record(&mut self, ok: bool) {
        self.record_outcome(ok);
        self.consecutive_failures = if ok { 0 } else { self.consecutive_failures + 1 };
    }

    /// Another outcome (a connect attempt, a request lost in transport):
    /// into the score only. The streak, which decides when a live session
    /// is replaced, counts health probes in a row.
    pub(crate) fn record_outcome(&mut self, ok: bool) {
        self.outcomes = (self.outcomes << 1) | u16::from(ok);
        if usize::from(self.len) < HEALTH_WINDOW {
            self.len += 1;
        }
    }

    pub(crate) fn score(&self) -> f64 {
        // Oldest first: bit `len - 1` down to bit 0.
        let bits = self.outcomes;
        health_score((0..self.len).rev().map(|i| bits & (1 << i) != 0))
    }

    pub(crate) fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// A new session starts with a clean failure streak (the score keeps its
    /// memory, as in the Python original).
    pub(crate) fn reset_streak(&mut self) {
        self.consecutive_failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Python original's own formula, written the way the Python does it.
    fn seed_formula(history: &[bool]) -> f64 {
        let h: Vec<f64> = history.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
        let h = &h[h.len().saturating_sub(10)..];
        let mut weights: Vec<f64> = (0..h.len()).map(|i| 0.5f64.powi(i as i32)).collect();
        weights.reverse();
        let ws: f64 = h.iter().zip(&weights).map(|(a, b)| a * b).sum();
        ws / weights.iter().sum::<f64>()
    }

    /// Feeds `script` through `record`, checking the score against the
    /// seed's formula after each outcome.
    fn assert_matches_the_seed(script: &[bool], record: fn(&mut HealthHistory, bool)) {
        let mut history = HealthHistory::default();
        for (i, ok) in script.iter().enumerate() {
            record(&mut history, *ok);
            let expected = seed_formula(&script[..=i]);
            assert!(
                (history.score() - expected).abs() < 1e-12,
                "after {} outcomes",
                i + 1
            );
        }
    }

    #[test]
    fn matches_the_seed_after_scripted_outcomes() {
        let script = [
            true, true, false, true, false, false, true, true, true, false, false, true, false,
        ];
        assert_matches_the_seed(&script, HealthHistory::record);
        // Three failures in a row after a long good run.
        let mut h = HealthHistory::default();
        for _ in 0..10 {
            h.record(true);
        }
        assert_eq!(h.score(), 1.0);
        h.record(false);
        assert!((h.score() - (1.0 - 1.0 / 1023.0 * 512.0)).abs() < 1e-12);
        h.record(false);
        h.record(false);
        assert_eq!(h.consecutive_failures(), 3);
        assert!(h.score() < 0.2, "recent failures dominate: {}", h.score());
        h.record(true);
        assert_eq!(h.consecutive_failures(), 0);
    }

    #[test]
    fn long_histories_keep_the_last_ten() {
        // A fixed pseudo-random run, far longer than the window (and than
        // the bits that hold it).
        let mut x = 0x2545_f491_u32;
        let script: Vec<bool> = (0..200)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x % 3 != 0
            })
            .collect();
        assert_matches_the_seed(&script, HealthHistory::record_outcome);
    }

    #[test]
    fn other_outcomes_move_the_score_but_not_the_streak() {
        let mut h = HealthHistory::default();
        h.record_outcome(false);
        h.record_outcome(false);
        assert_eq!(h.consecutive_failures(), 0);
        assert_eq!(h.score(), 0.0);
        h.record(false);
        assert_eq!(h.consecutive_failures(), 1);
        h.record_outcome(true);
        assert_eq!(
            h.consecutive_failures(),
            1,
            "a connect does not end a probe streak"
        );
        assert_eq!(h.score(), health_score([false, false, false, true]));
    }

    #[test]
    fn window_is_ten() {
        let mut old_failures = vec![false; 50];
        old_failures.extend([true; 10]);
        assert_eq!(health_score(old_failures), 1.0);
    }
}
