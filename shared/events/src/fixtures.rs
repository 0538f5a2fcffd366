//! Sample events for tests (feature `fixtures`): the one task every test starts from, so a field added to the
//! contract is added to the tests once. Tests change what they care about with struct update syntax:
//! `TaskSnapshot { due_at, ..fixtures::task() }`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::task::{Priority, TaskSnapshot, TaskStatus};

/// The instant `rfc3339` names; panics on a malformed literal (a test's own typo).
pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap_or_else(|error| panic!("{rfc3339}: {error}")).to_utc()
}

/// Alice's open one-off task "Water the plants" in Europe/Berlin, with a fresh id (its own series), no due time,
/// labels or reminders, at version 1, created and updated at 2026-03-01T00:00:00Z.
pub fn task() -> TaskSnapshot {
    let id = Uuid::now_v7();
    let created = at("2026-03-01T00:00:00Z");
    TaskSnapshot {
        id,
        owner_id: "alice".into(),
        series_id: id,
        title: "Water the plants".into(),
        description: None,
        priority: Priority::Medium,
        labels: vec![],
        status: TaskStatus::Open,
        due_at: None,
        time_zone: "Europe/Berlin".into(),
        recurrence: None,
        reminders: vec![],
        completed_at: None,
        version: 1,
        created_at: created,
        updated_at: created,
    }
}
