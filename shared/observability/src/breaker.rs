//! The one circuit breaker: after `failure_threshold` failures in a row a circuit opens for `open_for`, then lets
//! one trial call through, whose outcome closes or re-opens it.
//!
//! [`Circuit`] is that state machine, with the clock passed in. Two users wrap it:
//! - the service client ([`crate::client`]): one circuit per downstream *service*, named in metric labels;
//! - [`Keyed`]: one circuit per destination that comes from user input (an SMTP server, a webhook host), in a
//!   bounded map that tracks only destinations with failures.
//!
//! A trial that never reports (its caller was cancelled or died) stops blocking others after `trial_timeout`.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The breaker's state as seen by callers and dashboards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls flow; consecutive failures are counted.
    Closed,
    /// The open period elapsed; one trial call decides between closed and open.
    HalfOpen,
    /// Calls fail fast without touching the network.
    Open,
}

impl BreakerState {
    /// The gauge value: 0 closed, 1 half-open, 2 open.
    pub fn gauge_value(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }

    /// The label and log value: `closed`, `half_open` or `open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a circuit opens, for how long, and how long an unreported trial may block others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    failure_threshold: u32,
    open_for: Duration,
    trial_timeout: Duration,
}

impl BreakerPolicy {
    /// `failure_threshold` failures in a row (raised to at least 1) open the circuit for `open_for`.
    pub fn new(failure_threshold: u32, open_for: Duration, trial_timeout: Duration) -> Self {
        Self { failure_threshold: failure_threshold.max(1), open_for, trial_timeout }
    }
}

/// What a circuit says about a call now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Make the call, then report its outcome; `trial` when it is the one call that decides a half-open circuit.
    Proceed {
        /// Whether this call is the trial of a half-open circuit.
        trial: bool,
    },
    /// Do not call before this instant.
    DeferUntil(Instant),
}

impl Admission {
    /// Whether the call may be made now.
    pub fn proceeds(self) -> bool {
        matches!(self, Self::Proceed { .. })
    }
}

/// One circuit's state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Circuit {
    /// Calls flow; the last call, if any, succeeded.
    #[default]
    Closed,
    /// Failing, but fewer than the threshold in a row.
    Failing {
        /// Failures in a row so far.
        consecutive: u32,
    },
    /// Calls are refused until `until`; then one trial is let through.
    Open {
        /// When the trial may go.
        until: Instant,
    },
    /// The trial call is in flight since `started`; others wait for its outcome.
    Trial {
        /// When the trial was let through.
        started: Instant,
    },
}

impl Circuit {
    /// The state callers and dashboards see at `now`.
    pub fn state(self, now: Instant) -> BreakerState {
        match self {
            Self::Closed | Self::Failing { .. } => BreakerState::Closed,
            Self::Open { until } if now < until => BreakerState::Open,
            Self::Open { .. } | Self::Trial { .. } => BreakerState::HalfOpen,
        }
    }

    /// Whether a call may be made at `now`; a `Proceed` must be followed by [`Circuit::record`] (or, for a trial
    /// that was abandoned, [`Circuit::abandon_trial`]).
    pub fn admit(&mut self, policy: &BreakerPolicy, now: Instant) -> Admission {
        match *self {
            Self::Closed | Self::Failing { .. } => Admission::Proceed { trial: false },
            Self::Open { until } if now < until => Admission::DeferUntil(until),
            Self::Trial { started } if now.duration_since(started) < policy.trial_timeout => {
                Admission::DeferUntil(started + policy.trial_timeout)
            }
            Self::Open { .. } | Self::Trial { .. } => {
                *self = Self::Trial { started: now };
                Admission::Proceed { trial: true }
            }
        }
    }

    /// Records the outcome of an admitted call. `healthy` is `false` only for failures that say the destination is
    /// down (connection refused, timeout, 5xx), not for a refusal of this one request.
    pub fn record(&mut self, policy: &BreakerPolicy, healthy: bool, now: Instant) {
        *self = match *self {
            _ if healthy => Self::Closed,
            Self::Closed if policy.failure_threshold > 1 => Self::Failing { consecutive: 1 },
            Self::Failing { consecutive } if consecutive + 1 < policy.failure_threshold => {
                Self::Failing { consecutive: consecutive + 1 }
            }
            _ => Self::Open { until: now + policy.open_for },
        };
    }

    /// A trial that will never report (its call was cancelled): the next call may be the trial at once.
    pub fn abandon_trial(&mut self, now: Instant) {
        if let Self::Trial { .. } = *self {
            *self = Self::Open { until: now };
        }
    }
}

/// Circuits for destinations that come from user input, so unbounded: only destinations with failures are
/// tracked, a success forgets one, and at most `capacity` are kept.
#[derive(Debug)]
pub struct Keyed<K> {
    policy: BreakerPolicy,
    capacity: usize,
    circuits: HashMap<K, Circuit>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    /// No destination tracked yet; at most `capacity` (at least 1) will be.
    pub fn new(policy: BreakerPolicy, capacity: usize) -> Self {
        Self { policy, capacity: capacity.max(1), circuits: HashMap::new() }
    }

    /// Whether a call to `key` may be made now.
    pub fn admit(&mut self, key: &K) -> Admission {
        let now = Instant::now();
        match self.circuits.get_mut(key) {
            Some(circuit) => circuit.admit(&self.policy, now),
            None => Admission::Proceed { trial: false },
        }
    }

    /// Records the outcome of an admitted call to `key`; returns the state before and after.
    pub fn record(&mut self, key: &K, healthy: bool) -> (BreakerState, BreakerState) {
        let now = Instant::now();
        let mut circuit = self.circuits.get(key).copied().unwrap_or_default();
        let before = circuit.state(now);
        circuit.record(&self.policy, healthy, now);
        if circuit == Circuit::Closed {
            self.circuits.remove(key);
        } else {
            if self.circuits.len() >= self.capacity && !self.circuits.contains_key(key) {
                self.evict_one();
            }
            self.circuits.insert(key.clone(), circuit);
        }
        (before, circuit.state(now))
    }

    /// How many tracked destinations matching `matches` are not closed (open or half-open).
    pub fn not_closed(&self, matches: impl Fn(&K) -> bool) -> usize {
        let now = Instant::now();
        self.circuits.iter().filter(|(key, circuit)| matches(key) && circuit.state(now) != BreakerState::Closed).count()
    }

    /// Drops a merely failing destination if there is one (the least valuable state to keep), else any.
    fn evict_one(&mut self) {
        let victim = self
            .circuits
            .iter()
            .find(|(_, circuit)| matches!(circuit, Circuit::Failing { .. }))
            .or_else(|| self.circuits.iter().next())
            .map(|(key, _)| key.clone());
        if let Some(victim) = victim {
            self.circuits.remove(&victim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn opens_after_the_threshold_then_one_trial_decides() {
        let policy = BreakerPolicy::new(2, SECOND, Duration::from_secs(60));
        let t0 = Instant::now();
        let mut circuit = Circuit::default();
        assert_eq!(circuit.admit(&policy, t0), Admission::Proceed { trial: false });
        circuit.record(&policy, false, t0);
        assert_eq!(circuit.state(t0), BreakerState::Closed, "one failure is below the threshold");
        circuit.record(&policy, false, t0);
        assert_eq!(circuit.state(t0), BreakerState::Open);
        assert_eq!(circuit.admit(&policy, t0), Admission::DeferUntil(t0 + SECOND));

        let later = t0 + SECOND;
        assert_eq!(circuit.state(later), BreakerState::HalfOpen);
        assert_eq!(circuit.admit(&policy, later), Admission::Proceed { trial: true });
        assert!(!circuit.admit(&policy, later).proceeds(), "only one trial at a time");
        circuit.record(&policy, true, later);
        assert_eq!(circuit, Circuit::Closed);
    }

    #[test]
    fn a_failed_trial_reopens_for_another_period() {
        let policy = BreakerPolicy::new(1, SECOND, Duration::from_secs(60));
        let t0 = Instant::now();
        let mut circuit = Circuit::default();
        circuit.record(&policy, false, t0);
        assert!(circuit.admit(&policy, t0 + SECOND).proceeds());
        circuit.record(&policy, false, t0 + SECOND);
        assert_eq!(circuit.admit(&policy, t0 + SECOND), Admission::DeferUntil(t0 + 2 * SECOND));
    }

    #[test]
    fn a_lost_trial_stops_blocking_after_its_timeout_and_an_abandoned_one_at_once() {
        let policy = BreakerPolicy::new(1, Duration::ZERO, SECOND);
        let t0 = Instant::now();
        let mut circuit = Circuit::default();
        circuit.record(&policy, false, t0);
        assert_eq!(circuit.admit(&policy, t0), Admission::Proceed { trial: true });
        assert_eq!(circuit.admit(&policy, t0), Admission::DeferUntil(t0 + SECOND));
        assert_eq!(circuit.admit(&policy, t0 + SECOND), Admission::Proceed { trial: true }, "the first never reported");
        circuit.abandon_trial(t0 + SECOND);
        assert_eq!(circuit.admit(&policy, t0 + SECOND), Admission::Proceed { trial: true });
    }

    #[test]
    fn keyed_circuits_are_independent_forget_successes_and_stay_bounded() {
        let mut keyed = Keyed::new(BreakerPolicy::new(1, Duration::from_secs(60), Duration::from_secs(60)), 2);
        assert_eq!(keyed.record(&"smtp", false), (BreakerState::Closed, BreakerState::Open));
        assert!(!keyed.admit(&"smtp").proceeds());
        assert!(keyed.admit(&"hooks").proceeds());
        keyed.record(&"a", false);
        keyed.record(&"b", false);
        assert_eq!(keyed.not_closed(|_| true), 2, "at most the capacity is tracked");
        assert_eq!(keyed.record(&"b", true), (BreakerState::Open, BreakerState::Closed));
        assert_eq!(keyed.not_closed(|key| *key == "b"), 0);
    }
}
