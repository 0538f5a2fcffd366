//! When a failed delivery is tried again: the shared backoff schedule, and an attempt budget.

use std::time::Duration;

use observability::Backoff;

/// The retry schedule of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before the delivery is dead-lettered.
    pub max_attempts: u32,
    /// Delays between attempts.
    pub backoff: Backoff,
}

impl RetryPolicy {
    /// Whether a delivery that has failed `attempts` times may be tried again.
    pub fn allows_another(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }

    /// How long to wait after the `attempts`-th failure (see [`Backoff`]: doubling, half of it jitter, so
    /// deliveries that failed together do not retry together while none retries immediately).
    pub fn delay_after(&self, attempts: u32) -> Duration {
        self.backoff.delay_after(attempts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_attempts_against_the_budget() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).unwrap();
        let policy = RetryPolicy { max_attempts: 3, backoff };
        assert!(policy.allows_another(2));
        assert!(!policy.allows_another(3));
    }
}
