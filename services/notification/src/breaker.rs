//! One circuit breaker per destination (the SMTP server; each webhook host), so a dead destination is not
//! hammered by every pending delivery while healthy ones keep flowing.
//!
//! Unlike the shared client's breaker (one per downstream *service*, named in metric labels), destinations here
//! are user input and unbounded: they are keys in a bounded map, and metrics count them per channel. Only
//! destinations with failures are tracked; a success forgets the destination.
//!
//! An open breaker *defers* a delivery until the breaker's trial time without consuming one of its attempts: the
//! attempt budget measures how often *this* delivery was tried, and a delivery that was never tried should not
//! be dead-lettered because others failed. Once the open period ends, one trial delivery goes through; its
//! outcome closes or re-opens the breaker.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::channel::Channel;
use crate::metrics;

/// Upper bound on tracked destinations, so many distinct failing webhook hosts cannot grow memory without limit.
const MAX_TRACKED: usize = 4096;

/// A destination's identity for its breaker: the channel plus the SMTP server or the webhook's host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    pub channel: Channel,
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

#[derive(Debug, Clone, Copy)]
enum State {
    /// Failing, but fewer than the threshold in a row.
    Failing { consecutive: u32 },
    /// Calls are refused until `until`; then one trial is let through.
    Open { until: Instant },
    /// The trial call is in flight; others wait for its outcome.
    Trial { started: Instant },
}

#[derive(Debug)]
pub struct Breakers {
    failure_threshold: u32,
    open_for: Duration,
    /// A trial that never reported (its task died) stops blocking others after this long.
    trial_timeout: Duration,
    states: Mutex<HashMap<Destination, State>>,
}

impl Breakers {
    /// `failure_threshold` ≥ 1 consecutive failures open a destination's breaker for `open_for`.
    pub fn new(failure_threshold: u32, open_for: Duration, trial_timeout: Duration) -> Self {
        Self {
            failure_threshold: failure_threshold.max(1),
            open_for,
            trial_timeout,
            states: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a call to `destination` may go ahead now; a `Proceed` must be followed by [`Breakers::record`].
    pub fn admit(&self, destination: &Destination) -> Admission {
        let now = Instant::now();
        let mut states = self.lock();
        match states.get(destination).copied() {
            None | Some(State::Failing { .. }) => Admission::Proceed,
            Some(State::Open { until }) if now < until => Admission::DeferUntil(until),
            Some(State::Open { .. }) => {
                states.insert(destination.clone(), State::Trial { started: now });
                Admission::Proceed
            }
            Some(State::Trial { started }) if now.duration_since(started) < self.trial_timeout => {
                Admission::DeferUntil(started + self.trial_timeout)
            }
            Some(State::Trial { .. }) => {
                states.insert(destination.clone(), State::Trial { started: now });
                Admission::Proceed
            }
        }
    }

    /// Records the outcome of an admitted call. `healthy` is `false` only for failures that say the destination
    /// is down (connection refused, timeout, 5xx), not for a refusal of this one message.
    pub fn record(&self, destination: &Destination, healthy: bool) {
        let mut states = self.lock();
        let previous = states.get(destination).copied();
        if healthy {
            states.remove(destination);
        } else {
            let next = match previous {
                Some(State::Failing { consecutive }) if consecutive + 1 < self.failure_threshold => {
                    State::Failing { consecutive: consecutive + 1 }
                }
                None if self.failure_threshold > 1 => State::Failing { consecutive: 1 },
                _ => State::Open { until: Instant::now() + self.open_for },
            };
            if matches!(next, State::Open { .. }) && !matches!(previous, Some(State::Open { .. })) {
                tracing::warn!(channel = destination.channel.as_str(), "circuit to a delivery destination opened");
            }
            if states.len() >= MAX_TRACKED && !states.contains_key(destination) {
                evict_one(&mut states);
            }
            states.insert(destination.clone(), next);
        }
        if matches!(previous, Some(State::Trial { .. } | State::Open { .. })) && healthy {
            tracing::info!(channel = destination.channel.as_str(), "circuit to a delivery destination closed");
        }
        publish_open_counts(&states);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Destination, State>> {
        // No code path panics while holding the lock, and a half-updated map only means a breaker state off by
        // one call: recover rather than wedge every delivery.
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Drops a merely failing destination if there is one (the least valuable state to keep), else any.
fn evict_one(states: &mut HashMap<Destination, State>) {
    let victim = states
        .iter()
        .find(|(_, state)| matches!(state, State::Failing { .. }))
        .or_else(|| states.iter().next())
        .map(|(destination, _)| destination.clone());
    if let Some(victim) = victim {
        states.remove(&victim);
    }
}

fn publish_open_counts(states: &HashMap<Destination, State>) {
    for channel in Channel::ALL {
        let open = states
            .iter()
            .filter(|(destination, state)| destination.channel == channel && !matches!(state, State::Failing { .. }))
            .count();
        metrics::circuits_open(channel, open);
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
