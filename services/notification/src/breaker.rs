//! One circuit breaker per destination (the SMTP server; each webhook host), so a dead destination is not
//! hammered by every pending delivery while healthy ones keep flowing.
//!
//! The state machine is the shared one ([`observability::breaker`]). Unlike the client's circuits (one per
//! downstream *service*, named in metric labels), destinations here are user input and unbounded: they are keys in
//! a bounded [`Keyed`] map, and metrics count them per channel.
//!
//! An open breaker *defers* a delivery until the breaker's trial time without consuming one of its attempts: the
//! attempt budget measures how often *this* delivery was tried, and a delivery that was never tried should not
//! be dead-lettered because others failed. Once the open period ends, one trial delivery goes through; its
//! outcome closes or re-opens the breaker.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use observability::breaker::{Admission as CircuitAdmission, BreakerPolicy, BreakerState, Keyed};

use crate::channel::Channel;
use crate::metrics;

/// Upper bound on tracked destinations, so many distinct failing webhook hosts cannot grow memory without limit.
const MAX_TRACKED: usize = 4096;

/// A destination's identity for its breaker: the channel plus the SMTP server or the webhook's host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    /// The channel the destination belongs to.
    pub channel: Channel,
    /// The SMTP server, or the webhook's `host:port`.
    pub key: String,
}

/// What the breaker says about a call to a destination now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Call it, then report the outcome.
    Proceed,
    /// Do not call it before this instant.
    DeferUntil(Instant),
}

/// The circuits of every destination with failures.
#[derive(Debug)]
pub struct Breakers {
    circuits: Mutex<Keyed<Destination>>,
}

impl Breakers {
    /// `failure_threshold` ≥ 1 consecutive failures open a destination's breaker for `open_for`; a trial that
    /// never reported (its task died) stops blocking others after `trial_timeout`.
    pub fn new(failure_threshold: u32, open_for: Duration, trial_timeout: Duration) -> Self {
        let policy = BreakerPolicy::new(failure_threshold, open_for, trial_timeout);
        Self { circuits: Mutex::new(Keyed::new(policy, MAX_TRACKED)) }
    }

    /// Whether a call to `destination` may go ahead now; a `Proceed` must be followed by [`Breakers::record`].
    pub fn admit(&self, destination: &Destination) -> Admission {
        match self.lock().admit(destination) {
            CircuitAdmission::Proceed { .. } => Admission::Proceed,
            CircuitAdmission::DeferUntil(until) => Admission::DeferUntil(until),
        }
    }

    /// Records the outcome of an admitted call. `healthy` is `false` only for failures that say the destination
    /// is down (connection refused, timeout, 5xx), not for a refusal of this one message.
    pub fn record(&self, destination: &Destination, healthy: bool) {
        let mut circuits = self.lock();
        let (before, after) = circuits.record(destination, healthy);
        let channel = destination.channel.as_str();
        match (before, after) {
            // Opened, or opened again by a failed trial.
            (BreakerState::Closed | BreakerState::HalfOpen, BreakerState::Open) => {
                tracing::warn!(channel, "circuit to a delivery destination opened");
            }
            (BreakerState::HalfOpen | BreakerState::Open, BreakerState::Closed) => {
                tracing::info!(channel, "circuit to a delivery destination closed");
            }
            _ => {}
        }
        for channel in Channel::ALL {
            metrics::circuits_open(channel, circuits.not_closed(|destination| destination.channel == channel));
        }
    }

    fn lock(&self) -> MutexGuard<'_, Keyed<Destination>> {
        // No code path panics while holding the lock, and a half-updated map only means a breaker state off by
        // one call: recover rather than wedge every delivery.
        self.circuits.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp() -> Destination {
        Destination { channel: Channel::Email, key: "smtp.example.com:587".into() }
    }

    #[test]
    fn opens_after_the_threshold_then_lets_one_trial_through() {
        let breakers = Breakers::new(2, Duration::from_millis(50), Duration::from_secs(60));
        assert_eq!(breakers.admit(&smtp()), Admission::Proceed);
        breakers.record(&smtp(), false);
        assert_eq!(breakers.admit(&smtp()), Admission::Proceed);
        breakers.record(&smtp(), false);
        assert!(matches!(breakers.admit(&smtp()), Admission::DeferUntil(_)));

        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(breakers.admit(&smtp()), Admission::Proceed, "the trial");
        assert!(matches!(breakers.admit(&smtp()), Admission::DeferUntil(_)), "only one trial at a time");
        breakers.record(&smtp(), true);
        assert_eq!(breakers.admit(&smtp()), Admission::Proceed);
    }

    #[test]
    fn a_failed_trial_reopens_and_destinations_are_independent() {
        let breakers = Breakers::new(1, Duration::from_millis(20), Duration::from_secs(60));
        let other = Destination { channel: Channel::Webhook, key: "hooks.example.com:443".into() };
        breakers.record(&smtp(), false);
        assert!(matches!(breakers.admit(&smtp()), Admission::DeferUntil(_)));
        assert_eq!(breakers.admit(&other), Admission::Proceed);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(breakers.admit(&smtp()), Admission::Proceed);
        breakers.record(&smtp(), false);
        assert!(matches!(breakers.admit(&smtp()), Admission::DeferUntil(_)));
    }

    #[test]
    fn a_lost_trial_stops_blocking_after_its_timeout() {
        let breakers = Breakers::new(1, Duration::ZERO, Duration::from_millis(20));
        breakers.record(&smtp(), false);
        assert_eq!(breakers.admit(&smtp()), Admission::Proceed, "the trial, never reported");
        assert!(matches!(breakers.admit(&smtp()), Admission::DeferUntil(_)));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(breakers.admit(&smtp()), Admission::Proceed);
    }
}
