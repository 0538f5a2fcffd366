//! Exponential backoff with full jitter between retries of one message.

use std::time::Duration;

use crate::config::BackoffBounds;

/// Delays for successive retries: a random duration up to `initial · 2^attempt`, capped at `max`,
/// never below `initial / 2`. Jitter keeps replicas that failed together from retrying in lockstep.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    bounds: BackoffBounds,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(bounds: BackoffBounds) -> Self {
        Self { bounds, attempt: 0 }
    }

    /// The next delay; each call doubles the ceiling until it reaches the maximum.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let floor = (self.bounds.initial() / 2).min(ceiling);
        let millis = rand::random_range(floor.as_millis()..=ceiling.as_millis());
        Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(20));
        self.bounds.initial().saturating_mul(factor).min(self.bounds.max())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_within_bounds() {
        let bounds = BackoffBounds::new(Duration::from_millis(100), Duration::from_secs(1)).unwrap();
        let mut backoff = Backoff::new(bounds);
        let ceilings = [100, 200, 400, 800, 1000, 1000];
        for ceiling in ceilings {
            let delay = backoff.next_delay();
            assert!(delay >= Duration::from_millis(50), "{delay:?}");
            assert!(delay <= Duration::from_millis(ceiling), "{delay:?} > {ceiling}ms");
        }
        for _ in 0..100 {
            assert!(backoff.next_delay() <= Duration::from_secs(1));
        }
    }
}
