//! The service's own metrics (HTTP and health metrics come from `observability`, consumer and producer metrics
//! from `messaging`, outbox and pool metrics from `outbox` and `database`). Every label value is bounded.

use std::sync::LazyLock;
use std::time::Duration;

use observability::exemplars::{ExemplarHistogram, NoLabels, RecordedTrace};
use observability::metrics::DELAY_SECONDS_BUCKETS;

use crate::store::jobs::Backlog;
use crate::store::tasks::Applied;

/// Gauge · jobs. Reminder jobs waiting to fire (due or not), sampled by the scheduler every round. Every replica
/// reports the same database-wide count: aggregate with `max`, not `sum`.
pub const JOBS_PENDING: &str = "taskwatch_reminder_jobs_pending";
/// Counter · reminders. Jobs fired: their `reminder.due.v1` event committed to the outbox.
pub const FIRED_TOTAL: &str = "taskwatch_reminders_fired_total";
/// Counter · reminders. Jobs found due longer ago than `REMINDER_MAX_LATENESS`: marked missed, not sent.
pub const MISSED_TOTAL: &str = "taskwatch_reminders_missed_total";
/// Histogram · seconds. A fired job's `remind_at` → the claim that fired it (the transaction that wrote its
/// `reminder.due.v1` to the outbox; observed once it committed), by the database's clock. This is the scheduler's own lateness, the part of
/// a reminder's timeliness this service decides; the outbox's publish lag (`taskwatch_outbox_publish_lag_seconds`)
/// follows it. Missed jobs are not observed here. Each bucket's exemplar names the trace of the firing (the task's).
pub const FIRE_DELAY_SECONDS: &str = "taskwatch_reminder_fire_delay_seconds";

/// The help text of [`FIRE_DELAY_SECONDS`].
const FIRE_DELAY_HELP: &str = "Delay from a reminder's remind_at to the claim that fired it.";

/// [`FIRE_DELAY_SECONDS`], in the exemplar registry (see `observability::exemplars`).
static FIRE_DELAY: LazyLock<ExemplarHistogram<NoLabels>> =
    LazyLock::new(|| ExemplarHistogram::register(FIRE_DELAY_SECONDS, FIRE_DELAY_HELP, DELAY_SECONDS_BUCKETS));
/// Counter · reminders. Jobs that were not fired on time ([`ON_TIME`]): counted once per job when it is still
/// pending that long after its time, or fires later than that, or is missed, whichever comes first. The
/// reminder-timeliness SLO's bad events: a scheduler that fires nothing burns the budget, not only a late one.
pub const OVERDUE_TOTAL: &str = "taskwatch_reminders_overdue_total";
/// Gauge · seconds. How long ago the oldest pending job was due (0 when none is due), by the database's clock;
/// sampled every scheduler round. Every replica reports the same database-wide value: aggregate with `max`.
pub const OLDEST_DUE_AGE_SECONDS: &str = "taskwatch_reminder_oldest_due_age_seconds";
/// How late a reminder may fire and still count as on time: the reminder-timeliness SLO's threshold, a bucket
/// boundary of [`FIRE_DELAY_SECONDS`] (monitoring/prometheus/slos.yaml reads `le="30"`).
pub const ON_TIME: Duration = Duration::from_secs(30);
/// Counter · events · `outcome` ([`EventOutcome`]). Task events consumed, by what they did to the job store.
pub const TASK_EVENTS_TOTAL: &str = "taskwatch_reminder_task_events_total";

/// What a task event did: the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// An open task's jobs were (re)planned.
    Scheduled,
    /// A completed task's pending jobs were cancelled.
    Cancelled,
    /// A deleted task's pending jobs were cancelled.
    Deleted,
    /// The event id was applied before.
    Duplicate,
    /// A snapshot as new or newer was applied before.
    Stale,
    /// The task was deleted before.
    AfterDeletion,
    /// Not a task event this version knows.
    IgnoredType,
}

impl EventOutcome {
    /// Every outcome, so [`describe`] can register each labelled series at zero.
    pub const ALL: [EventOutcome; 7] = [
        EventOutcome::Scheduled,
        EventOutcome::Cancelled,
        EventOutcome::Deleted,
        EventOutcome::Duplicate,
        EventOutcome::Stale,
        EventOutcome::AfterDeletion,
        EventOutcome::IgnoredType,
    ];

    /// The `outcome` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Scheduled => "scheduled",
            EventOutcome::Cancelled => "cancelled",
            EventOutcome::Deleted => "deleted",
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::Stale => "stale",
            EventOutcome::AfterDeletion => "after_deletion",
            EventOutcome::IgnoredType => "ignored_type",
        }
    }

    /// The outcome an applied event is counted under.
    pub fn of(applied: Applied) -> Self {
        use crate::decision::IgnoreReason;
        match applied {
            Applied::Scheduled { .. } => EventOutcome::Scheduled,
            Applied::Cancelled { .. } => EventOutcome::Cancelled,
            Applied::Deleted { .. } => EventOutcome::Deleted,
            Applied::Duplicate => EventOutcome::Duplicate,
            Applied::Ignored(IgnoreReason::Stale) => EventOutcome::Stale,
            Applied::Ignored(IgnoreReason::Deleted) => EventOutcome::AfterDeletion,
        }
    }
}

/// Registers descriptions and zero-valued series, so every series exists from the first scrape (an alert on
/// `rate()` needs a sample before the first increment).
pub fn describe() {
    metrics::describe_gauge!(JOBS_PENDING, "Reminder jobs waiting to fire, due or not.");
    metrics::describe_counter!(FIRED_TOTAL, "Reminder jobs fired (reminder.due.v1 committed to the outbox).");
    metrics::describe_counter!(MISSED_TOTAL, "Reminder jobs due longer ago than the maximum lateness; not sent.");
    LazyLock::force(&FIRE_DELAY);
    metrics::describe_counter!(TASK_EVENTS_TOTAL, "Task events consumed, by what they did to the reminder jobs.");
    metrics::describe_counter!(OVERDUE_TOTAL, "Reminder jobs not fired within 30 s of their time (counted once each).");
    metrics::describe_gauge!(
        OLDEST_DUE_AGE_SECONDS,
        metrics::Unit::Seconds,
        "How long ago the oldest pending reminder job was due (0 when none is)."
    );
    messaging::metric_names::describe_all();
    metrics::gauge!(JOBS_PENDING).set(0.0);
    metrics::counter!(FIRED_TOTAL).increment(0);
    metrics::counter!(MISSED_TOTAL).increment(0);
    metrics::counter!(OVERDUE_TOTAL).increment(0);
    metrics::gauge!(OLDEST_DUE_AGE_SECONDS).set(0.0);
    for outcome in EventOutcome::ALL {
        metrics::counter!(TASK_EVENTS_TOTAL, "outcome" => outcome.as_str()).increment(0);
    }
}

/// Sets [`JOBS_PENDING`] and [`OLDEST_DUE_AGE_SECONDS`] from one sample of the backlog.
pub fn backlog(backlog: Backlog) {
    #[allow(clippy::cast_precision_loss, reason = "job counts stay far below 2^52")]
    metrics::gauge!(JOBS_PENDING).set(backlog.pending as f64);
    metrics::gauge!(OLDEST_DUE_AGE_SECONDS).set(backlog.oldest_due_age.as_secs_f64());
}

/// Counts `count` jobs newly overdue ([`OVERDUE_TOTAL`]); callers pass only jobs not counted before.
pub fn overdue(count: u64) {
    metrics::counter!(OVERDUE_TOTAL).increment(count);
}

/// Counts one fired job and records how long after its `remind_at` it was claimed ([`FIRED_TOTAL`],
/// [`FIRE_DELAY_SECONDS`]).
pub fn fired(delay: Duration, trace: Option<RecordedTrace>) {
    metrics::counter!(FIRED_TOTAL).increment(1);
    FIRE_DELAY.observe(&NoLabels {}, delay.as_secs_f64(), trace);
}

/// Counts `count` jobs settled as missed ([`MISSED_TOTAL`]).
pub fn missed(count: usize) {
    metrics::counter!(MISSED_TOTAL).increment(u64::try_from(count).unwrap_or(u64::MAX));
}

/// Counts one consumed task event under its `outcome` ([`TASK_EVENTS_TOTAL`]).
pub fn task_event(outcome: EventOutcome) {
    metrics::counter!(TASK_EVENTS_TOTAL, "outcome" => outcome.as_str()).increment(1);
}
