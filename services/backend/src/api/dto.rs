//! The wire format of the task API (requests, responses, OpenAPI schemas) and its mapping to the domain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::notification::NotificationSettings;
use crate::domain::violations::Collector;
use crate::domain::{
    NotificationSettingsInput, Nullable, Priority, RecurrenceAnchor, RecurrenceInput, Reminder, ReminderInput, Task,
    TaskPatch, TaskSpecInput, TaskStatus, Violations,
};

/// A recurrence rule: RFC 5545 RRULE subset (FREQ=DAILY|WEEKLY|MONTHLY|YEARLY, INTERVAL, BYDAY, BYMONTHDAY,
/// COUNT or UNTIL), starting at `due_at` in the task's `time_zone`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecurrenceDto {
    /// The rule (case-insensitive, an `RRULE:` prefix is allowed); checked against the task's `due_at`, so a
    /// rule `rrule` refuses, an `UNTIL` before `due_at` or no room for the next occurrence is a 422.
    #[schema(example = "FREQ=WEEKLY;BYDAY=MO,TH", min_length = 1)]
    pub rrule: String,
    #[serde(default)]
    pub anchor: RecurrenceAnchor,
}

impl From<RecurrenceDto> for RecurrenceInput {
    fn from(dto: RecurrenceDto) -> Self {
        // A series set through the API starts at the task's due time.
        RecurrenceInput { rule: dto.rrule, anchor: dto.anchor, series_start: None }
    }
}

/// A task's recurrence as the API returns it: the rule, its anchor, and where its series starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RecurrenceResponse {
    #[schema(example = "FREQ=WEEKLY;BYDAY=MO,TH")]
    pub rrule: String,
    pub anchor: RecurrenceAnchor,
    /// The first due time of the series this task belongs to (its RFC 5545 DTSTART, read in the task's
    /// `time_zone`): every occurrence is computed from it, and `COUNT` counts from it. Set by the server: a new
    /// series starts at `due_at`; changing `due_at`, `time_zone` or `rrule` starts the series again at this task.
    pub series_start: DateTime<Utc>,
}

/// A reminder: `minutes` (0 to 40 320, four weeks) before the due time, or at a fixed instant. Reminders are
/// distinct; `before_due` needs the task's `due_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReminderDto {
    BeforeDue {
        #[schema(minimum = 0, maximum = 40_320)]
        minutes: i64,
    },
    At {
        at: DateTime<Utc>,
    },
}

impl From<ReminderDto> for ReminderInput {
    fn from(dto: ReminderDto) -> Self {
        match dto {
            ReminderDto::BeforeDue { minutes } => ReminderInput::BeforeDue { minutes },
            ReminderDto::At { at } => ReminderInput::At { at },
        }
    }
}

impl From<Reminder> for ReminderDto {
    fn from(reminder: Reminder) -> Self {
        match reminder {
            Reminder::BeforeDue { minutes } => ReminderDto::BeforeDue { minutes: i64::from(minutes) },
            Reminder::At { at } => ReminderDto::At { at },
        }
    }
}

fn default_time_zone() -> String {
    "UTC".to_owned()
}

/// A new task. Server-set fields (`id`, `series_id`, `status`, `version`, timestamps) are rejected. A recurring
/// task and a `before_due` reminder need `due_at`; `due_at` lies between 1970-01-01T00:00:00Z and
/// 2099-12-31T23:59:59Z (the zone rules Taskwatch has end there), and a recurring series needs room for its next
/// occurrence before that end.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskRequest {
    #[schema(example = "Water the plants", min_length = 1, max_length = 200)]
    pub title: String,
    #[serde(default)]
    #[schema(max_length = 10_000)]
    pub description: Option<String>,
    #[serde(default)]
    pub priority: Priority,
    /// Up to 20 distinct labels of 1 to 50 characters.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub labels: Vec<LabelDto>,
    #[serde(default)]
    pub due_at: Option<DateTime<Utc>>,
    /// IANA zone the due time and recurrence are interpreted in; defaults to UTC.
    #[serde(default = "default_time_zone")]
    #[schema(example = "Europe/Berlin")]
    pub time_zone: String,
    #[serde(default)]
    pub recurrence: Option<RecurrenceDto>,
    /// Up to 10 reminders.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub reminders: Vec<ReminderDto>,
}

/// A label: 1 to 50 characters, one line, not blank.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, min_length = 1, max_length = 50)]
pub struct LabelDto(pub String);

impl CreateTaskRequest {
    pub fn into_input(self) -> TaskSpecInput {
        TaskSpecInput {
            title: self.title,
            description: self.description,
            priority: self.priority,
            labels: self.labels.into_iter().map(|label| label.0).collect(),
            due_at: self.due_at,
            time_zone: self.time_zone,
            recurrence: self.recurrence.map(Into::into),
            reminders: self.reminders.into_iter().map(Into::into).collect(),
        }
    }
}

/// One field of a partial update: absent (unchanged), `null`, or a value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Only reached when the key is present; `#[serde(default)]` covers the absent case.
        Ok(Option::<T>::deserialize(deserializer)?.map_or(Patch::Null, Patch::Value))
    }
}

impl<T> Patch<T> {
    /// For fields that can be cleared.
    fn nullable(self) -> Nullable<T> {
        match self {
            Patch::Absent => Nullable::Unchanged,
            Patch::Null => Nullable::Clear,
            Patch::Value(value) => Nullable::Set(value),
        }
    }

    /// For fields that always have a value: `null` is an error, not "unchanged".
    fn required(self, field: &str, collector: &mut Collector) -> Option<T> {
        match self {
            Patch::Absent => None,
            Patch::Null => {
                collector.add(field, "must not be null");
                None
            }
            Patch::Value(value) => Some(value),
        }
    }
}

/// A partial update with JSON merge-patch semantics: absent fields are unchanged, `null` clears `description`,
/// `due_at` and `recurrence`. Requires `If-Match`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTaskRequest {
    #[serde(default)]
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    pub title: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 10_000)]
    pub description: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Priority)]
    pub priority: Patch<Priority>,
    /// Up to 20 distinct labels of 1 to 50 characters.
    #[serde(default)]
    #[schema(value_type = Vec<LabelDto>, max_items = 20)]
    pub labels: Patch<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub due_at: Patch<DateTime<Utc>>,
    #[serde(default)]
    #[schema(value_type = String)]
    pub time_zone: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<RecurrenceDto>)]
    pub recurrence: Patch<RecurrenceDto>,
    /// Up to 10 reminders.
    #[serde(default)]
    #[schema(value_type = Vec<ReminderDto>, max_items = 10)]
    pub reminders: Patch<Vec<ReminderDto>>,
}

impl UpdateTaskRequest {
    pub fn into_patch(self) -> Result<TaskPatch, Violations> {
        let mut collector = Collector::new();
        let title = self.title.required("title", &mut collector);
        let priority = self.priority.required("priority", &mut collector);
        let labels = self.labels.required("labels", &mut collector);
        let time_zone = self.time_zone.required("time_zone", &mut collector);
        let reminders = self.reminders.required("reminders", &mut collector);
        let patch = TaskPatch {
            title,
            description: self.description.nullable(),
            priority,
            labels,
            due_at: self.due_at.nullable(),
            time_zone,
            recurrence: match self.recurrence.nullable() {
                Nullable::Unchanged => Nullable::Unchanged,
                Nullable::Clear => Nullable::Clear,
                Nullable::Set(dto) => Nullable::Set(dto.into()),
            },
            reminders: reminders.map(|list| list.into_iter().map(Into::into).collect()),
        };
        collector.finish(|| Some(patch))
    }
}

/// A task as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TaskResponse {
    pub id: Uuid,
    /// Shared by every occurrence of a recurring task; equals `id` for a one-off task.
    pub series_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub priority: Priority,
    pub labels: Vec<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub time_zone: String,
    pub recurrence: Option<RecurrenceResponse>,
    pub reminders: Vec<ReminderDto>,
    pub status: TaskStatus,
    pub completed_at: Option<DateTime<Utc>>,
    /// Grows with every change; the `ETag` is this number in quotes.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Task> for TaskResponse {
    fn from(task: &Task) -> Self {
        Self {
            id: task.id.as_uuid(),
            series_id: task.series_id,
            title: task.spec.title.as_str().to_owned(),
            description: task.spec.description.as_ref().map(|d| d.as_str().to_owned()),
            priority: task.spec.priority,
            labels: task.spec.labels.to_vec(),
            due_at: task.spec.due_at,
            time_zone: task.spec.time_zone.name().to_owned(),
            recurrence: task.spec.recurrence.as_ref().map(|r| RecurrenceResponse {
                rrule: r.rule().to_owned(),
                anchor: r.anchor(),
                series_start: r.series_start(),
            }),
            reminders: task.spec.reminders.as_slice().iter().copied().map(Into::into).collect(),
            status: task.status(),
            completed_at: task.completion.completed_at(),
            version: task.version.get(),
            created_at: task.created_at,
            updated_at: task.updated_at,
        }
    }
}

/// One page of tasks in the order (due_at, nulls last; id).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskListResponse {
    pub items: Vec<TaskResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Where reminders are delivered; `null` switches a channel off.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettingsDto {
    #[serde(default)]
    #[schema(example = "alice@example.com")]
    pub email: Option<String>,
    /// https only; private, loopback and link-local targets are rejected.
    #[serde(default)]
    #[schema(example = "https://hooks.example.com/taskwatch")]
    pub webhook_url: Option<String>,
}

impl From<NotificationSettingsDto> for NotificationSettingsInput {
    fn from(dto: NotificationSettingsDto) -> Self {
        NotificationSettingsInput { email: dto.email, webhook_url: dto.webhook_url }
    }
}

impl From<&NotificationSettings> for NotificationSettingsDto {
    fn from(settings: &NotificationSettings) -> Self {
        Self {
            email: settings.email.as_ref().map(|e| e.as_str().to_owned()),
            webhook_url: settings.webhook_url.as_ref().map(|u| u.as_str().to_owned()),
        }
    }
}
