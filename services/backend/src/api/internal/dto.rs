//! The wire format of the internal API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::super::dto::TaskResponse;
use crate::domain::Task;

/// The next occurrence of a recurring series. The new task repeats the previous one (title, description,
/// priority, labels, time zone, recurrence, `before_due` reminders; `at` reminders are not carried over) at
/// `due_at`, which must be strictly after the previous task's `due_at`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOccurrenceRequest {
    /// The occurrence this one follows (usually the task whose completion triggered the request); it must belong
    /// to the series in the path.
    pub previous_task_id: Uuid,
    /// When the new occurrence is due, computed from the series' rule in its time zone.
    #[schema(example = "2026-03-30T07:00:00Z")]
    pub due_at: DateTime<Utc>,
}

/// A task of any user, with its owner (user ids are not part of the public task representation).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InternalTaskResponse {
    /// The user the task belongs to (the `sub` of their tokens).
    pub owner_id: String,
    /// The task as the public API represents it, its fields beside `owner_id`.
    #[serde(flatten)]
    pub task: TaskResponse,
}

impl From<&Task> for InternalTaskResponse {
    fn from(task: &Task) -> Self {
        Self { owner_id: task.owner.as_str().to_owned(), task: TaskResponse::from(task) }
    }
}
