//! `backend.tasks`: every query is scoped by owner, so one user can never read or change another's task.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use super::error::{Context, StoreError};
use crate::domain::{
    ListQuery, OwnerId, Priority, RecurrenceAnchor, Reminder, StoredTask, Task, TaskId, TaskStatus, Version,
};

const COLUMNS: &str = "id, owner_id, series_id, title, description, priority, labels, due_at, time_zone, rrule, \
                       rrule_anchor, series_start, reminders, status, completed_at, version, created_at, updated_at";

#[derive(Debug, sqlx::FromRow)]
struct TaskRow {
    id: Uuid,
    owner_id: String,
    series_id: Uuid,
    title: String,
    description: Option<String>,
    priority: String,
    labels: Vec<String>,
    due_at: Option<DateTime<Utc>>,
    time_zone: String,
    rrule: Option<String>,
    rrule_anchor: Option<String>,
    series_start: Option<DateTime<Utc>>,
    reminders: Json<Vec<Reminder>>,
    status: String,
    completed_at: Option<DateTime<Utc>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TaskRow {
    /// The row as a domain task, validated again; a value no vocabulary knows is a corrupt row.
    fn into_task(self) -> Result<Task, StoreError> {
        let id = self.id;
        let corrupt = |reason: String| StoreError::corrupt_task(id, reason);
        let priority = self.priority.parse::<Priority>().map_err(|error| corrupt(error.to_string()))?;
        let status = self.status.parse::<TaskStatus>().map_err(|error| corrupt(error.to_string()))?;
        let recurrence = match (self.rrule, self.rrule_anchor) {
            (Some(rrule), Some(anchor)) => {
                let anchor = anchor.parse::<RecurrenceAnchor>().map_err(|error| corrupt(error.to_string()))?;
                Some((rrule, anchor, self.series_start))
            }
            (None, None) => None,
            _ => return Err(corrupt("rrule and rrule_anchor must be set together".to_owned())),
        };
        StoredTask {
            id: self.id,
            owner_id: self.owner_id,
            series_id: self.series_id,
            title: self.title,
            description: self.description,
            priority,
            labels: self.labels,
            status,
            due_at: self.due_at,
            time_zone: self.time_zone,
            recurrence,
            reminders: self.reminders.0,
            completed_at: self.completed_at,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
        .into_task()
        .map_err(|error| corrupt(error.to_string()))
    }
}

/// The column values of a task, in one place for INSERT and UPDATE.
struct Columns<'a> {
    rrule: Option<&'a str>,
    rrule_anchor: Option<&'static str>,
    series_start: Option<DateTime<Utc>>,
    reminders: Json<Vec<Reminder>>,
}

impl<'a> Columns<'a> {
    fn of(task: &'a Task) -> Self {
        let recurrence = task.spec.recurrence.as_ref();
        Self {
            rrule: recurrence.map(|r| r.rule()),
            rrule_anchor: recurrence.map(|r| r.anchor().as_str()),
            series_start: recurrence.map(|r| r.series_start()),
            reminders: Json(task.spec.reminders.as_slice().to_vec()),
        }
    }
}

/// Inserts a new task; the caller writes its outbox event in the same transaction.
pub async fn insert(conn: &mut PgConnection, task: &Task) -> Result<(), StoreError> {
    let columns = Columns::of(task);
    sqlx::query(
        "INSERT INTO backend.tasks (id, owner_id, series_id, title, description, priority, labels, due_at, \
         time_zone, rrule, rrule_anchor, reminders, status, completed_at, version, created_at, updated_at, \
         series_start) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(task.id.as_uuid())
    .bind(task.owner.as_str())
    .bind(task.series_id)
    .bind(task.spec.title.as_str())
    .bind(task.spec.description.as_ref().map(|d| d.as_str()))
    .bind(task.spec.priority.as_str())
    .bind(task.spec.labels.as_slice())
    .bind(task.spec.due_at)
    .bind(task.spec.time_zone.name())
    .bind(columns.rrule)
    .bind(columns.rrule_anchor)
    .bind(columns.reminders)
    .bind(task.status().as_str())
    .bind(task.completion.completed_at())
    .bind(task.version.get())
    .bind(task.created_at)
    .bind(task.updated_at)
    .bind(columns.series_start)
    .execute(conn)
    .await
    .context("insert task")?;
    Ok(())
}

/// The owner's task; `None` when there is no such task or it belongs to someone else.
pub async fn find(conn: &mut PgConnection, owner: &OwnerId, id: TaskId) -> Result<Option<Task>, StoreError> {
    let mut query = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM backend.tasks WHERE id = "));
    query.push_bind(id.as_uuid()).push(" AND owner_id = ").push_bind(owner.as_str());
    let row: Option<TaskRow> = query.build_query_as().fetch_optional(conn).await.context("find task")?;
    row.map(TaskRow::into_task).transpose()
}

/// Any owner's task: only for the internal API, whose callers are other Taskwatch services, never users.
pub async fn find_any(conn: &mut PgConnection, id: TaskId) -> Result<Option<Task>, StoreError> {
    let mut query = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM backend.tasks WHERE id = "));
    query.push_bind(id.as_uuid());
    let row: Option<TaskRow> = query.build_query_as().fetch_optional(conn).await.context("find any task")?;
    row.map(TaskRow::into_task).transpose()
}

/// Replaces the stored task with `task` if the stored version is still `expected`; `false` when it is not (or the
/// task is gone). The version check and the write are one statement, so concurrent writers cannot both win.
pub async fn update(conn: &mut PgConnection, expected: Version, task: &Task) -> Result<bool, StoreError> {
    let columns = Columns::of(task);
    let result = sqlx::query(
        "UPDATE backend.tasks SET title = $4, description = $5, priority = $6, labels = $7, due_at = $8, \
         time_zone = $9, rrule = $10, rrule_anchor = $11, reminders = $12, status = $13, completed_at = $14, \
         version = $15, updated_at = $16, series_start = $17 \
         WHERE id = $1 AND owner_id = $2 AND version = $3",
    )
    .bind(task.id.as_uuid())
    .bind(task.owner.as_str())
    .bind(expected.get())
    .bind(task.spec.title.as_str())
    .bind(task.spec.description.as_ref().map(|d| d.as_str()))
    .bind(task.spec.priority.as_str())
    .bind(task.spec.labels.as_slice())
    .bind(task.spec.due_at)
    .bind(task.spec.time_zone.name())
    .bind(columns.rrule)
    .bind(columns.rrule_anchor)
    .bind(columns.reminders)
    .bind(task.status().as_str())
    .bind(task.completion.completed_at())
    .bind(task.version.get())
    .bind(task.updated_at)
    .bind(columns.series_start)
    .execute(conn)
    .await
    .context("update task")?;
    Ok(result.rows_affected() == 1)
}

/// Deletes the task if its version is still `expected`; `false` otherwise.
pub async fn delete(
    conn: &mut PgConnection,
    owner: &OwnerId,
    id: TaskId,
    expected: Version,
) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM backend.tasks WHERE id = $1 AND owner_id = $2 AND version = $3")
        .bind(id.as_uuid())
        .bind(owner.as_str())
        .bind(expected.get())
        .execute(conn)
        .await
        .context("delete task")?;
    Ok(result.rows_affected() == 1)
}

/// One page in the order `(due_at NULLS LAST, id)`, fetching one extra row so the caller knows whether another
/// page follows.
pub async fn list(conn: &mut PgConnection, owner: &OwnerId, query: &ListQuery) -> Result<Vec<Task>, StoreError> {
    let mut sql = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM backend.tasks WHERE owner_id = "));
    sql.push_bind(owner.as_str());
    let filter = &query.filter;
    if let Some(status) = filter.status {
        sql.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(due_from) = filter.due_from {
        sql.push(" AND due_at >= ").push_bind(due_from);
    }
    if let Some(due_to) = filter.due_to {
        sql.push(" AND due_at < ").push_bind(due_to);
    }
    if let Some(label) = &filter.label {
        sql.push(" AND labels @> ARRAY[").push_bind(label.clone()).push("]::text[]");
    }
    if let Some(priority) = filter.priority {
        sql.push(" AND priority = ").push_bind(priority.as_str());
    }
    if let Some(after) = query.after {
        match after.due_at {
            // Rows after (d, i): later due times, the same due time with a greater id, then every undated row.
            Some(due_at) => {
                sql.push(" AND (due_at > ")
                    .push_bind(due_at)
                    .push(" OR (due_at = ")
                    .push_bind(due_at)
                    .push(" AND id > ")
                    .push_bind(after.id.as_uuid())
                    .push(") OR due_at IS NULL)");
            }
            // Undated rows come last, ordered by id alone.
            None => {
                sql.push(" AND due_at IS NULL AND id > ").push_bind(after.id.as_uuid());
            }
        }
    }
    sql.push(" ORDER BY due_at ASC NULLS LAST, id ASC LIMIT ").push_bind(i64::from(query.page_size.get()) + 1);
    let rows: Vec<TaskRow> = sql.build_query_as().fetch_all(conn).await.context("list tasks")?;
    rows.into_iter().map(TaskRow::into_task).collect()
}
