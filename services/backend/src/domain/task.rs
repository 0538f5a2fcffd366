//! The task aggregate: identity, the client-editable specification, and the open/completed lifecycle.

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use recurrence::{EARLIEST, LATEST, Rule};

use super::patch::{Nullable, TaskPatch};
use super::recurrence::{Recurrence, RecurrenceAnchor};
use super::reminders::{Reminder, ReminderInput, Reminders};
use super::text::{Description, Labels, Title};
use super::violations::{Collector, Violations};

/// A task's id: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(Uuid);

impl TaskId {
    /// A new id, for a new task.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps the id of an existing task (from a path, a row or an event); any UUID is accepted.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The plain UUID, for storage and the wire.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The user a task belongs to: the `sub` of the caller's token. Every query is scoped by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnerId(String);

impl OwnerId {
    /// The longest owner id, in characters, as the `owner_id` column's CHECK counts them.
    pub const MAX_LEN: usize = 255;

    /// Checks a token's `sub`: 1 to [`OwnerId::MAX_LEN`] characters without control characters; the violation
    /// names `sub`.
    pub fn parse(raw: &str) -> Result<Self, Violations> {
        // Characters, as the column's CHECK (length(owner_id) <= 255) counts them.
        if raw.is_empty() || raw.chars().count() > Self::MAX_LEN || raw.chars().any(char::is_control) {
            return Err(Violations::single(
                "sub",
                format!("must be 1 to {} characters without control characters", Self::MAX_LEN),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The id as the token's `sub` carried it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Optimistic-concurrency version: starts at 1 and grows by one with every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(i64);

impl Version {
    /// The version of a newly created task.
    pub const INITIAL: Version = Version(1);

    /// Wraps a stored or client-sent number; one that is not the current version simply never matches.
    pub fn new(value: i64) -> Self {
        Self(value)
    }

    /// The version a change writes.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// The number, as stored and as the `ETag` carries it.
    pub fn get(self) -> i64 {
        self.0
    }
}

pub use vocabulary::{Priority, TaskStatus};

/// Where a task is in its lifecycle; a completed task always knows when it was completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Still to do.
    Open,
    /// Done.
    Completed {
        /// When it was completed, by the server's clock.
        at: DateTime<Utc>,
    },
}

impl Completion {
    /// The status alone, without the completion time.
    pub fn status(self) -> TaskStatus {
        match self {
            Completion::Open => TaskStatus::Open,
            Completion::Completed { .. } => TaskStatus::Completed,
        }
    }

    /// When the task was completed; `None` while it is open.
    pub fn completed_at(self) -> Option<DateTime<Utc>> {
        match self {
            Completion::Open => None,
            Completion::Completed { at } => Some(at),
        }
    }
}

/// Unvalidated editable fields, as a client sent them (or as a patch merged them).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpecInput {
    /// The title as sent; trimmed and bounded on parse.
    pub title: String,
    /// The description as sent; `None` or blank means none.
    pub description: Option<String>,
    /// How urgent the task is (a closed vocabulary, so already valid).
    pub priority: Priority,
    /// The labels as sent, in order.
    pub labels: Vec<String>,
    /// When the task is due; truncated to microseconds and bounded to the supported range on parse.
    pub due_at: Option<DateTime<Utc>>,
    /// An IANA time zone name, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// How the task repeats; `None` for a one-off task.
    pub recurrence: Option<RecurrenceInput>,
    /// The reminders as sent, in order.
    pub reminders: Vec<ReminderInput>,
}

/// An unvalidated recurrence: the rule as sent, its anchor, and the start of the series it continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecurrenceInput {
    /// The RRULE as sent: case-insensitive, an `RRULE:` prefix allowed, no DTSTART.
    pub rule: String,
    /// Where the next occurrence is counted from.
    pub anchor: RecurrenceAnchor,
    /// The series this task belongs to started here; `None` starts a new series at the task's `due_at`.
    pub series_start: Option<DateTime<Utc>>,
}

/// The validated client-editable part of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// What is to be done; trimmed, on one line.
    pub title: Title,
    /// Longer free text; `None` when the task has none.
    pub description: Option<Description>,
    /// How urgent the task is.
    pub priority: Priority,
    /// Distinct labels, in the order given.
    pub labels: Labels,
    /// When the task is due, to the microsecond, between [`EARLIEST`] and [`LATEST`]; `None` for no due time.
    pub due_at: Option<DateTime<Utc>>,
    /// The zone `due_at` and the recurrence are read in.
    pub time_zone: Tz,
    /// How the task repeats; `None` for a one-off task. Always with a `due_at`.
    pub recurrence: Option<Recurrence>,
    /// When to remind the owner.
    pub reminders: Reminders,
}

impl TaskSpec {
    /// Validates every field and every cross-field rule, reporting all violations together.
    pub fn parse(input: &TaskSpecInput) -> Result<Self, Violations> {
        let mut collector = Collector::new();
        // Postgres keeps microseconds; truncating here makes the response match what a later read returns.
        let due_at = input.due_at.map(|due| due.trunc_subsecs(6));
        if due_at.is_some_and(|due| !(EARLIEST..=LATEST).contains(&due)) {
            collector.add("due_at", format!("must be between {} and {}", rfc3339(EARLIEST), rfc3339(LATEST)));
        }
        let title = collector.take(Title::parse(&input.title));
        let description = match &input.description {
            Some(raw) => collector.take(Description::parse(raw)),
            None => Some(None),
        };
        let labels = collector.take(Labels::parse(&input.labels));
        let time_zone = collector.take(parse_time_zone(&input.time_zone));
        let recurrence = match (&input.recurrence, time_zone) {
            (Some(raw), Some(zone)) => {
                collector.take(Recurrence::parse(&raw.rule, raw.anchor, due_at, zone, raw.series_start).map(Some))
            }
            // Without a valid zone the rule cannot be checked; the zone's violation is already recorded.
            (Some(_), None) => None,
            (None, _) => Some(None),
        };
        let reminders = collector.take(Reminders::parse(&input.reminders, due_at.is_some()));
        collector.finish(|| {
            Some(TaskSpec {
                title: title?,
                description: description?,
                priority: input.priority,
                labels: labels?,
                due_at,
                time_zone: time_zone?,
                recurrence: recurrence?,
                reminders: reminders?,
            })
        })
    }

    /// The spec as unvalidated input again, so a patch can be merged over it and the result re-validated.
    pub fn to_input(&self) -> TaskSpecInput {
        TaskSpecInput {
            title: self.title.as_str().to_owned(),
            description: self.description.as_ref().map(|d| d.as_str().to_owned()),
            priority: self.priority,
            labels: self.labels.to_vec(),
            due_at: self.due_at,
            time_zone: self.time_zone.name().to_owned(),
            recurrence: self.recurrence.as_ref().map(|r| RecurrenceInput {
                rule: r.rule().to_owned(),
                anchor: r.anchor(),
                series_start: Some(r.series_start()),
            }),
            reminders: self
                .reminders
                .as_slice()
                .iter()
                .map(|reminder| match *reminder {
                    super::reminders::Reminder::BeforeDue { minutes } => {
                        ReminderInput::BeforeDue { minutes: i64::from(minutes) }
                    }
                    super::reminders::Reminder::At { at } => ReminderInput::At { at },
                })
                .collect(),
        }
    }
}

impl TaskSpec {
    /// This spec with `patch` merged over it, validated as a whole (a patch cannot leave a task in a state a
    /// create would refuse).
    ///
    /// Changing the due time, the zone or the rule of a recurring task re-anchors its series at this occurrence
    /// (RFC 5545 RANGE=THISANDFUTURE): the series starts again at the new due time, so the occurrences after it
    /// follow the edit, and a COUNT the patch does not set itself is lowered by the occurrences already behind,
    /// so the series keeps its total. Any other change keeps the series as it is.
    pub fn patched(&self, patch: TaskPatch) -> Result<TaskSpec, Violations> {
        let rule_set_by_patch = matches!(patch.recurrence, Nullable::Set(_));
        let mut input = patch.apply(self.to_input());
        if let (Some(next), Some(current)) = (input.recurrence.as_mut(), self.recurrence.as_ref()) {
            let same_rule = Rule::from_trusted(&next.rule).as_str() == current.rule();
            let moved = input.due_at != self.due_at || input.time_zone != self.time_zone.name() || !same_rule;
            next.series_start = if moved { None } else { Some(current.series_start()) };
            if let (true, false, Some(old_due)) = (moved, rule_set_by_patch, self.due_at) {
                next.rule = current.rule_from(old_due, self.time_zone)?;
            }
        }
        TaskSpec::parse(&input)
    }

    /// For a task a user creates or edits: a recurring series must leave room for its next occurrence. (The
    /// occurrences the series creates itself are not checked: the last one before [`LATEST`] simply ends it.)
    pub fn check_room_for_next_occurrence(&self) -> Result<(), Violations> {
        match (&self.recurrence, self.due_at) {
            (Some(recurrence), Some(due_at)) => recurrence.check_next_representable(due_at, self.time_zone),
            _ => Ok(()),
        }
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The IANA time zone named `raw`; the violation names `time_zone`.
pub fn parse_time_zone(raw: &str) -> Result<Tz, Violations> {
    raw.parse::<Tz>().map_err(|_| Violations::single("time_zone", format!("`{raw}` is not an IANA time zone name")))
}

/// Why a lifecycle change is not allowed in the task's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// Completing a task that is already completed (409 `already-completed`).
    #[error("the task is already completed")]
    AlreadyCompleted,
    /// Reopening a task that is still open (409 `already-open`).
    #[error("the task is already open")]
    AlreadyOpen,
}

/// A task as it was written down (a database row, an event snapshot of our own): plain values, re-validated by
/// [`StoredTask::into_task`]. The one seam between the domain and each stored form, so neither form is read
/// through the other.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTask {
    /// The task's UUIDv7, taken as it is.
    pub id: Uuid,
    /// The owner's `sub`; checked again as an [`OwnerId`].
    pub owner_id: String,
    /// The series the task belongs to; its own id for a one-off task.
    pub series_id: Uuid,
    /// The title; checked again as a [`Title`].
    pub title: String,
    /// The description; `None` when there is none.
    pub description: Option<String>,
    /// How urgent the task is.
    pub priority: Priority,
    /// The labels, in order; checked again as [`Labels`].
    pub labels: Vec<String>,
    /// Open or completed; a completed task must also have `completed_at`.
    pub status: TaskStatus,
    /// When the task is due; a recurring task must have one.
    pub due_at: Option<DateTime<Utc>>,
    /// The IANA zone name; it must still be one `chrono-tz` knows.
    pub time_zone: String,
    /// The rule, its anchor and the series' start (`None` in data written before series had a start).
    pub recurrence: Option<(String, RecurrenceAnchor, Option<DateTime<Utc>>)>,
    /// The reminders, trusted as they are (they were validated on the way in).
    pub reminders: Vec<Reminder>,
    /// When the task was completed; ignored for an open task.
    pub completed_at: Option<DateTime<Utc>>,
    /// The optimistic-concurrency version.
    pub version: i64,
    /// When the task was created.
    pub created_at: DateTime<Utc>,
    /// When the task last changed.
    pub updated_at: DateTime<Utc>,
}

/// Stored data that does not describe a valid task; only possible if it was altered by hand.
#[derive(Debug, thiserror::Error)]
#[error("stored task is not a valid task: {0}")]
pub struct InvalidStoredTask(String);

impl StoredTask {
    /// The task, with its editable fields validated again.
    pub fn into_task(self) -> Result<Task, InvalidStoredTask> {
        let invalid = |violations: Violations| InvalidStoredTask(violations.to_string());
        let owner = OwnerId::parse(&self.owner_id).map_err(invalid)?;
        let title = Title::parse(&self.title).map_err(invalid)?;
        let description = match &self.description {
            Some(raw) => Description::parse(raw).map_err(invalid)?,
            None => None,
        };
        let labels = Labels::parse(&self.labels).map_err(invalid)?;
        let time_zone = parse_time_zone(&self.time_zone).map_err(invalid)?;
        let completion = match (self.status, self.completed_at) {
            (TaskStatus::Open, _) => Completion::Open,
            (TaskStatus::Completed, Some(at)) => Completion::Completed { at },
            (TaskStatus::Completed, None) => {
                return Err(InvalidStoredTask("completed task without completed_at".to_owned()));
            }
        };
        let recurrence = match self.recurrence {
            // Written before series had a start: each occurrence was then the start of the rest of its series.
            Some((rule, anchor, series_start)) => match series_start.or(self.due_at) {
                Some(start) => Some(Recurrence::from_trusted(rule, anchor, start)),
                None => return Err(InvalidStoredTask("recurring task without due_at".to_owned())),
            },
            None => None,
        };
        Ok(Task {
            id: TaskId::from_uuid(self.id),
            owner,
            series_id: self.series_id,
            spec: TaskSpec {
                title,
                description,
                priority: self.priority,
                labels,
                due_at: self.due_at,
                time_zone,
                recurrence,
                reminders: Reminders::from_trusted(self.reminders),
            },
            completion,
            version: Version::new(self.version),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A task as stored. Changes produce a new value with the next version; the store persists it only if the
/// version it replaces is still current.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The task's identity; never changes.
    pub id: TaskId,
    /// The user the task belongs to; every query is scoped by it.
    pub owner: OwnerId,
    /// Shared by every occurrence of a recurring task; equals `id` for a one-off task.
    pub series_id: Uuid,
    /// The client-editable fields.
    pub spec: TaskSpec,
    /// Open, or completed and when.
    pub completion: Completion,
    /// Grows by one with every change; the `ETag` and `If-Match` carry it.
    pub version: Version,
    /// When the task was created.
    pub created_at: DateTime<Utc>,
    /// When the task last changed; never moves backwards, even if the clock does.
    pub updated_at: DateTime<Utc>,
}

impl Task {
    /// A new open task. `series_id` joins an existing series (an occurrence of a recurring task); it is only
    /// meaningful with a recurrence.
    pub fn create(
        owner: OwnerId,
        spec: TaskSpec,
        series_id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<Self, Violations> {
        if series_id.is_some() && spec.recurrence.is_none() {
            return Err(Violations::single("series_id", "is only allowed together with a recurrence"));
        }
        let id = TaskId::generate();
        Ok(Self {
            id,
            owner,
            series_id: series_id.unwrap_or(id.as_uuid()),
            spec,
            completion: Completion::Open,
            version: Version::INITIAL,
            created_at: now,
            updated_at: now,
        })
    }

    /// Open or completed, as the API, the events and the store report it.
    pub fn status(&self) -> TaskStatus {
        self.completion.status()
    }

    /// This task with its editable fields replaced by `spec`, as the next version.
    pub fn revise(&self, spec: TaskSpec, now: DateTime<Utc>) -> Self {
        self.changed(now, |task| task.spec = spec)
    }

    /// This task completed at `now`, as the next version; [`TransitionError::AlreadyCompleted`] if it already is.
    pub fn complete(&self, now: DateTime<Utc>) -> Result<Self, TransitionError> {
        match self.completion {
            Completion::Completed { .. } => Err(TransitionError::AlreadyCompleted),
            Completion::Open => Ok(self.changed(now, |task| task.completion = Completion::Completed { at: now })),
        }
    }

    /// This task open again, as the next version; [`TransitionError::AlreadyOpen`] if it is not completed.
    pub fn reopen(&self, now: DateTime<Utc>) -> Result<Self, TransitionError> {
        match self.completion {
            Completion::Open => Err(TransitionError::AlreadyOpen),
            Completion::Completed { .. } => Ok(self.changed(now, |task| task.completion = Completion::Open)),
        }
    }

    fn changed(&self, now: DateTime<Utc>, apply: impl FnOnce(&mut Task)) -> Self {
        let mut next = self.clone();
        apply(&mut next);
        next.version = self.version.next();
        // Never move backwards, even if the clock does.
        next.updated_at = now.max(self.updated_at);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn input() -> TaskSpecInput {
        TaskSpecInput {
            title: "Water the plants".into(),
            description: None,
            priority: Priority::Medium,
            labels: vec!["home".into()],
            due_at: Some(Utc.with_ymd_and_hms(2026, 5, 1, 7, 0, 0).single().expect("valid date")),
            time_zone: "Europe/Berlin".into(),
            recurrence: None,
            reminders: vec![ReminderInput::BeforeDue { minutes: 15 }],
        }
    }

    #[test]
    fn valid_input_round_trips_through_to_input() {
        let spec = TaskSpec::parse(&input()).expect("valid");
        assert_eq!(TaskSpec::parse(&spec.to_input()).expect("still valid"), spec);
    }

    #[test]
    fn every_invalid_field_is_reported_together() {
        let bad = TaskSpecInput {
            title: " ".into(),
            description: Some("x".repeat(super::super::text::DESCRIPTION_MAX_CHARS + 1)),
            labels: vec![String::new()],
            time_zone: "Mars/Olympus".into(),
            reminders: vec![ReminderInput::BeforeDue { minutes: -5 }],
            ..input()
        };
        let violations = TaskSpec::parse(&bad).expect_err("invalid");
        for field in ["title", "description", "labels[0]", "time_zone", "reminders[0].minutes"] {
            assert!(violations.mentions(field), "missing {field}: {violations}");
        }
    }

    #[test]
    fn recurrence_without_due_time_is_rejected() {
        let bad = TaskSpecInput {
            due_at: None,
            reminders: vec![],
            recurrence: Some(RecurrenceInput {
                rule: "FREQ=DAILY".into(),
                anchor: RecurrenceAnchor::Due,
                series_start: None,
            }),
            ..input()
        };
        assert!(TaskSpec::parse(&bad).expect_err("invalid").mentions("due_at"));
    }

    #[test]
    fn lifecycle_bumps_version_and_guards_transitions() {
        let now = Utc::now();
        let owner = OwnerId::parse("alice").expect("valid owner");
        let task = Task::create(owner, TaskSpec::parse(&input()).expect("valid"), None, now).expect("created");
        assert_eq!(task.series_id, task.id.as_uuid());
        assert_eq!(task.version, Version::INITIAL);
        assert_eq!(task.reopen(now), Err(TransitionError::AlreadyOpen));
        let done = task.complete(now).expect("completes");
        assert_eq!(done.status(), TaskStatus::Completed);
        assert_eq!(done.completion.completed_at(), Some(now));
        assert_eq!(done.version, Version::new(2));
        assert_eq!(done.complete(now), Err(TransitionError::AlreadyCompleted));
        let reopened = done.reopen(now).expect("reopens");
        assert_eq!(reopened.completion, Completion::Open);
        assert_eq!(reopened.version, Version::new(3));
    }

    #[test]
    fn series_id_needs_a_recurrence() {
        let owner = OwnerId::parse("alice").expect("valid owner");
        let spec = TaskSpec::parse(&input()).expect("valid");
        let violations = Task::create(owner, spec, Some(Uuid::now_v7()), Utc::now()).expect_err("no recurrence");
        assert!(violations.mentions("series_id"));
    }

    #[test]
    fn owner_id_is_bounded() {
        assert!(OwnerId::parse("").is_err());
        assert!(OwnerId::parse(&"a".repeat(OwnerId::MAX_LEN + 1)).is_err());
        assert!(OwnerId::parse("auth0|abc").is_ok());
    }
}
