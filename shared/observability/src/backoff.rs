//! The one retry schedule of every loop that waits and tries again: handler retries, delivery retries, outbox
//! retries, calls to other services, and start-up waits for Postgres and the broker.
//!
//! Delays double from `initial` up to `max`, with "equal jitter": delay *n* (from 0) lies in `[c/2, c)` where
//! `c = min(initial · 2ⁿ, max)`. Half of each delay is random, so replicas or deliveries that failed together do
//! not retry in lockstep, and none retries at once. The documented maximum is a true bound: no delay reaches it.
//!
//! Built on `backon`, whose jitter *adds* up to one more delay; halving both ends before it is applied is what
//! keeps every delay inside `[initial/2, max)`.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// How many doublings a stateless [`Backoff::delay_after`] walks at most; `2^40 ·` any `initial` is past any `max`.
const MAX_DOUBLINGS: u32 = 40;

/// The shortest first delay [`Backoff::clamped`] allows.
const SHORTEST: Duration = Duration::from_millis(1);

/// A retry schedule: delays double from `initial` to `max`, each half fixed, half random.
///
/// Wrong states are unrepresentable: `initial` is above zero (a zero delay would spin on a failing call) and not
/// above `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

/// Why a [`Backoff`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBackoff {
    /// A zero initial delay would retry a failing call in a tight loop.
    #[error("the initial backoff must be above zero")]
    ZeroInitial,
    /// The first delay would already exceed the cap.
    #[error("the initial backoff {initial:?} is above the maximum {max:?}")]
    InitialAboveMax {
        /// The initial delay asked for.
        initial: Duration,
        /// The cap asked for.
        max: Duration,
    },
}

impl Backoff {
    /// A schedule from `initial` up to `max`; refused when `initial` is zero or above `max`.
    pub fn new(initial: Duration, max: Duration) -> Result<Self, InvalidBackoff> {
        if initial.is_zero() {
            Err(InvalidBackoff::ZeroInitial)
        } else if initial > max {
            Err(InvalidBackoff::InitialAboveMax { initial, max })
        } else {
            Ok(Self { initial, max })
        }
    }

    /// A schedule whose bounds are constants of the code, not configuration: `max` is raised to at least 1 ms and
    /// `initial` clamped into `[1 ms, max]`, so it cannot fail.
    pub fn clamped(initial: Duration, max: Duration) -> Self {
        let max = max.max(SHORTEST);
        Self { initial: initial.clamp(SHORTEST, max), max }
    }

    /// The ceiling of the first delay.
    pub fn initial(self) -> Duration {
        self.initial
    }

    /// The cap: no delay reaches it.
    pub fn max(self) -> Duration {
        self.max
    }

    /// The successive delays of one retry loop, without end; the loop decides when to stop.
    pub fn delays(self) -> Delays {
        let schedule = ExponentialBuilder::new()
            .with_min_delay(self.initial / 2)
            .with_max_delay(self.max / 2)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build();
        Delays { schedule, last: self.max / 2 }
    }

    /// The delay after the `failures`-th failure in a row (from 1), for retries whose count is stored (a
    /// delivery's or an outbox row's attempts) rather than held by a loop.
    pub fn delay_after(self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(MAX_DOUBLINGS);
        let mut delays = self.delays();
        for _ in 0..doublings {
            delays.next_delay();
        }
        delays.next_delay()
    }
}

/// The delays of one retry loop, from [`Backoff::delays`].
#[derive(Debug)]
pub struct Delays {
    schedule: ExponentialBackoff,
    /// Returned should the schedule ever end; it has no limit of attempts, so this is a guard, not a path.
    last: Duration,
}

impl Delays {
    /// How long to wait before the next try.
    pub fn next_delay(&mut self) -> Duration {
        self.schedule.next().unwrap_or(self.last)
    }
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.next_delay())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn delays_double_with_equal_jitter_and_never_reach_the_cap() {
        let backoff = Backoff::new(ms(100), ms(1000)).unwrap();
        for _ in 0..200 {
            let delays: Vec<Duration> = backoff.delays().take(8).collect();
            for (delay, ceiling) in delays.iter().zip([100, 200, 400, 800, 1000, 1000, 1000, 1000]) {
                assert!(
                    *delay >= ms(ceiling) / 2 && *delay < ms(ceiling),
                    "{delay:?} outside [{ceiling}/2, {ceiling})"
                );
            }
        }
    }

    #[test]
    fn the_stateless_delay_matches_the_loop() {
        let backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(60)).unwrap();
        for _ in 0..100 {
            let first = backoff.delay_after(1);
            assert!((Duration::from_secs(5)..Duration::from_secs(10)).contains(&first), "{first:?}");
            let third = backoff.delay_after(3);
            assert!((Duration::from_secs(20)..Duration::from_secs(40)).contains(&third), "{third:?}");
            let late = backoff.delay_after(u32::MAX);
            assert!((Duration::from_secs(30)..Duration::from_secs(60)).contains(&late), "{late:?}");
        }
    }

    #[test]
    fn jitter_spreads_retries_that_failed_together() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).unwrap();
        let distinct: std::collections::HashSet<Duration> = (0..20).map(|_| backoff.delay_after(1)).collect();
        assert!(distinct.len() > 10, "{distinct:?}");
    }

    #[test]
    fn a_zero_or_inverted_schedule_is_refused() {
        assert_eq!(Backoff::new(Duration::ZERO, ms(1)), Err(InvalidBackoff::ZeroInitial));
        assert!(matches!(Backoff::new(ms(2), ms(1)), Err(InvalidBackoff::InitialAboveMax { .. })));
        assert!(Backoff::new(ms(1), ms(1)).is_ok());
        assert_eq!(Backoff::clamped(Duration::ZERO, ms(10)), Backoff::new(ms(1), ms(10)).unwrap());
        assert_eq!(Backoff::clamped(ms(50), ms(10)), Backoff::new(ms(10), ms(10)).unwrap());
    }
}
