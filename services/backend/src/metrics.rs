//! The backend's own metrics (the RED metrics come from `observability::http`, the outbox metrics from the
//! `outbox` crate, the pool gauges from `database`).
//!
//! Names follow the OpenTelemetry semantic conventions rendered the Prometheus way; domain metrics carry the
//! `taskwatch_` prefix. Every label value is bounded.

/// Counter · tasks. Tasks created (committed).
pub const TASKS_CREATED_TOTAL: &str = "taskwatch_tasks_created_total";
/// Counter · tasks. Tasks completed (committed).
pub const TASKS_COMPLETED_TOTAL: &str = "taskwatch_tasks_completed_total";

/// The pool name used as the `db_client_connection_pool_name` label.
pub const POOL_NAME: &str = "backend";

/// Registers descriptions and zero-valued series, so every series exists from the first scrape (an alert on
/// `rate()` needs a sample before the first increment). Adding zero keeps repeated calls harmless.
pub fn describe() {
    metrics::describe_counter!(TASKS_CREATED_TOTAL, "Tasks created.");
    metrics::describe_counter!(TASKS_COMPLETED_TOTAL, "Tasks completed.");
    metrics::counter!(TASKS_CREATED_TOTAL).increment(0);
    metrics::counter!(TASKS_COMPLETED_TOTAL).increment(0);
    database::metrics::describe();
    // The outbox relay publishes through `messaging`: its producer metrics need their help text too.
    messaging::metric_names::describe_all();
    let event_types = events::task::TaskChange::ALL.map(|change| change.event_type());
    outbox::metrics::describe(&event_types);
}

/// Counts one task created; call after its transaction committed.
pub fn task_created() {
    metrics::counter!(TASKS_CREATED_TOTAL).increment(1);
}

/// Counts one task completed; call after its transaction committed.
pub fn task_completed() {
    metrics::counter!(TASKS_COMPLETED_TOTAL).increment(1);
}

/// `taskwatch_outbox_events_written_total{event_type}`: call after the transaction that wrote the event committed.
pub fn outbox_event_written(event_type: &'static str) {
    outbox::metrics::event_written(event_type);
}
