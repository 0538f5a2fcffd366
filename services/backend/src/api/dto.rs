//! The wire format of the task API (requests, responses, OpenAPI schemas) and its mapping to the domain.

use std::collections::BTreeMap;

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
    /// Where the next occurrence is counted from: `due` (the schedule, the default) or `completion`.
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
    /// The rule in normalised upper-case form, without an `RRULE:` prefix.
    #[schema(example = "FREQ=WEEKLY;BYDAY=MO,TH")]
    pub rrule: String,
    /// Where the next occurrence is counted from: `due` (the schedule) or `completion`.
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
    /// `minutes` before the task's `due_at`; only on a task that has one.
    BeforeDue {
        /// How long before `due_at`, in minutes: 0 to 40 320 (four weeks).
        #[schema(minimum = 0, maximum = 40_320)]
        minutes: i64,
    },
    /// At a fixed instant, whatever the due time; not carried over to the next occurrence of a recurring task.
    At {
        /// The instant to remind at.
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
    /// What is to be done: 1 to 200 characters after trimming, on one line.
    #[schema(example = "Water the plants", min_length = 1, max_length = 200)]
    pub title: String,
    /// Free text of up to 10 000 characters after trimming; line breaks allowed, blank means none.
    #[serde(default)]
    #[schema(max_length = 10_000)]
    pub description: Option<String>,
    /// How urgent the task is; `medium` when absent.
    #[serde(default)]
    pub priority: Priority,
    /// Up to 20 distinct labels of 1 to 50 characters.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub labels: Vec<LabelDto>,
    /// When the task is due; required for a recurrence or a `before_due` reminder.
    #[serde(default)]
    pub due_at: Option<DateTime<Utc>>,
    /// IANA zone the due time and recurrence are interpreted in; defaults to UTC.
    #[serde(default = "default_time_zone")]
    #[schema(example = "Europe/Berlin")]
    pub time_zone: String,
    /// Makes the task the first occurrence of a recurring series starting at `due_at`; absent for a one-off task.
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
    /// The request as the domain's unvalidated input; the use case validates it and reports every violation together.
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
    /// The key was not sent: the field stays as it is.
    #[default]
    Absent,
    /// The key was sent as `null`: clears a nullable field, and is a violation on any other.
    Null,
    /// The key was sent with a value.
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
    /// The new title: 1 to 200 characters after trimming, on one line; `null` is refused.
    #[serde(default)]
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    pub title: Patch<String>,
    /// The new description of up to 10 000 characters; `null` removes it.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 10_000)]
    pub description: Patch<String>,
    /// The new priority; `null` is refused.
    #[serde(default)]
    #[schema(value_type = Priority)]
    pub priority: Patch<Priority>,
    /// Up to 20 distinct labels of 1 to 50 characters.
    #[serde(default)]
    #[schema(value_type = Vec<LabelDto>, max_items = 20)]
    pub labels: Patch<Vec<String>>,
    /// The new due time; `null` removes it, which a recurring task or a `before_due` reminder refuses. Changing it
    /// starts a recurring series again at this task.
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub due_at: Patch<DateTime<Utc>>,
    /// The new IANA time zone; `null` is refused. Changing it starts a recurring series again at this task.
    #[serde(default)]
    #[schema(value_type = String)]
    pub time_zone: Patch<String>,
    /// The new recurrence; `null` makes the task a one-off. A different rule starts the series again at this task.
    #[serde(default)]
    #[schema(value_type = Option<RecurrenceDto>)]
    pub recurrence: Patch<RecurrenceDto>,
    /// Up to 10 reminders.
    #[serde(default)]
    #[schema(value_type = Vec<ReminderDto>, max_items = 10)]
    pub reminders: Patch<Vec<ReminderDto>>,
}

impl UpdateTaskRequest {
    /// The domain patch; `null` for a field that cannot be cleared (`title`, `priority`, `labels`, `time_zone`,
    /// `reminders`) is a violation.
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
    /// The task's id, a UUIDv7: ids sort by creation time.
    pub id: Uuid,
    /// Shared by every occurrence of a recurring task; equals `id` for a one-off task.
    pub series_id: Uuid,
    /// What is to be done, trimmed.
    pub title: String,
    /// Free text; `null` when the task has none.
    pub description: Option<String>,
    /// How urgent the task is.
    pub priority: Priority,
    /// The labels, in the order they were given.
    pub labels: Vec<String>,
    /// When the task is due; `null` when it has no due time.
    pub due_at: Option<DateTime<Utc>>,
    /// The IANA zone `due_at` and the recurrence are read in.
    pub time_zone: String,
    /// How the task repeats; `null` for a one-off task.
    pub recurrence: Option<RecurrenceResponse>,
    /// The reminders, in the order they were given.
    pub reminders: Vec<ReminderDto>,
    /// `open`, or `completed` (then `completed_at` is set).
    pub status: TaskStatus,
    /// When the task was completed; `null` while it is open.
    pub completed_at: Option<DateTime<Utc>>,
    /// Grows with every change; the `ETag` is this number in quotes.
    pub version: i64,
    /// When the task was created (for an occurrence of a series: when that occurrence was).
    pub created_at: DateTime<Utc>,
    /// When the task last changed; never moves backwards.
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

/// What happened to a task, in a task stream or a task's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskChangeKind {
    /// A new task, including the next occurrence of a recurring one.
    Created,
    /// Its editable fields changed.
    Updated,
    /// It was marked done.
    Completed,
    /// It was marked open again.
    Reopened,
    /// It was deleted; `task` is the task as it was.
    Deleted,
}

impl From<events::task::TaskChange> for TaskChangeKind {
    fn from(change: events::task::TaskChange) -> Self {
        use events::task::TaskChange;
        match change {
            TaskChange::Created => Self::Created,
            TaskChange::Updated => Self::Updated,
            TaskChange::Completed => Self::Completed,
            TaskChange::Reopened => Self::Reopened,
            TaskChange::Deleted => Self::Deleted,
        }
    }
}

/// A task's history (`GET /v1/tasks/{id}/history`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskHistoryResponse {
    /// Every recorded change, oldest first.
    pub entries: Vec<TaskHistoryEntry>,
}

/// One change in a task's history, as audit-log recorded it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaskHistoryEntry {
    /// The change's id, the same as its event id in the task stream.
    pub event_id: Uuid,
    /// What happened.
    pub change: TaskChangeKind,
    /// The task's version after the change.
    pub task_version: i64,
    /// Who made the change: the owner's user id (a next occurrence is made on the owner's behalf).
    pub actor: String,
    /// When the change was made.
    pub occurred_at: DateTime<Utc>,
    /// Whether `fields` has the values from before the change. False when the earlier state was never recorded
    /// (the task changed before the audit trail began): `fields` then lists every field as it is after it.
    pub before_known: bool,
    /// Each field the change changed, named as in the task's events, with its value before and after.
    pub fields: BTreeMap<String, FieldChange>,
}

/// A field's value before and after a change; `null` where it had none (before a creation, after a deletion).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FieldChange {
    /// The value before the change.
    #[schema(schema_with = any_json_value)]
    pub before: serde_json::Value,
    /// The value after the change.
    #[schema(schema_with = any_json_value)]
    pub after: serde_json::Value,
}

/// A schema admitting any JSON value, with every type named (a schema without a type does not read back).
fn any_json_value() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([
            Type::String,
            Type::Number,
            Type::Integer,
            Type::Boolean,
            Type::Array,
            Type::Object,
            Type::Null,
        ]))
        .build()
}

/// One change in the task stream (`GET /v1/tasks/stream`): the `data` of each event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskChangeMessage {
    /// The change's id, also the event's SSE `id`: reconnect with it as `Last-Event-ID` to resume after it.
    pub id: Uuid,
    /// What happened.
    pub change: TaskChangeKind,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// The task after the change (for `deleted`, as it was), as `GET /v1/tasks/{id}` shows it.
    pub task: TaskResponse,
}

impl TaskChangeMessage {
    /// The message for change `id` of `kind` to `task`, made at `time`.
    pub fn new(id: Uuid, kind: events::task::TaskChange, time: DateTime<Utc>, task: &Task) -> Self {
        Self { id, change: kind.into(), time, task: task.into() }
    }
}

/// One page of tasks in the order (due_at, nulls last; id).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskListResponse {
    /// At most `limit` tasks, in the listing order.
    pub items: Vec<TaskResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Where reminders are delivered; `null` switches a channel off.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettingsDto {
    /// Where reminder e-mails go (`name@example.com`, at most 254 characters); `null` sends none.
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
