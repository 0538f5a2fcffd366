//! The lateness policy: whether a due job still fires or is given up as missed. Pure, no I/O.
//!
//! A reminder a little late (the service was restarting, the task was created with a reminder already in the
//! past) is still worth sending; one far past its time (a long outage) would only confuse, so it is counted as
//! missed instead of sent.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// How late a job may fire, from its `remind_at`. Always above zero (checked at configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxLateness(Duration);

impl MaxLateness {
    /// `None` for zero: every job would be missed.
    pub fn new(limit: Duration) -> Option<Self> {
        (!limit.is_zero()).then_some(Self(limit))
    }

    /// The limit as a duration; never zero.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// What becomes of a due job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: send the reminder.
    Fire,
    /// Too late to be of use: settle the job as missed, without sending it.
    Miss,
}

/// `Fire` when `now` is at most `limit` past `remind_at` (inclusive), `Miss` beyond. A job not yet due is never
/// claimed; should one be judged anyway (clock skew between replicas and database), it fires.
pub fn judge(remind_at: DateTime<Utc>, now: DateTime<Utc>, limit: MaxLateness) -> Verdict {
    let late = (now - remind_at).to_std().unwrap_or(Duration::ZERO);
    if late > limit.get() { Verdict::Miss } else { Verdict::Fire }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn limit() -> MaxLateness {
        MaxLateness::new(Duration::from_secs(15 * 60)).unwrap()
    }

    #[test]
    fn fires_up_to_and_including_the_limit() {
        let now = Utc::now();
        for late in [TimeDelta::zero(), TimeDelta::seconds(1), TimeDelta::minutes(15)] {
            assert_eq!(judge(now - late, now, limit()), Verdict::Fire, "{late}");
        }
    }

    #[test]
    fn misses_beyond_the_limit() {
        let now = Utc::now();
        for late in [TimeDelta::minutes(15) + TimeDelta::microseconds(1), TimeDelta::days(3)] {
            assert_eq!(judge(now - late, now, limit()), Verdict::Miss, "{late}");
        }
    }

    #[test]
    fn a_job_from_the_future_fires() {
        let now = Utc::now();
        assert_eq!(judge(now + TimeDelta::seconds(2), now, limit()), Verdict::Fire);
    }

    #[test]
    fn zero_is_not_a_limit() {
        assert_eq!(MaxLateness::new(Duration::ZERO), None);
    }
}
