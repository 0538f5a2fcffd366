//! What one change did to a task, field by field: the snapshot before and after it, compared member by member.
//! Pure, so every case is a unit test.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Snapshot members that change with every change and say nothing of their own: the version and the time of
/// the change are the record's own columns.
const BOOKKEEPING: [&str; 2] = ["version", "updated_at"];

/// One field's value before and after a change; `null` where the field did not exist or was empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The value before the change; `null` for a created task.
    pub before: Value,
    /// The value after the change; `null` for a deleted task.
    pub after: Value,
}

/// The fields that differ between `before` and `after` (two task snapshots as JSON objects), bookkeeping left
/// out. `before` is `None` for a task seen for the first time (every field is new); `after` is `None` for a
/// deleted task (every field is gone).
pub fn changed_fields(before: Option<&Value>, after: Option<&Value>) -> BTreeMap<String, FieldChange> {
    let empty = serde_json::Map::new();
    let before = before.and_then(Value::as_object).unwrap_or(&empty);
    let after = after.and_then(Value::as_object).unwrap_or(&empty);
    before
        .keys()
        .chain(after.keys())
        .filter(|field| !BOOKKEEPING.contains(&field.as_str()))
        .filter_map(|field| {
            let (old, new) = (before.get(field).unwrap_or(&Value::Null), after.get(field).unwrap_or(&Value::Null));
            (old != new).then(|| (field.clone(), FieldChange { before: old.clone(), after: new.clone() }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn task(title: &str, status: &str, version: i64) -> Value {
        json!({ "id": "t", "title": title, "status": status, "labels": ["a"], "version": version, "updated_at": version })
    }

    #[test]
    fn an_update_lists_only_the_fields_it_changed() {
        let changed = changed_fields(Some(&task("Old", "open", 1)), Some(&task("New", "open", 2)));
        assert_eq!(changed.keys().collect::<Vec<_>>(), ["title"]);
        assert_eq!(changed["title"], FieldChange { before: json!("Old"), after: json!("New") });
    }

    #[test]
    fn a_creation_has_every_field_after_and_a_deletion_every_field_before() {
        let created = changed_fields(None, Some(&task("T", "open", 1)));
        assert_eq!(created.keys().collect::<Vec<_>>(), ["id", "labels", "status", "title"]);
        assert!(created.values().all(|field| field.before.is_null()));
        let deleted = changed_fields(Some(&task("T", "open", 1)), None);
        assert_eq!(deleted.len(), 4);
        assert!(deleted.values().all(|field| field.after.is_null()));
    }

    #[test]
    fn a_field_that_appears_or_disappears_is_a_change_and_bookkeeping_never_is() {
        let mut with_due = task("T", "open", 2);
        with_due["due_at"] = json!("2030-01-01T00:00:00Z");
        let changed = changed_fields(Some(&task("T", "open", 1)), Some(&with_due));
        assert_eq!(changed.keys().collect::<Vec<_>>(), ["due_at"]);
        assert!(changed_fields(Some(&task("T", "open", 1)), Some(&task("T", "open", 9))).is_empty());
    }
}
