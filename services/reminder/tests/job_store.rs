//! Task events applied to the job store on a real Postgres, through the transport-neutral handler: jobs are
//! planned, moved, cancelled and brought back as the task changes; duplicates and stale snapshots change nothing.

#![allow(clippy::unwrap_used)]

mod support;

use events::task::{Reminder, TaskChange, TaskSnapshot};
use reminder::decision::IgnoreReason;
use reminder::handler::{Handled, SchedulerWake, TaskEventHandler};
use reminder::store::jobs::{self, Settled};
use reminder::store::retention::{self, Purged};
use reminder::store::tasks::Applied;
use reminder::trace_context::TraceContext;
use support::{Db, changed, event, minutes, now, raw, task, trace_headers};
use uuid::Uuid;

struct Fixture {
    db: Db,
    handler: TaskEventHandler,
}

impl Fixture {
    async fn new() -> Self {
        let db = Db::migrated().await;
        let handler = TaskEventHandler::new(db.pool.clone(), SchedulerWake::new());
        Self { db, handler }
    }

    async fn send(&self, change: TaskChange, task: &TaskSnapshot) -> Applied {
        self.send_event(&event(change, task)).await
    }

    async fn send_event(&self, event: &events::CloudEvent<events::task::TaskEvent>) -> Applied {
        let trace = TraceContext::from_headers(&trace_headers());
        match self.handler.handle(raw(event), &trace).await.unwrap() {
            Handled::Applied(applied) => applied,
            Handled::IgnoredType => panic!("a task event was ignored"),
        }
    }
}

#[tokio::test]
async fn a_created_task_gets_one_pending_job_per_reminder_with_the_trace() {
    let fixture = Fixture::new().await;
    let due = now() + minutes(60);
    let absolute = now() + minutes(30);
    let created = task(Some(due), vec![Reminder::BeforeDue { minutes: 10 }, Reminder::At { at: absolute }]);

    let applied = fixture.send(TaskChange::Created, &created).await;

    assert_eq!(applied, Applied::Scheduled { planned: 2, added: 2 });
    assert_eq!(
        fixture.db.jobs(created.id).await,
        vec![
            ("at".to_owned(), absolute, "pending".to_owned()),
            ("before_due:10".to_owned(), due - minutes(10), "pending".to_owned()),
        ]
    );
    let traceparents: Vec<Option<String>> =
        sqlx::query_scalar("SELECT trace_context->>'traceparent' FROM reminder.reminder_jobs WHERE task_id = $1")
            .bind(created.id)
            .fetch_all(&fixture.db.pool)
            .await
            .unwrap();
    assert_eq!(traceparents, vec![Some(support::TRACEPARENT.to_owned()); 2]);
}

#[tokio::test]
async fn moving_the_due_time_replaces_the_pending_jobs() {
    let fixture = Fixture::new().await;
    let due = now() + minutes(60);
    let created = task(Some(due), vec![Reminder::BeforeDue { minutes: 10 }]);
    fixture.send(TaskChange::Created, &created).await;

    let later = due + minutes(60);
    let moved = changed(&created, TaskChange::Updated, |task| task.due_at = Some(later));
    let applied = fixture.send(TaskChange::Updated, &moved).await;

    assert_eq!(applied, Applied::Scheduled { planned: 1, added: 1 });
    assert_eq!(
        fixture.db.jobs(created.id).await,
        vec![("before_due:10".to_owned(), later - minutes(10), "pending".to_owned())]
    );

    let fewer = changed(&moved, TaskChange::Updated, |task| task.reminders.clear());
    fixture.send(TaskChange::Updated, &fewer).await;
    assert!(fixture.db.jobs(created.id).await.is_empty());
}

#[tokio::test]
async fn an_update_never_refires_a_job_that_already_fired() {
    let fixture = Fixture::new().await;
    let created = task(Some(now() + minutes(60)), vec![Reminder::BeforeDue { minutes: 10 }]);
    fixture.send(TaskChange::Created, &created).await;
    let job: Uuid = sqlx::query_scalar("SELECT id FROM reminder.reminder_jobs WHERE task_id = $1")
        .bind(created.id)
        .fetch_one(&fixture.db.pool)
        .await
        .unwrap();
    let mut conn = fixture.db.pool.acquire().await.unwrap();
    jobs::settle(&mut conn, &[job], Settled::Fired).await.unwrap();

    let renamed = changed(&created, TaskChange::Updated, |task| task.title = "Water the roses".into());
    let applied = fixture.send(TaskChange::Updated, &renamed).await;

    assert_eq!(applied, Applied::Scheduled { planned: 1, added: 0 });
    assert_eq!(fixture.db.count("fired").await, 1);
    assert_eq!(fixture.db.count("pending").await, 0);
}

#[tokio::test]
async fn completing_cancels_and_reopening_brings_back_only_future_reminders() {
    let fixture = Fixture::new().await;
    let past = now() - minutes(5);
    let future = now() + minutes(30);
    let created = task(Some(now() + minutes(60)), vec![Reminder::At { at: past }, Reminder::At { at: future }]);
    // Planned at creation: the past one is the lateness policy's to judge.
    assert_eq!(fixture.send(TaskChange::Created, &created).await, Applied::Scheduled { planned: 2, added: 2 });

    let completed = changed(&created, TaskChange::Completed, |_| {});
    assert_eq!(fixture.send(TaskChange::Completed, &completed).await, Applied::Cancelled { jobs: 2 });
    assert_eq!(fixture.db.count("pending").await, 0);
    assert_eq!(fixture.db.count("cancelled").await, 2);

    let reopened = changed(&completed, TaskChange::Reopened, |_| {});
    assert_eq!(fixture.send(TaskChange::Reopened, &reopened).await, Applied::Scheduled { planned: 2, added: 1 });
    assert_eq!(fixture.db.jobs_in(created.id, "pending").await, vec![future]);
    assert_eq!(fixture.db.jobs_in(created.id, "cancelled").await, vec![past]);
}

#[tokio::test]
async fn deleting_cancels_for_good() {
    let fixture = Fixture::new().await;
    let created = task(Some(now() + minutes(60)), vec![Reminder::BeforeDue { minutes: 10 }]);
    let created_event = event(TaskChange::Created, &created);
    fixture.send_event(&created_event).await;
    let updated = changed(&created, TaskChange::Updated, |task| task.title = "Renamed".into());
    fixture.send(TaskChange::Updated, &updated).await;

    let deleted = changed(&updated, TaskChange::Deleted, |_| {});
    assert_eq!(fixture.send(TaskChange::Deleted, &deleted).await, Applied::Deleted { jobs: 1 });
    assert_eq!(fixture.db.count("pending").await, 0);

    // A late copy of an older change (a new event id, so dedupe cannot catch it) must not bring the job back.
    let late_copy = event(TaskChange::Updated, &updated);
    assert_eq!(fixture.send_event(&late_copy).await, Applied::Ignored(IgnoreReason::Deleted));
    assert_eq!(fixture.db.count("pending").await, 0);
}

#[tokio::test]
async fn a_duplicate_event_changes_nothing() {
    let fixture = Fixture::new().await;
    let created = task(Some(now() + minutes(60)), vec![Reminder::BeforeDue { minutes: 10 }]);
    let created_event = event(TaskChange::Created, &created);
    fixture.send_event(&created_event).await;
    let completed = changed(&created, TaskChange::Completed, |_| {});
    fixture.send(TaskChange::Completed, &completed).await;
    let before = fixture.db.jobs(created.id).await;

    assert_eq!(fixture.send_event(&created_event).await, Applied::Duplicate);
    assert_eq!(fixture.db.jobs(created.id).await, before);
}

#[tokio::test]
async fn a_stale_snapshot_changes_nothing() {
    let fixture = Fixture::new().await;
    let due = now() + minutes(60);
    let created = task(Some(due), vec![Reminder::BeforeDue { minutes: 10 }]);
    let v2 = changed(&created, TaskChange::Updated, |task| task.due_at = Some(due + minutes(60)));
    let v3 = changed(&v2, TaskChange::Updated, |task| task.due_at = Some(due + minutes(120)));
    fixture.send(TaskChange::Created, &created).await;
    fixture.send(TaskChange::Updated, &v3).await;

    // v2 arrives after v3 (a redelivery across a rebalance): the newer plan stays.
    assert_eq!(fixture.send(TaskChange::Updated, &v2).await, Applied::Ignored(IgnoreReason::Stale));
    assert_eq!(fixture.db.jobs_in(created.id, "pending").await, vec![due + minutes(110)]);
}

#[tokio::test]
async fn events_of_other_types_are_passed_over() {
    let fixture = Fixture::new().await;
    let mut unknown = raw(&event(TaskChange::Created, &task(None, vec![])));
    unknown.event_type = "task.created.v2".into();
    let trace = TraceContext::default();
    assert_eq!(fixture.handler.handle(unknown, &trace).await.unwrap(), Handled::IgnoredType);
}

#[tokio::test]
async fn an_unreadable_payload_is_an_invalid_event() {
    let fixture = Fixture::new().await;
    let mut broken = raw(&event(TaskChange::Created, &task(None, vec![])));
    broken.data = serde_json::json!({"change": "created"});
    let outcome = fixture.handler.handle(broken, &TraceContext::default()).await;
    assert!(matches!(outcome, Err(reminder::handler::HandleError::Invalid(_))), "{outcome:?}");
}

#[tokio::test]
async fn retention_purges_settled_jobs_and_forgotten_tasks_but_never_pending_work() {
    let fixture = Fixture::new().await;
    let open = task(Some(now() + minutes(60)), vec![Reminder::BeforeDue { minutes: 10 }]);
    fixture.send(TaskChange::Created, &open).await;
    let done = task(Some(now() + minutes(60)), vec![Reminder::BeforeDue { minutes: 10 }]);
    fixture.send(TaskChange::Created, &done).await;
    fixture.send(TaskChange::Completed, &changed(&done, TaskChange::Completed, |_| {})).await;

    let purged = retention::purge_before(&fixture.db.pool, now() + minutes(1)).await.unwrap();

    assert_eq!(purged, Purged { processed_events: 3, settled_jobs: 1, tasks: 1 });
    assert_eq!(fixture.db.jobs_in(open.id, "pending").await.len(), 1, "pending jobs are kept");
    assert!(fixture.db.jobs(done.id).await.is_empty());
    let tasks: Vec<Uuid> =
        sqlx::query_scalar("SELECT task_id FROM reminder.tasks").fetch_all(&fixture.db.pool).await.unwrap();
    assert_eq!(tasks, vec![open.id]);

    let nothing_old = retention::purge_before(&fixture.db.pool, now() - minutes(1)).await.unwrap();
    assert_eq!(nothing_old, Purged::default());
}
