//! The client's circuit: one [`Circuit`](crate::breaker::Circuit) per downstream service, observed through metrics
//! and log lines labelled with the downstream's name.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::breaker::{Admission, BreakerPolicy, BreakerState, Circuit};
use crate::metric_names::{
    CIRCUIT_BREAKER_REJECTED_CALLS_TOTAL, CIRCUIT_BREAKER_STATE, CIRCUIT_BREAKER_TRANSITIONS_TOTAL,
};

/// Opens after `failure_threshold` consecutive failures, stays open for `open_for`, then lets one trial through.
#[derive(Debug)]
pub(crate) struct Breaker {
    downstream: &'static str,
    policy: BreakerPolicy,
    circuit: Mutex<Observed>,
}

/// The circuit and the state last published for it: an open period ends by itself, so the transition to half-open
/// is published when the next call finds it, not computed from the clock on both sides of that call.
#[derive(Debug)]
struct Observed {
    circuit: Circuit,
    published: BreakerState,
}

/// Permission to make one call. Report its outcome with [`Permit::success`] or [`Permit::failure`];
/// dropping it unreported (a cancelled call) leaves the failure count untouched and frees a trial at once.
#[derive(Debug)]
pub(crate) struct Permit<'breaker> {
    breaker: &'breaker Breaker,
    /// The trial of a half-open circuit: only its drop may free the trial.
    trial: bool,
    reported: bool,
}

impl Breaker {
    pub(crate) fn new(downstream: &'static str, failure_threshold: u32, open_for: Duration) -> Self {
        metrics::gauge!(CIRCUIT_BREAKER_STATE, "downstream" => downstream).set(BreakerState::Closed.gauge_value());
        // A trial's permit frees the circuit when dropped unreported, so the timeout only guards a leaked one.
        let policy = BreakerPolicy::new(failure_threshold, open_for, open_for.max(Duration::from_secs(1)));
        let observed = Observed { circuit: Circuit::default(), published: BreakerState::Closed };
        Self { downstream, policy, circuit: Mutex::new(observed) }
    }

    pub(crate) fn state(&self) -> BreakerState {
        self.lock().circuit.state(Instant::now())
    }

    /// `None` when the call must not be made (open, or half-open with a trial already running).
    pub(crate) fn acquire(&self) -> Option<Permit<'_>> {
        match self.change(|circuit, policy, now| circuit.admit(policy, now)) {
            Admission::Proceed { trial } => Some(Permit { breaker: self, trial, reported: false }),
            Admission::DeferUntil(_) => {
                metrics::counter!(CIRCUIT_BREAKER_REJECTED_CALLS_TOTAL, "downstream" => self.downstream).increment(1);
                None
            }
        }
    }

    /// Applies `step` to the circuit and publishes the state change it made, if any.
    fn change<T>(&self, step: impl FnOnce(&mut Circuit, &BreakerPolicy, Instant) -> T) -> T {
        let now = Instant::now();
        let mut observed = self.lock();
        let from = observed.published;
        let result = step(&mut observed.circuit, &self.policy, now);
        let to = observed.circuit.state(now);
        observed.published = to;
        drop(observed);
        self.publish(from, to);
        result
    }

    fn publish(&self, from: BreakerState, to: BreakerState) {
        // Set in `new` and on every transition after: a call that changes nothing touches no metric.
        if from == to {
            return;
        }
        metrics::gauge!(CIRCUIT_BREAKER_STATE, "downstream" => self.downstream).set(to.gauge_value());
        metrics::counter!(CIRCUIT_BREAKER_TRANSITIONS_TOTAL, "downstream" => self.downstream, "to_state" => to.as_str())
            .increment(1);
        match to {
            BreakerState::Open => tracing::warn!(downstream = self.downstream, from = %from, "circuit breaker opened"),
            _ => tracing::info!(downstream = self.downstream, from = %from, to = %to, "circuit breaker state changed"),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Observed> {
        // Nothing panics while holding the lock, and a circuit is valid in every state: recover, never wedge calls.
        self.circuit.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Permit<'_> {
    pub(crate) fn success(mut self) {
        self.report(true);
    }

    pub(crate) fn failure(mut self) {
        self.report(false);
    }

    fn report(&mut self, healthy: bool) {
        self.reported = true;
        self.breaker.change(|circuit, policy, now| circuit.record(policy, healthy, now));
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.trial && !self.reported {
            self.breaker.change(|circuit, _, now| circuit.abandon_trial(now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_closes_after_a_successful_trial() {
        let breaker = Breaker::new("unit-test", 3, Duration::from_millis(500));
        for _ in 0..2 {
            breaker.acquire().unwrap().failure();
            assert_eq!(breaker.state(), BreakerState::Closed);
        }
        breaker.acquire().unwrap().failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(breaker.acquire().is_none());

        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let trial = loop {
            if let Some(permit) = breaker.acquire() {
                break permit;
            }
            assert!(std::time::Instant::now() < deadline, "never half-opened");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(breaker.acquire().is_none(), "only one trial call while half-open");
        trial.success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.acquire().is_some());
    }

    #[test]
    fn a_failed_trial_reopens() {
        let breaker = Breaker::new("unit-test-reopen", 1, Duration::from_millis(20));
        breaker.acquire().unwrap().failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let trial = loop {
            if let Some(permit) = breaker.acquire() {
                break permit;
            }
            assert!(std::time::Instant::now() < deadline, "never half-opened");
            std::thread::sleep(Duration::from_millis(5));
        };
        trial.failure();
        assert_eq!(breaker.state(), BreakerState::Open);
    }
}
