//! Reminders: a bounded set of "N minutes before due" offsets and absolute instants.

use chrono::{DateTime, SubsecRound, Utc};

use super::violations::{Collector, Violations};

/// The most reminders one task may have.
pub const REMINDERS_MAX: usize = 10;
/// Four weeks: further ahead than that, a reminder is a separate task.
pub const OFFSET_MAX_MINUTES: u32 = 28 * 24 * 60;

pub use vocabulary::Reminder;

/// Unvalidated reminder as a client sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReminderInput {
    /// Some minutes before the task's due time; only on a task that has one.
    BeforeDue {
        /// How long before, in minutes: valid from 0 to [`OFFSET_MAX_MINUTES`]. Signed, so a negative value is
        /// reported as a violation rather than refused as unreadable.
        minutes: i64,
    },
    /// At a fixed instant, whatever the due time.
    At {
        /// The instant; kept to the microsecond, as Postgres stores it.
        at: DateTime<Utc>,
    },
}

/// At most [`REMINDERS_MAX`] distinct reminders; offsets only on tasks that have a due time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reminders(Vec<Reminder>);

impl Reminders {
    /// Validates every reminder, naming a bad one by index (`reminders[2].minutes`); `before_due` reminders are
    /// refused unless `has_due_time`.
    pub fn parse(raw: &[ReminderInput], has_due_time: bool) -> Result<Self, Violations> {
        let mut collector = Collector::new();
        if raw.len() > REMINDERS_MAX {
            collector.add("reminders", format!("must contain at most {REMINDERS_MAX} reminders"));
        }
        let mut reminders: Vec<Reminder> = Vec::with_capacity(raw.len());
        for (index, input) in raw.iter().enumerate() {
            let field = format!("reminders[{index}]");
            let reminder = match *input {
                ReminderInput::BeforeDue { minutes } => {
                    if !has_due_time {
                        collector.add(field, "a before_due reminder needs the task to have a due_at");
                        continue;
                    }
                    match u32::try_from(minutes) {
                        Ok(minutes) if minutes <= OFFSET_MAX_MINUTES => Reminder::BeforeDue { minutes },
                        _ => {
                            collector
                                .add(format!("{field}.minutes"), format!("must be between 0 and {OFFSET_MAX_MINUTES}"));
                            continue;
                        }
                    }
                }
                ReminderInput::At { at } => Reminder::At { at: at.trunc_subsecs(6) },
            };
            if reminders.contains(&reminder) {
                collector.add(field, "duplicate reminder");
            } else {
                reminders.push(reminder);
            }
        }
        collector.finish(|| Some(Self(reminders)))
    }

    /// The reminders, in the order given.
    pub fn as_slice(&self) -> &[Reminder] {
        &self.0
    }

    /// Wraps reminders read back from storage or an event of our own, where they were validated on the way in.
    pub fn from_trusted(reminders: Vec<Reminder>) -> Self {
        Self(reminders)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_need_a_due_time() {
        let violations = Reminders::parse(&[ReminderInput::BeforeDue { minutes: 10 }], false).expect_err("no due time");
        assert!(violations.mentions("reminders[0]"));
    }

    #[test]
    fn offsets_are_bounded() {
        let raw = [
            ReminderInput::BeforeDue { minutes: -1 },
            ReminderInput::BeforeDue { minutes: i64::from(OFFSET_MAX_MINUTES) + 1 },
            ReminderInput::BeforeDue { minutes: 0 },
        ];
        let violations = Reminders::parse(&raw, true).expect_err("out of range");
        assert!(violations.mentions("reminders[0].minutes"));
        assert!(violations.mentions("reminders[1].minutes"));
        assert!(!violations.mentions("reminders[2].minutes"));
    }

    #[test]
    fn count_is_capped_and_duplicates_rejected() {
        let many: Vec<ReminderInput> =
            (0..=REMINDERS_MAX as i64).map(|minutes| ReminderInput::BeforeDue { minutes }).collect();
        assert!(Reminders::parse(&many, true).expect_err("too many").mentions("reminders"));
        let at = Utc::now();
        let dupes = [ReminderInput::At { at }, ReminderInput::At { at }];
        assert!(Reminders::parse(&dupes, false).expect_err("duplicate").mentions("reminders[1]"));
    }

    #[test]
    fn mixed_reminders_are_kept_in_order() {
        let at = Utc::now().trunc_subsecs(6);
        let raw = [ReminderInput::At { at }, ReminderInput::BeforeDue { minutes: 15 }];
        let reminders = Reminders::parse(&raw, true).expect("valid");
        assert_eq!(reminders.as_slice(), &[Reminder::At { at }, Reminder::BeforeDue { minutes: 15 }]);
    }
}
