//! The service's own metrics (HTTP and health metrics come from `observability`, consumer metrics from
//! `messaging`, pool metrics from `database`). Every label value is bounded. Each name is registered in
//! `monitoring/telemetry/registry.yaml`.

/// Counter · events · `outcome` ([`EventOutcome`]). Task events consumed, by what they did.
pub const TASK_EVENTS_TOTAL: &str = "taskwatch_audit_log_task_events_total";
/// Counter · records. Audit records deleted by retention (older than `AUDIT_RETENTION`).
pub const RECORDS_EXPIRED_TOTAL: &str = "taskwatch_audit_log_records_expired_total";

/// What a task event did: the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// Recorded for the first time.
    Applied,
    /// The event id was recorded before; nothing changed.
    Duplicate,
    /// Not a task event this version knows.
    IgnoredType,
}

impl EventOutcome {
    /// Every outcome, to start each series at zero.
    pub const ALL: [EventOutcome; 3] = [EventOutcome::Applied, EventOutcome::Duplicate, EventOutcome::IgnoredType];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Applied => "applied",
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::IgnoredType => "ignored_type",
        }
    }
}

/// Registers descriptions and zero-valued series, so every series exists from the first scrape (an alert on
/// `rate()` needs a sample before the first increment).
pub fn describe() {
    metrics::describe_counter!(TASK_EVENTS_TOTAL, "Task events consumed, by what they did.");
    metrics::describe_counter!(RECORDS_EXPIRED_TOTAL, "Audit records deleted by retention.");
    messaging::metric_names::describe_all();
    database::metrics::describe();
    for outcome in EventOutcome::ALL {
        metrics::counter!(TASK_EVENTS_TOTAL, "outcome" => outcome.as_str()).increment(0);
    }
    metrics::counter!(RECORDS_EXPIRED_TOTAL).increment(0);
}

/// Counts one consumed task event by its outcome.
pub fn task_event(outcome: EventOutcome) {
    metrics::counter!(TASK_EVENTS_TOTAL, "outcome" => outcome.as_str()).increment(1);
}

/// Counts `count` records deleted by retention.
pub fn records_expired(count: u64) {
    metrics::counter!(RECORDS_EXPIRED_TOTAL).increment(count);
}
