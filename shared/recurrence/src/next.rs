//! The next occurrence of a recurring task, computed when one occurrence is completed.

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;

use crate::anchor::RecurrenceAnchor;
use crate::error::RuleError;
use crate::rule::Rule;

/// A validated rule together with where its next occurrence is counted from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurrence {
    rule: Rule,
    anchor: RecurrenceAnchor,
}

/// The occurrence that was just completed: what the next one is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedOccurrence {
    pub due_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    /// The task's IANA zone; the rule runs on its wall clock.
    pub time_zone: Tz,
}

/// What follows a completed occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextOccurrence {
    /// The series goes on: the next task is due at `due_at` and carries `rule` (the same rule, with `COUNT`
    /// lowered by one when it has one).
    Scheduled { due_at: DateTime<Utc>, rule: Rule },
    /// `COUNT` is used up, `UNTIL` has passed, or the rule has no further date.
    SeriesEnded,
}

impl Recurrence {
    pub fn new(rule: Rule, anchor: RecurrenceAnchor) -> Self {
        Self { rule, anchor }
    }

    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    pub fn anchor(&self) -> RecurrenceAnchor {
        self.anchor
    }

    /// The occurrence after `completed`, found on the wall clock of the task's zone: the rule starts at the anchor
    /// instant (the due time or the completion time), and the result is strictly later than both that instant
    /// and the completed task's due time.
    pub fn next_occurrence(&self, completed: &CompletedOccurrence) -> Result<NextOccurrence, RuleError> {
        // The completed task was one of the remaining occurrences.
        let Some(rule) = self.rule.after_one_occurrence()? else {
            return Ok(NextOccurrence::SeriesEnded);
        };
        let start = match self.anchor {
            RecurrenceAnchor::Due => completed.due_at,
            // Whole seconds: the rule's resolution, so the start is exactly its own first occurrence.
            RecurrenceAnchor::Completion => completed.completed_at.trunc_subsecs(0),
        };
        // Never at or before the completed occurrence itself, even when it was done ahead of its due time.
        let after = start.max(completed.due_at);
        let Some(due_at) = self.rule.schedule().first_after(start, completed.time_zone, after)? else {
            return Ok(NextOccurrence::SeriesEnded);
        };
        if self.rule.until()?.is_some_and(|until| due_at > until) {
            return Ok(NextOccurrence::SeriesEnded);
        }
        Ok(NextOccurrence::Scheduled { due_at, rule })
    }
}
