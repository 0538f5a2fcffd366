//! Shared by the reminder test suites: a migrated throwaway database, task events as the backend writes them,
//! and readers of what the service stored.

#![allow(dead_code, clippy::unwrap_used)]

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use events::CloudEvent;
use events::task::{Reminder, TaskChange, TaskEvent, TaskSnapshot, TaskStatus};
use messaging::MessageHeaders;
use outbox::Outbox;
use reminder::handler::{SchedulerWake, TaskEventHandler};
use reminder::store::migrations::{SCHEMA, migrator};
use reminder::trace_context::TraceContext;
use serde_json::Value;
use sqlx::PgPool;
use testkit::postgres::TestDatabase;
use uuid::Uuid;

pub const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A fresh database with the reminder schema applied; dropped with the value.
pub struct Db {
    pub database: TestDatabase,
    pub pool: PgPool,
}

impl Db {
    pub async fn migrated() -> Self {
        let database = TestDatabase::new().await.unwrap();
        let pool = database.pool();
        let migrations = database::for_schema(migrator(), SCHEMA);
        migrations.run(&pool).await.unwrap();
        Outbox::new(SCHEMA).install(&pool).await.unwrap();
        Self { database, pool }
    }

    /// Applies `change` of `task` as the consumer would, with [`TRACEPARENT`] as the event's trace.
    pub async fn apply(&self, change: TaskChange, task: &TaskSnapshot) {
        let handler = TaskEventHandler::new(self.pool.clone(), SchedulerWake::new());
        let trace = TraceContext::from_headers(&trace_headers());
        handler.handle(raw(&event(change, task)), &trace).await.unwrap();
    }

    /// `(payload, message_key, topic, headers)` of every outbox row, oldest first.
    pub async fn outbox(&self) -> Vec<(Value, String, String, Value)> {
        sqlx::query_as("SELECT payload, message_key, topic, headers FROM reminder.outbox ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    /// Every job of `task_id` as `(reminder, remind_at, state)`, ordered by instant.
    pub async fn jobs(&self, task_id: Uuid) -> Vec<(String, DateTime<Utc>, String)> {
        sqlx::query_as(
            "SELECT reminder, remind_at, state FROM reminder.reminder_jobs WHERE task_id = $1 \
             ORDER BY remind_at, reminder",
        )
        .bind(task_id)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// `(remind_at, state)` of the jobs of `task_id` in `state`.
    pub async fn jobs_in(&self, task_id: Uuid, state: &str) -> Vec<DateTime<Utc>> {
        self.jobs(task_id).await.into_iter().filter(|(_, _, s)| s == state).map(|(_, at, _)| at).collect()
    }

    /// How many jobs across all tasks are in `state`.
    pub async fn count(&self, state: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM reminder.reminder_jobs WHERE state = $1")
            .bind(state)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

/// Now, at the microsecond precision Postgres keeps.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

/// An open one-off task due at `due_at` with `reminders`, at version 1.
pub fn task(due_at: Option<DateTime<Utc>>, reminders: Vec<Reminder>) -> TaskSnapshot {
    let created = now();
    TaskSnapshot { due_at, reminders, created_at: created, updated_at: created, ..events::fixtures::task() }
}

/// The same task after a change the backend made: version bumped, status following the change.
pub fn changed(task: &TaskSnapshot, change: TaskChange, edit: impl FnOnce(&mut TaskSnapshot)) -> TaskSnapshot {
    let mut next = task.clone();
    match change {
        TaskChange::Completed => {
            next.status = TaskStatus::Completed;
            next.completed_at = Some(now());
        }
        TaskChange::Reopened => {
            next.status = TaskStatus::Open;
            next.completed_at = None;
        }
        TaskChange::Created | TaskChange::Updated | TaskChange::Deleted => {}
    }
    // A deletion carries the task as it was, at its last version.
    if change != TaskChange::Deleted {
        next.version += 1;
        next.updated_at = now();
    }
    edit(&mut next);
    next
}

/// The envelope the backend publishes for `change` of `task`.
pub fn event(change: TaskChange, task: &TaskSnapshot) -> CloudEvent<TaskEvent> {
    TaskEvent { change, task: task.clone() }.into_cloud_event()
}

/// The envelope as a consumer sees it: `data` still raw.
pub fn raw(event: &CloudEvent<TaskEvent>) -> CloudEvent<Value> {
    CloudEvent::decode(&event.to_bytes().unwrap()).unwrap()
}

/// Headers carrying [`TRACEPARENT`], as the backend's relay writes them.
pub fn trace_headers() -> MessageHeaders {
    MessageHeaders::new().with("traceparent", TRACEPARENT)
}
