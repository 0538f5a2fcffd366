//! When a failed delivery is tried again: exponential backoff with jitter, capped.

use std::time::Duration;

/// The retry schedule of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// Whether a delivery that has failed `attempts` times may be tried again.
    pub fn allows_another(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }

    /// How long to wait after the `attempts`-th failure: `initial · 2^(attempts-1)`, capped at `max`, of which
    /// a random half is jitter ("equal jitter"), so deliveries that failed together do not retry together
    /// while none retries immediately.
    pub fn delay_after(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(31);
        let exponential = self.initial.saturating_mul(1u32 << exponent).min(self.max);
        let half = exponential / 2;
        let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::random_range(0..=jitter_nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_and_stays_under_the_cap() {
        let policy = RetryPolicy { max_attempts: 5, initial: Duration::from_secs(10), max: Duration::from_secs(60) };
        for _ in 0..100 {
            let first = policy.delay_after(1);
            assert!((Duration::from_secs(5)..=Duration::from_secs(10)).contains(&first), "{first:?}");
            let third = policy.delay_after(3);
            assert!((Duration::from_secs(20)..=Duration::from_secs(40)).contains(&third), "{third:?}");
            let late = policy.delay_after(40);
            assert!((Duration::from_secs(30)..=Duration::from_secs(60)).contains(&late), "{late:?}");
        }
    }

    #[test]
    fn counts_attempts_against_the_budget() {
        let policy = RetryPolicy { max_attempts: 3, initial: Duration::from_secs(1), max: Duration::from_secs(1) };
        assert!(policy.allows_another(2));
        assert!(!policy.allows_another(3));
    }
}
