//! The service's own metrics (HTTP, breaker and health metrics come from `observability`, consumer metrics from
//! `messaging`). Every label value is bounded.

use std::time::Duration;

/// Counter · occurrences. Next occurrences the backend confirmed (created, or found already created).
pub const OCCURRENCES_CREATED_TOTAL: &str = "taskwatch_recurring_occurrences_created_total";
/// Histogram · seconds. Time to decide on one completion event, the next-occurrence math included.
pub const CALCULATION_DURATION_SECONDS: &str = "taskwatch_recurrence_calculation_duration_seconds";
/// Counter · failures · `reason` ([`FailureReason`]). Events that could not be turned into an occurrence on
/// this attempt; transient reasons are retried, the others dead-lettered.
pub const FAILURES_TOTAL: &str = "taskwatch_recurring_failures_total";

/// Why an event did not lead to an occurrence on this attempt: the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// The payload is not a task event this service can read (dead-lettered).
    InvalidEvent,
    /// The task lacks what the math needs: a known zone, a due time, a completion time (dead-lettered).
    InvalidTask,
    /// The task's rule cannot be evaluated (dead-lettered).
    InvalidRule,
    /// The backend failed or timed out (retried).
    BackendUnavailable,
    /// The breaker to the backend is open; no call was made (retried).
    CircuitOpen,
    /// The backend refused the request, e.g. the previous task is no longer recurring (dead-lettered).
    BackendRejected,
}

impl FailureReason {
    /// Every reason, so [`describe`] can register each labelled series at zero.
    pub const ALL: [FailureReason; 6] = [
        FailureReason::InvalidEvent,
        FailureReason::InvalidTask,
        FailureReason::InvalidRule,
        FailureReason::BackendUnavailable,
        FailureReason::CircuitOpen,
        FailureReason::BackendRejected,
    ];

    /// The `reason` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureReason::InvalidEvent => "invalid_event",
            FailureReason::InvalidTask => "invalid_task",
            FailureReason::InvalidRule => "invalid_rule",
            FailureReason::BackendUnavailable => "backend_unavailable",
            FailureReason::CircuitOpen => "circuit_open",
            FailureReason::BackendRejected => "backend_rejected",
        }
    }
}

/// Registers descriptions and zero-valued series, so every series exists from the first scrape (an alert on
/// `rate()` needs a sample before the first increment).
pub fn describe() {
    metrics::describe_counter!(OCCURRENCES_CREATED_TOTAL, "Next occurrences the backend confirmed.");
    metrics::describe_histogram!(
        CALCULATION_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Time to compute what a completion event asks for, next-occurrence math included."
    );
    metrics::describe_counter!(FAILURES_TOTAL, "Events not turned into an occurrence on this attempt, by reason.");
    messaging::metric_names::describe_all();
    metrics::counter!(OCCURRENCES_CREATED_TOTAL).increment(0);
    for reason in FailureReason::ALL {
        metrics::counter!(FAILURES_TOTAL, "reason" => reason.as_str()).increment(0);
    }
}

/// Counts one next occurrence the backend confirmed ([`OCCURRENCES_CREATED_TOTAL`]).
pub fn occurrence_created() {
    metrics::counter!(OCCURRENCES_CREATED_TOTAL).increment(1);
}

/// Records how long deciding on one completion event took ([`CALCULATION_DURATION_SECONDS`]).
pub fn calculation_took(duration: Duration) {
    metrics::histogram!(CALCULATION_DURATION_SECONDS).record(duration.as_secs_f64());
}

/// Counts one event not turned into an occurrence on this attempt, under `reason` ([`FAILURES_TOTAL`]).
pub fn failed(reason: FailureReason) {
    metrics::counter!(FAILURES_TOTAL, "reason" => reason.as_str()).increment(1);
}
