//! The scheduler on a real Postgres: due jobs become exactly one `reminder.due.v1` outbox row each, even with two
//! schedulers racing over one database; jobs that fell due during downtime fire on start, those past the maximum
//! lateness are counted missed; it wakes for a job due soon and for jobs this replica's consumer just added.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use events::task::{Reminder, TaskChange};
use reminder::config::SchedulerConfig;
use reminder::handler::{SchedulerWake, TaskEventHandler};
use reminder::lateness::MaxLateness;
use reminder::scheduler::Scheduler;
use reminder::store::migrations::SCHEMA;
use reminder::trace_context::TraceContext;
use support::{Db, minutes, now, task};
use testkit::exposition::series_value;
use tokio_util::sync::CancellationToken;

const TIMEOUT: Duration = testkit::wait::DEFAULT_TIMEOUT;

fn config(poll_interval: Duration, batch_size: u16) -> SchedulerConfig {
    SchedulerConfig { poll_interval, max_lateness: MaxLateness::new(Duration::from_secs(15 * 60)).unwrap(), batch_size }
}

/// A running scheduler; stopped (and awaited) by [`Running::stop`], aborted if dropped.
struct Running {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    fn start(db: &Db, config: SchedulerConfig, wake: SchedulerWake) -> Self {
        let scheduler = Scheduler::new(db.pool.clone(), outbox::Outbox::new(SCHEMA), config, wake);
        let stop = CancellationToken::new();
        let task = Some(tokio::spawn(scheduler.run(stop.clone())));
        Self { stop, task }
    }

    async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(TIMEOUT, task).await.expect("the scheduler stops").unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn until_count(db: &Db, state: &str, expected: i64) {
    testkit::wait::until(TIMEOUT, || async { db.count(state).await == expected })
        .await
        .unwrap_or_else(|_| panic!("never {expected} jobs {state}"));
}

fn instant(value: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap()).unwrap().to_utc()
}

#[tokio::test]
async fn a_due_job_becomes_one_outbox_row_with_the_task_and_its_trace() {
    let db = Db::migrated().await;
    let due_at = now() + minutes(1);
    let created = task(Some(due_at), vec![Reminder::BeforeDue { minutes: 2 }]);
    db.apply(TaskChange::Created, &created).await;

    let scheduler = Running::start(&db, config(Duration::from_millis(200), 100), SchedulerWake::new());
    until_count(&db, "fired", 1).await;
    scheduler.stop().await;

    let rows = db.outbox().await;
    assert_eq!(rows.len(), 1);
    let (payload, key, topic, headers) = &rows[0];
    assert_eq!(topic, events::topics::REMINDERS);
    assert_eq!(key, &created.id.to_string());
    assert_eq!(headers["traceparent"], support::TRACEPARENT);
    assert_eq!(payload["type"], events::reminder::REMINDER_DUE_V1);
    assert_eq!(payload["subject"], created.id.to_string());
    let data = &payload["data"];
    assert_eq!(data["task_id"], created.id.to_string());
    assert_eq!(data["series_id"], created.series_id.to_string());
    assert_eq!(data["owner_id"], "alice");
    assert_eq!(data["title"], "Water the plants");
    assert_eq!(data["time_zone"], "Europe/Berlin");
    assert_eq!(instant(&data["due_at"]), due_at);
    assert_eq!(instant(&data["remind_at"]), due_at - minutes(2));
    assert!(instant(&data["fired_at"]) >= instant(&data["remind_at"]));
    let job_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM reminder.reminder_jobs WHERE state = 'fired'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(data["job_id"], job_id.to_string());
}

#[tokio::test]
async fn downtime_catch_up_fires_what_is_late_and_misses_what_is_too_late() {
    let recorder = observability::metrics::install().unwrap();
    reminder::metrics::describe();
    let db = Db::migrated().await;
    // Planned while the scheduler was down: one a little late, one far too late, one still ahead.
    let created = task(
        Some(now() + minutes(120)),
        vec![
            Reminder::At { at: now() - minutes(5) },
            Reminder::At { at: now() - minutes(20) },
            Reminder::At { at: now() + minutes(60) },
        ],
    );
    db.apply(TaskChange::Created, &created).await;

    let scheduler = Running::start(&db, config(Duration::from_millis(200), 100), SchedulerWake::new());
    until_count(&db, "missed", 1).await;
    until_count(&db, "fired", 1).await;
    scheduler.stop().await;

    assert_eq!(db.count("pending").await, 1);
    let rows = db.outbox().await;
    assert_eq!(rows.len(), 1, "a missed job is not sent");
    let fired_remind_at = instant(&rows[0].0["data"]["remind_at"]);
    assert!(fired_remind_at > now() - minutes(6) && fired_remind_at < now() - minutes(4), "{fired_remind_at}");
    let metrics = observability::metrics::scrape_text(&recorder);
    assert_eq!(series_value(&metrics, "taskwatch_reminders_missed_total"), Some(1.0), "{metrics}");
    assert_eq!(series_value(&metrics, "taskwatch_reminders_fired_total"), Some(1.0), "{metrics}");
    assert_eq!(series_value(&metrics, "taskwatch_reminder_fire_delay_seconds_count"), Some(1.0), "{metrics}");
    assert_eq!(series_value(&metrics, "taskwatch_reminder_jobs_pending"), Some(1.0), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_over_one_database_fire_each_job_once() {
    let db = Db::migrated().await;
    let mut expected = 0;
    for n in 0..40 {
        let reminders = (1..=5).map(|k| Reminder::At { at: now() - TimeDelta::seconds(n * 5 + k) }).collect();
        db.apply(TaskChange::Created, &task(Some(now() + minutes(60)), reminders)).await;
        expected += 5;
    }
    assert_eq!(db.count("pending").await, expected);

    // Separate pools, as two replicas would have; small batches so the claims interleave.
    let other = sqlx::PgPool::connect(db.database.url()).await.unwrap();
    let first = Running::start(&db, config(Duration::from_millis(50), 7), SchedulerWake::new());
    let second = {
        let scheduler = Scheduler::new(
            other.clone(),
            outbox::Outbox::new(SCHEMA),
            config(Duration::from_millis(50), 7),
            SchedulerWake::new(),
        );
        let stop = CancellationToken::new();
        Running { task: Some(tokio::spawn(scheduler.run(stop.clone()))), stop }
    };
    until_count(&db, "fired", expected).await;
    first.stop().await;
    second.stop().await;

    let rows = db.outbox().await;
    let job_ids: HashSet<String> = rows.iter().map(|(payload, ..)| payload["data"]["job_id"].to_string()).collect();
    assert_eq!(rows.len(), usize::try_from(expected).unwrap(), "one outbox row per job");
    assert_eq!(job_ids.len(), rows.len(), "no job fired twice");
    assert_eq!(db.count("pending").await, 0);
}

#[tokio::test]
async fn it_wakes_for_the_next_due_job_and_for_jobs_just_added() {
    let db = Db::migrated().await;
    // A poll interval no test waits out: only the two wake-ups can fire these jobs in time.
    let wake = SchedulerWake::new();
    let scheduler = Running::start(&db, config(Duration::from_secs(3600), 100), wake.clone());
    let handler = TaskEventHandler::new(db.pool.clone(), wake);
    let trace = TraceContext::default();

    // Added by this replica's consumer, due already: the handler wakes the scheduler.
    let due_now = task(None, vec![Reminder::At { at: now() - TimeDelta::seconds(1) }]);
    handler.handle(support::raw(&support::event(TaskChange::Created, &due_now)), &trace).await.unwrap();
    until_count(&db, "fired", 1).await;

    // Due in two seconds: the scheduler sleeps until then, not until the next poll.
    let soon = task(None, vec![Reminder::At { at: now() + TimeDelta::seconds(2) }]);
    handler.handle(support::raw(&support::event(TaskChange::Created, &soon)), &trace).await.unwrap();
    until_count(&db, "fired", 2).await;
    scheduler.stop().await;
}
