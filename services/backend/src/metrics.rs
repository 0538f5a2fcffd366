//! The backend's own metrics (the RED metrics come from `observability::http`).
//!
//! Names follow the OpenTelemetry semantic conventions rendered the Prometheus way; domain metrics carry the
//! `taskwatch_` prefix. Every label value is bounded.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Counter: tasks created (committed).
pub const TASKS_CREATED_TOTAL: &str = "taskwatch_tasks_created_total";
/// Counter: tasks completed (committed).
pub const TASKS_COMPLETED_TOTAL: &str = "taskwatch_tasks_completed_total";
/// Counter, label `event_type`: events committed to the outbox.
pub const OUTBOX_EVENTS_WRITTEN_TOTAL: &str = "taskwatch_outbox_events_written_total";
/// Gauge: outbox rows not yet acknowledged by the broker (sampled by the relay).
pub const OUTBOX_PENDING_EVENTS: &str = "taskwatch_outbox_pending_events";
/// Histogram (seconds): from an outbox row's creation to the broker's acknowledgement.
pub const OUTBOX_PUBLISH_LAG_SECONDS: &str = "taskwatch_outbox_publish_lag_seconds";
/// Counter: publish attempts the broker did not acknowledge.
pub const OUTBOX_PUBLISH_FAILURES_TOTAL: &str = "taskwatch_outbox_publish_failures_total";
/// Gauge, labels `db_client_connection_state` (`used`|`idle`), `db_client_connection_pool_name`.
pub const DB_CLIENT_CONNECTION_COUNT: &str = "db_client_connection_count";
/// Gauge, label `db_client_connection_pool_name`: the pool's configured maximum.
pub const DB_CLIENT_CONNECTION_MAX: &str = "db_client_connection_max";

/// The pool name used as the `db_client_connection_pool_name` label.
pub const POOL_NAME: &str = "backend";

/// Registers descriptions and zero-valued series, so every series exists from the first scrape (an alert on
/// `rate()` needs a sample before the first increment). Adding zero keeps repeated calls harmless.
pub fn describe() {
    metrics::describe_counter!(TASKS_CREATED_TOTAL, "Tasks created.");
    metrics::describe_counter!(TASKS_COMPLETED_TOTAL, "Tasks completed.");
    metrics::describe_counter!(OUTBOX_EVENTS_WRITTEN_TOTAL, "Events written to the transactional outbox.");
    metrics::describe_gauge!(DB_CLIENT_CONNECTION_COUNT, "Database connections by state.");
    metrics::describe_gauge!(DB_CLIENT_CONNECTION_MAX, "Maximum database connections the pool may open.");
    metrics::describe_gauge!(OUTBOX_PENDING_EVENTS, "Outbox events not yet acknowledged by the broker.");
    metrics::describe_histogram!(
        OUTBOX_PUBLISH_LAG_SECONDS,
        metrics::Unit::Seconds,
        "Time from an outbox event's creation to the broker's acknowledgement."
    );
    metrics::describe_counter!(
        OUTBOX_PUBLISH_FAILURES_TOTAL,
        "Outbox publish attempts the broker did not acknowledge."
    );
    metrics::counter!(OUTBOX_PUBLISH_FAILURES_TOTAL).increment(0);
    metrics::counter!(TASKS_CREATED_TOTAL).increment(0);
    metrics::counter!(TASKS_COMPLETED_TOTAL).increment(0);
    for change in events::task::TaskChange::ALL {
        metrics::counter!(OUTBOX_EVENTS_WRITTEN_TOTAL, "event_type" => change.event_type()).increment(0);
    }
}

pub fn task_created() {
    metrics::counter!(TASKS_CREATED_TOTAL).increment(1);
}

pub fn task_completed() {
    metrics::counter!(TASKS_COMPLETED_TOTAL).increment(1);
}

pub fn outbox_event_written(event_type: &'static str) {
    metrics::counter!(OUTBOX_EVENTS_WRITTEN_TOTAL, "event_type" => event_type).increment(1);
}

pub fn outbox_pending(count: i64) {
    // Counts stay far below 2^53, where f64 is exact.
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(OUTBOX_PENDING_EVENTS).set(count as f64);
}

pub fn outbox_published(lag: Duration) {
    metrics::histogram!(OUTBOX_PUBLISH_LAG_SECONDS).record(lag.as_secs_f64());
}

pub fn outbox_publish_failed() {
    metrics::counter!(OUTBOX_PUBLISH_FAILURES_TOTAL).increment(1);
}

/// Samples the pool's connection counts.
pub fn record_pool(pool: &PgPool) {
    let size = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
    let max = pool.options().get_max_connections();
    metrics::gauge!(DB_CLIENT_CONNECTION_COUNT, "db_client_connection_state" => "used", "db_client_connection_pool_name" => POOL_NAME)
        .set(f64::from(size - idle));
    metrics::gauge!(DB_CLIENT_CONNECTION_COUNT, "db_client_connection_state" => "idle", "db_client_connection_pool_name" => POOL_NAME)
        .set(f64::from(idle));
    metrics::gauge!(DB_CLIENT_CONNECTION_MAX, "db_client_connection_pool_name" => POOL_NAME).set(f64::from(max));
}

/// Samples the pool every `interval` until `stop` fires.
pub async fn sample_pool(pool: PgPool, interval: Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => record_pool(&pool),
        }
    }
}
