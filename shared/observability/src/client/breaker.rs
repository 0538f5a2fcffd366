//! One circuit breaker per downstream, built on `failsafe` and observed through its callbacks.
//!
//! `failsafe` has no state getter, so [`StateObserver`] mirrors the state from the `Instrument`
//! callbacks into an atomic (for [`Breaker::state`], the health detail and the gauge). It also lets
//! every caller through while half-open; [`Breaker::acquire`] narrows that to one trial call at a
//! time so a recovering downstream is not hit by the whole backlog at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use failsafe::backoff::{self, Constant};
use failsafe::failure_policy::{self, ConsecutiveFailures};
use failsafe::{Config, Instrument, StateMachine};

use crate::metric_names::{
    CIRCUIT_BREAKER_REJECTED_CALLS_TOTAL, CIRCUIT_BREAKER_STATE, CIRCUIT_BREAKER_TRANSITIONS_TOTAL,
};

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

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Closed,
            1 => Self::HalfOpen,
            _ => Self::Open,
        }
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Mirrors failsafe's state transitions into an atomic, metrics and log lines.
#[derive(Debug, Clone)]
struct StateObserver {
    downstream: &'static str,
    state: Arc<AtomicU8>,
}

impl StateObserver {
    fn transition(&self, to: BreakerState) {
        let from = BreakerState::from_u8(self.state.swap(to.to_u8(), Ordering::AcqRel));
        metrics::gauge!(CIRCUIT_BREAKER_STATE, "downstream" => self.downstream).set(to.gauge_value());
        if from == to {
            return;
        }
        metrics::counter!(CIRCUIT_BREAKER_TRANSITIONS_TOTAL, "downstream" => self.downstream, "to_state" => to.as_str())
            .increment(1);
        match to {
            BreakerState::Open => tracing::warn!(downstream = self.downstream, from = %from, "circuit breaker opened"),
            _ => tracing::info!(downstream = self.downstream, from = %from, to = %to, "circuit breaker state changed"),
        }
    }
}

impl Instrument for StateObserver {
    fn on_call_rejected(&self) {
        metrics::counter!(CIRCUIT_BREAKER_REJECTED_CALLS_TOTAL, "downstream" => self.downstream).increment(1);
    }

    fn on_open(&self) {
        self.transition(BreakerState::Open);
    }

    fn on_half_open(&self) {
        self.transition(BreakerState::HalfOpen);
    }

    fn on_closed(&self) {
        self.transition(BreakerState::Closed);
    }
}

type Machine = StateMachine<ConsecutiveFailures<Constant>, StateObserver>;

/// Opens after `failure_threshold` consecutive failures, stays open for `open_for`, then half-opens.
#[derive(Debug, Clone)]
pub(crate) struct Breaker {
    machine: Machine,
    observer: StateObserver,
    trial_in_flight: Arc<AtomicBool>,
}

/// Permission to make one call. Report its outcome with [`Permit::success`] or [`Permit::failure`];
/// dropping it unreported (a cancelled call) leaves the failure count untouched.
#[derive(Debug)]
pub(crate) struct Permit<'breaker> {
    breaker: &'breaker Breaker,
    is_trial: bool,
}

impl Breaker {
    pub(crate) fn new(downstream: &'static str, failure_threshold: u32, open_for: Duration) -> Self {
        let observer = StateObserver { downstream, state: Arc::new(AtomicU8::new(BreakerState::Closed.to_u8())) };
        let policy = failure_policy::consecutive_failures(failure_threshold, backoff::constant(open_for));
        let machine = Config::new().failure_policy(policy).instrument(observer.clone()).build();
        metrics::gauge!(CIRCUIT_BREAKER_STATE, "downstream" => downstream).set(BreakerState::Closed.gauge_value());
        Self { machine, observer, trial_in_flight: Arc::new(AtomicBool::new(false)) }
    }

    pub(crate) fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.observer.state.load(Ordering::Acquire))
    }

    /// `None` when the call must not be made (open, or half-open with a trial already running).
    pub(crate) fn acquire(&self) -> Option<Permit<'_>> {
        if !self.machine.is_call_permitted() {
            return None;
        }
        if self.state() == BreakerState::HalfOpen {
            if self.trial_in_flight.swap(true, Ordering::AcqRel) {
                self.observer.on_call_rejected();
                return None;
            }
            return Some(Permit { breaker: self, is_trial: true });
        }
        Some(Permit { breaker: self, is_trial: false })
    }
}

impl Permit<'_> {
    pub(crate) fn success(self) {
        self.breaker.machine.on_success();
    }

    pub(crate) fn failure(self) {
        self.breaker.machine.on_error();
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.is_trial {
            self.breaker.trial_in_flight.store(false, Ordering::Release);
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
