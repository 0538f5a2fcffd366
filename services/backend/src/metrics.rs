//! The backend's own metrics (the RED metrics come from `observability::http`, the outbox metrics from the
//! `outbox` crate, the pool gauges from `database`).
//!
//! Names follow the OpenTelemetry semantic conventions rendered the Prometheus way; domain metrics carry the
//! `taskwatch_` prefix. Every label value is bounded.

/// Counter · tasks. Tasks created (committed).
pub const TASKS_CREATED_TOTAL: &str = "taskwatch_tasks_created_total";
/// Counter · tasks. Tasks completed (committed).
pub const TASKS_COMPLETED_TOTAL: &str = "taskwatch_tasks_completed_total";

/// Gauge · streams. Task streams (`GET /v1/tasks/stream`) open on this replica.
pub const TASK_STREAMS_OPEN: &str = "taskwatch_task_streams_open";
/// Counter · events. Changes written to task streams (replayed ones included).
pub const TASK_STREAM_EVENTS_SENT_TOTAL: &str = "taskwatch_task_stream_events_sent_total";
/// Histogram · seconds. From the change (its event time) to its write to a task stream (the recorder gives
/// `*_lag_seconds` the delay buckets: replays after a reconnect can be minutes old).
pub const TASK_STREAM_LAG_SECONDS: &str = "taskwatch_task_stream_lag_seconds";
/// Counter · streams, by `reason` ([`StreamDisconnect`]). Task streams that ended.
pub const TASK_STREAM_DISCONNECTS_TOTAL: &str = "taskwatch_task_stream_disconnects_total";
/// Counter · requests, by `reason` ([`StreamRefusal`]). Task streams not opened.
pub const TASK_STREAMS_REFUSED_TOTAL: &str = "taskwatch_task_streams_refused_total";
/// Gauge · 0/1. Whether the stream's feed reads `task-events` (0 while the broker cannot be reached).
pub const TASK_STREAM_FEED_UP: &str = "taskwatch_task_stream_feed_up";
/// Gauge · messages. `task-events` messages the stream's feed has still to read.
pub const TASK_STREAM_FEED_LAG: &str = "taskwatch_task_stream_feed_lag";

/// Why a task stream ended: the `reason` of [`TASK_STREAM_DISCONNECTS_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamDisconnect {
    /// The client went away.
    ClientClosed,
    /// The service is shutting down.
    Shutdown,
    /// The client did not read fast enough; it resumes with `Last-Event-ID`.
    SlowClient,
}

impl StreamDisconnect {
    /// Every reason, pre-registered at zero.
    pub const ALL: [StreamDisconnect; 3] =
        [StreamDisconnect::ClientClosed, StreamDisconnect::Shutdown, StreamDisconnect::SlowClient];

    /// The label value.
    pub const fn label(self) -> &'static str {
        match self {
            StreamDisconnect::ClientClosed => "client_closed",
            StreamDisconnect::Shutdown => "shutdown",
            StreamDisconnect::SlowClient => "slow_client",
        }
    }
}

/// Why a task stream was not opened: the `reason` of [`TASK_STREAMS_REFUSED_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRefusal {
    /// The user has as many streams open as allowed (429).
    UserLimit,
    /// The replica serves as many streams as allowed (503).
    TotalLimit,
    /// `Last-Event-ID` is outside the resume window (410).
    ResumeGone,
    /// A resume before the feed could start reading (503).
    FeedStarting,
    /// The service is shutting down (503).
    ShuttingDown,
}

impl StreamRefusal {
    /// Every reason, pre-registered at zero.
    pub const ALL: [StreamRefusal; 5] = [
        StreamRefusal::UserLimit,
        StreamRefusal::TotalLimit,
        StreamRefusal::ResumeGone,
        StreamRefusal::FeedStarting,
        StreamRefusal::ShuttingDown,
    ];

    /// The label value.
    pub const fn label(self) -> &'static str {
        match self {
            StreamRefusal::UserLimit => "user_limit",
            StreamRefusal::TotalLimit => "total_limit",
            StreamRefusal::ResumeGone => "resume_gone",
            StreamRefusal::FeedStarting => "feed_starting",
            StreamRefusal::ShuttingDown => "shutting_down",
        }
    }
}

/// The pool name used as the `db_client_connection_pool_name` label.
pub const POOL_NAME: &str = "backend";

/// Registers descriptions and zero-valued series, so every series exists from the first scrape (an alert on
/// `rate()` needs a sample before the first increment). Adding zero keeps repeated calls harmless.
pub fn describe() {
    metrics::describe_counter!(TASKS_CREATED_TOTAL, "Tasks created.");
    metrics::describe_counter!(TASKS_COMPLETED_TOTAL, "Tasks completed.");
    metrics::counter!(TASKS_CREATED_TOTAL).increment(0);
    metrics::counter!(TASKS_COMPLETED_TOTAL).increment(0);
    describe_stream();
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

/// Describes the task stream's metrics and starts their series at zero.
fn describe_stream() {
    metrics::describe_gauge!(TASK_STREAMS_OPEN, "Task streams open on this replica.");
    metrics::describe_counter!(TASK_STREAM_EVENTS_SENT_TOTAL, "Changes written to task streams.");
    metrics::describe_histogram!(
        TASK_STREAM_LAG_SECONDS,
        metrics::Unit::Seconds,
        "From a change to its write to a task stream."
    );
    metrics::describe_counter!(TASK_STREAM_DISCONNECTS_TOTAL, "Task streams that ended, by reason.");
    metrics::describe_counter!(TASK_STREAMS_REFUSED_TOTAL, "Task streams not opened, by reason.");
    metrics::describe_gauge!(TASK_STREAM_FEED_UP, "Whether the task stream's feed reads task-events.");
    metrics::describe_gauge!(TASK_STREAM_FEED_LAG, "task-events messages the task stream's feed has still to read.");
    metrics::gauge!(TASK_STREAMS_OPEN).set(0.0);
    metrics::counter!(TASK_STREAM_EVENTS_SENT_TOTAL).increment(0);
    for reason in StreamDisconnect::ALL {
        metrics::counter!(TASK_STREAM_DISCONNECTS_TOTAL, "reason" => reason.label()).increment(0);
    }
    for reason in StreamRefusal::ALL {
        metrics::counter!(TASK_STREAMS_REFUSED_TOTAL, "reason" => reason.label()).increment(0);
    }
}

/// A stream opened; `open` streams now.
pub fn stream_opened(open: usize) {
    metrics::gauge!(TASK_STREAMS_OPEN).set(open as f64);
}

/// A stream ended for `reason`; `open` streams now.
pub fn stream_closed(open: usize, reason: StreamDisconnect) {
    metrics::gauge!(TASK_STREAMS_OPEN).set(open as f64);
    metrics::counter!(TASK_STREAM_DISCONNECTS_TOTAL, "reason" => reason.label()).increment(1);
}

/// A stream was not opened, for `reason`.
pub fn stream_refused(reason: StreamRefusal) {
    metrics::counter!(TASK_STREAMS_REFUSED_TOTAL, "reason" => reason.label()).increment(1);
}

/// A change was written to a stream `lag` after it was made.
pub fn stream_event_sent(lag: std::time::Duration) {
    metrics::counter!(TASK_STREAM_EVENTS_SENT_TOTAL).increment(1);
    metrics::histogram!(TASK_STREAM_LAG_SECONDS).record(lag.as_secs_f64());
}

/// Whether the stream's feed reads the topic, and how far behind it is when known.
pub fn stream_feed(up: bool, lag: Option<i64>) {
    metrics::gauge!(TASK_STREAM_FEED_UP).set(if up { 1.0 } else { 0.0 });
    if let Some(lag) = lag {
        metrics::gauge!(TASK_STREAM_FEED_LAG).set(lag as f64);
    }
}
