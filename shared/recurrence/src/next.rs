//! The next occurrence of a recurring task, computed when one occurrence is completed.

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;

use crate::RecurrenceAnchor;
use crate::error::RuleError;
use crate::rule::Rule;
use crate::series::{After, Series};

/// A validated rule together with where its next occurrence is counted from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurrence {
    rule: Rule,
    anchor: RecurrenceAnchor,
}

/// The occurrence that was just completed: what the next one is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedOccurrence {
    /// When the completed occurrence was due.
    pub due_at: DateTime<Utc>,
    /// When it was completed: where a completion-anchored rule starts again.
    pub completed_at: DateTime<Utc>,
    /// The task's IANA zone; the rule runs on its wall clock.
    pub time_zone: Tz,
    /// The first occurrence of the series (its DTSTART), which every later one is computed from.
    pub series_start: DateTime<Utc>,
}

/// What follows a completed occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextOccurrence {
    /// The series goes on: the next task is due at `due_at` and carries `rule` from `series_start`.
    Scheduled {
        /// When the next occurrence is due.
        due_at: DateTime<Utc>,
        /// The rule the next task carries: the same one, or with `COUNT` lowered when anchored on completion.
        rule: Rule,
        /// The series start the next task carries: unchanged, or `due_at` when anchored on completion.
        series_start: DateTime<Utc>,
    },
    /// `COUNT` is used up, `UNTIL` has passed, the rule has no further date, or the next one would be after
    /// [`crate::LATEST`].
    SeriesEnded,
}

impl Recurrence {
    /// Pairs `rule` with its anchor. Nothing is checked here: a rule that cannot be expanded fails in
    /// [`Recurrence::next_occurrence`].
    pub fn new(rule: Rule, anchor: RecurrenceAnchor) -> Self {
        Self { rule, anchor }
    }

    /// The RRULE the series follows.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// Where the next occurrence is counted from: the due date or the completion.
    pub fn anchor(&self) -> RecurrenceAnchor {
        self.anchor
    }

    /// The occurrence after `completed`.
    ///
    /// * [`RecurrenceAnchor::Due`]: the series' own next date after the completed task's due time, however late
    ///   it was done. The next task carries the same rule and the same series start, so the series is expanded
    ///   from its first occurrence every time and COUNT keeps its RFC 5545 meaning (occurrences in the series).
    /// * [`RecurrenceAnchor::Completion`]: the rule starts again at the completion instant; the next occurrence is
    ///   its first date strictly after that instant and after the completed task's due time. The next task starts
    ///   the rest of the series there, its COUNT lowered by the occurrences already done (RANGE=THISANDFUTURE).
    pub fn next_occurrence(&self, completed: &CompletedOccurrence) -> Result<NextOccurrence, RuleError> {
        let series = Series::new(self.rule.clone(), completed.series_start, completed.time_zone)?;
        let next = match self.anchor {
            RecurrenceAnchor::Due => series.first_after(completed.due_at)?,
            RecurrenceAnchor::Completion => {
                // The completion instant is where the rule restarts, not an occurrence: it must not use up COUNT.
                let restart = Series::new(self.rule.without_count(), completed.completed_at, completed.time_zone)?;
                restart.first_after(restart.start().max(completed.due_at))?
            }
        };
        let After::Occurrence(due_at) = next else {
            return Ok(NextOccurrence::SeriesEnded);
        };
        Ok(match self.continued(&series, completed.due_at, due_at)? {
            Some(Continued { rule, series_start }) => NextOccurrence::Scheduled { due_at, rule, series_start },
            None => NextOccurrence::SeriesEnded,
        })
    }

    /// What the occurrence due at `next_due` carries on from the occurrence due at `previous_due` of the series
    /// that starts at `series_start` in `zone`; `None` when COUNT is used up. The backend calls this when it
    /// creates an occurrence, so the rule and start it stores are the ones this crate computed the due time from.
    pub fn continued_at(
        &self,
        series_start: DateTime<Utc>,
        zone: Tz,
        previous_due: DateTime<Utc>,
        next_due: DateTime<Utc>,
    ) -> Result<Option<Continued>, RuleError> {
        self.continued(&Series::new(self.rule.clone(), series_start, zone)?, previous_due, next_due)
    }

    fn continued(
        &self,
        series: &Series,
        previous_due: DateTime<Utc>,
        next_due: DateTime<Utc>,
    ) -> Result<Option<Continued>, RuleError> {
        match self.anchor {
            // The same series goes on: expanded from its first occurrence every time.
            RecurrenceAnchor::Due => Ok(Some(Continued { rule: self.rule.clone(), series_start: series.start() })),
            RecurrenceAnchor::Completion => {
                // Occurrences are whole seconds, so one second past the previous due time is past it and before
                // any later one: the rest of the series is what remains after the previous occurrence.
                let after_previous = previous_due.trunc_subsecs(0) + chrono::Duration::seconds(1);
                let rest = series.rule_from(after_previous)?;
                Ok(rest.map(|rule| Continued { rule, series_start: next_due }))
            }
        }
    }
}

/// The series an occurrence carries on: its rule and its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continued {
    /// The rule the occurrence stores: the series' own, or with `COUNT` lowered when anchored on completion.
    pub rule: Rule,
    /// The start the occurrence stores: the series' own, or its own due time when anchored on completion.
    pub series_start: DateTime<Utc>,
}
