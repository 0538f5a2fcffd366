//! The outbox's metrics. Names and labels are those the backend has always emitted, so dashboards and alerts
//! work for every service's outbox (the scrape's `job`/`service` label tells the services apart).

use std::sync::LazyLock;
use std::time::Duration;

use observability::exemplars::{ExemplarHistogram, NoLabels, RecordedTrace};
use observability::metrics::DELAY_SECONDS_BUCKETS;

/// Counter · events · `event_type` (the CloudEvent type, bounded by the service's event types). Events
/// committed to the outbox.
pub const OUTBOX_EVENTS_WRITTEN_TOTAL: &str = "taskwatch_outbox_events_written_total";
/// Gauge · rows. Outbox rows not yet acknowledged by the broker (sampled by the relay after each round).
pub const OUTBOX_PENDING_EVENTS: &str = "taskwatch_outbox_pending_events";
/// Histogram · seconds. From an outbox row's creation to the broker's acknowledgement; each bucket's exemplar
/// names the trace the event belongs to.
pub const OUTBOX_PUBLISH_LAG_SECONDS: &str = "taskwatch_outbox_publish_lag_seconds";

/// [`OUTBOX_PUBLISH_LAG_SECONDS`], in the exemplar registry (see `observability::exemplars`).
static PUBLISH_LAG: LazyLock<ExemplarHistogram<NoLabels>> = LazyLock::new(|| {
    ExemplarHistogram::register(
        OUTBOX_PUBLISH_LAG_SECONDS,
        "Time from an outbox event's creation to the broker's acknowledgement.",
        DELAY_SECONDS_BUCKETS,
    )
});
/// Counter · attempts. Publish attempts the broker did not acknowledge.
pub const OUTBOX_PUBLISH_FAILURES_TOTAL: &str = "taskwatch_outbox_publish_failures_total";

/// Registers descriptions and zero-valued series — one `events_written` series per type in `event_types` — so
/// every series exists from the first scrape (an alert on `rate()` needs a sample before the first increment).
/// Adding zero keeps repeated calls harmless.
pub fn describe(event_types: &[&'static str]) {
    metrics::describe_counter!(OUTBOX_EVENTS_WRITTEN_TOTAL, "Events written to the transactional outbox.");
    metrics::describe_gauge!(OUTBOX_PENDING_EVENTS, "Outbox events not yet acknowledged by the broker.");
    LazyLock::force(&PUBLISH_LAG);
    metrics::describe_counter!(
        OUTBOX_PUBLISH_FAILURES_TOTAL,
        "Outbox publish attempts the broker did not acknowledge."
    );
    metrics::counter!(OUTBOX_PUBLISH_FAILURES_TOTAL).increment(0);
    for event_type in event_types {
        metrics::counter!(OUTBOX_EVENTS_WRITTEN_TOTAL, "event_type" => *event_type).increment(0);
    }
}

/// One event of `event_type` committed to the outbox. Prefer [`crate::Enqueued::committed`], which cannot be
/// called for an event that was never written.
pub fn event_written(event_type: impl Into<metrics::SharedString>) {
    metrics::counter!(OUTBOX_EVENTS_WRITTEN_TOTAL, "event_type" => event_type).increment(1);
}

pub(crate) fn pending(count: i64) {
    // Counts stay far below 2^53, where f64 is exact.
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(OUTBOX_PENDING_EVENTS).set(count as f64);
}

/// One row acknowledged `lag` after it was written; `trace` is the event's, when it was recorded.
pub(crate) fn published(lag: Duration, trace: Option<RecordedTrace>) {
    PUBLISH_LAG.observe(&NoLabels {}, lag.as_secs_f64(), trace);
}

pub(crate) fn publish_failed() {
    metrics::counter!(OUTBOX_PUBLISH_FAILURES_TOTAL).increment(1);
}
