//! Recurrence rules for Taskwatch: the RFC 5545 RRULE subset the system accepts, and the next occurrence of a
//! recurring task.
//!
//! Both the backend (which validates rules on the way in) and `recurring-task` (which computes the next
//! occurrence when a task is completed) need exactly the same interpretation, so it lives here once.
//!
//! # The subset
//!
//! `FREQ` (`DAILY`, `WEEKLY`, `MONTHLY`, `YEARLY`; tasks never recur more than daily), `INTERVAL`, `BYDAY`,
//! `BYMONTHDAY`, and at most one of `COUNT` and `UNTIL` (a UTC date-time). Anything else is rejected rather than
//! silently ignored. DTSTART is never part of the text: it is the task's due time seen in the task's IANA zone.
//!
//! # How the next occurrence is found
//!
//! * The rule runs in the task's zone from wall-clock dates, so a daily 09:00 task stays at 09:00 local time
//!   across DST changes in both directions; nothing ever adds a fixed number of seconds.
//! * [`RecurrenceAnchor::Due`] starts the rule at the completed task's due time (the schedule of due dates is
//!   kept however late the task was done); [`RecurrenceAnchor::Completion`] starts it at the completion instant.
//! * The next occurrence is the first one *strictly* after that start and after the completed task's due time
//!   (a task done ahead of time is not followed by one due before it); `rrule`'s own bounds are inclusive.
//! * `UNTIL` is inclusive: an occurrence exactly at `UNTIL` is the last one.
//! * `COUNT` is the number of occurrences *remaining in the series, including the task that carries the rule*.
//!   Each occurrence only knows its own due time, not where the series began, so completing a task with
//!   `COUNT=n` yields a next task with `COUNT=n-1` ([`NextOccurrence::Scheduled::rule`]); `COUNT=1` ends the
//!   series. RFC 5545 counts DTSTART as the first occurrence, which is what the completed task is.
//! * A local time that does not exist on a day (spring forward) is taken with the offset before the gap
//!   (02:30 becomes 03:30 summer time); a repeated local time (fall back) is its earlier instant. Because each
//!   occurrence starts the rule from its own due time, a task shifted out of a gap keeps the shifted time.

mod anchor;
mod error;
mod next;
mod rule;

pub use anchor::RecurrenceAnchor;
pub use error::RuleError;
pub use next::{CompletedOccurrence, NextOccurrence, Recurrence};
pub use rule::Rule;
