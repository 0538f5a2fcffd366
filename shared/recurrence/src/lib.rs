//! Recurrence rules for Taskwatch: the RFC 5545 RRULE subset the system accepts, the series a rule describes,
//! and the next occurrence of a recurring task.
//!
//! Both the backend (which validates rules on the way in) and `recurring-task` (which computes the next
//! occurrence when a task is completed) need exactly the same interpretation, so it lives here once.
//!
//! # The subset
//!
//! `FREQ` (`DAILY`, `WEEKLY`, `MONTHLY`, `YEARLY`; tasks never recur more than daily), `INTERVAL`, `BYDAY`,
//! `BYMONTHDAY`, and at most one of `COUNT` and `UNTIL` (a UTC date-time). Anything else is rejected rather than
//! silently ignored. DTSTART is never part of the text: it is the series' start, the due time of its first
//! occurrence, seen in the task's IANA zone; every occurrence carries it.
//!
//! # How occurrences are found
//!
//! * A [`Series`] is expanded from its start on the zone's wall clock, and each local date-time is resolved to an
//!   instant by RFC 5545: a time in a spring-forward gap takes the offset from before the gap (02:30 becomes
//!   03:30 summer time on that day only: the next day is 02:30 again), a repeated time is its first instant.
//! * `COUNT` is the number of occurrences of the series, its start included (RFC 5545 counts DTSTART even when
//!   it does not match the rule); `UNTIL` is inclusive. Every series also ends at [`LATEST`].
//! * [`RecurrenceAnchor::Due`] continues the series after the completed task's due time, however late it was
//!   done; [`RecurrenceAnchor::Completion`] restarts the rule at the completion instant (see
//!   [`Recurrence::next_occurrence`]).
//! * A series re-anchored at one of its occurrences (a task's due time, zone or rule edited; every completion of
//!   a completion-anchored task) keeps its total: [`Series::rule_from`] lowers `COUNT` by the occurrences before.

mod error;
mod next;
mod rule;
mod series;

pub use error::RuleError;
pub use next::{CompletedOccurrence, Continued, NextOccurrence, Recurrence};
pub use rule::Rule;
pub use series::{After, EARLIEST, LATEST, Series, resolve};
/// Where the next occurrence is counted from (the task vocabulary's one type).
pub use vocabulary::RecurrenceAnchor;
