//! Recurrence rules: the RFC 5545 RRULE subset Taskwatch supports, validated by the shared `recurrence` crate
//! (which `recurring-task` uses to compute next occurrences, so both read a rule the same way).
//!
//! The rule is interpreted from the task's due time *in the task's IANA time zone*, so "every day at 09:00
//! Europe/Berlin" stays at 09:00 local time across DST changes instead of drifting by an hour.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
pub use recurrence::RecurrenceAnchor;
use recurrence::{Rule, RuleError};

use super::violations::{Collector, Violations};

const RULE_FIELD: &str = "recurrence.rrule";

/// A validated recurrence: an RRULE (without DTSTART) in normalised upper-case form, plus its anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurrence(recurrence::Recurrence);

impl Recurrence {
    /// Validates `rule` against the subset and against `rrule`'s own checks, starting at `due_at` in `time_zone`.
    ///
    /// Field paths in the violations are absolute (`recurrence.rrule`, `due_at`).
    pub fn parse(
        rule: &str,
        anchor: RecurrenceAnchor,
        due_at: Option<DateTime<Utc>>,
        time_zone: Tz,
    ) -> Result<Self, Violations> {
        let rule = Rule::parse(rule).map_err(rule_violations)?;
        let Some(due_at) = due_at else {
            return Err(Violations::single("due_at", "is required for a recurring task (the rule starts there)"));
        };
        rule.validate_from(due_at, time_zone).map_err(rule_violations)?;
        Ok(Self(recurrence::Recurrence::new(rule, anchor)))
    }

    /// Rebuilds a recurrence read back from storage, where it was validated on the way in.
    pub fn from_trusted(rule: String, anchor: RecurrenceAnchor) -> Self {
        Self(recurrence::Recurrence::new(Rule::from_trusted(rule), anchor))
    }

    pub fn rule(&self) -> &str {
        self.0.rule().as_str()
    }

    pub fn anchor(&self) -> RecurrenceAnchor {
        self.0.anchor()
    }

    /// The shared crate's value, for computing next occurrences.
    pub fn as_shared(&self) -> &recurrence::Recurrence {
        &self.0
    }

    /// The recurrence the next occurrence of the series carries: `COUNT` lowered by one, because `COUNT` counts
    /// the occurrences remaining with this one included (an occurrence cannot know where its series began).
    /// `None` when this occurrence is the last one.
    pub fn after_one_occurrence(&self) -> Result<Option<Self>, Violations> {
        let next = self.0.rule().after_one_occurrence().map_err(rule_violations)?;
        Ok(next.map(|rule| Self(recurrence::Recurrence::new(rule, self.anchor()))))
    }

    /// The first `limit` occurrences, the first being `due_at` itself when it matches the rule.
    pub fn occurrences(
        &self,
        due_at: DateTime<Utc>,
        time_zone: Tz,
        limit: u16,
    ) -> Result<Vec<DateTime<Utc>>, Violations> {
        self.0.rule().occurrences(due_at, time_zone, limit).map_err(rule_violations)
    }

    /// The first occurrence strictly after `after`, if the rule has one.
    pub fn next_after(
        &self,
        due_at: DateTime<Utc>,
        time_zone: Tz,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, Violations> {
        self.0.rule().first_after(due_at, time_zone, after).map_err(rule_violations)
    }
}

/// One violation per problem, so a client sees every one of them.
fn rule_violations(error: RuleError) -> Violations {
    let mut collector = Collector::new();
    for problem in error.problems() {
        collector.add(RULE_FIELD, problem.clone());
    }
    // `finish` yields the collected violations because nothing is built; `RuleError` is never empty.
    collector.finish::<()>(|| None).err().unwrap_or_else(|| Violations::single(RULE_FIELD, error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn berlin() -> Tz {
        chrono_tz::Europe::Berlin
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("valid test date")
    }

    fn parse(rule: &str) -> Result<Recurrence, Violations> {
        Recurrence::parse(rule, RecurrenceAnchor::Due, Some(utc(2026, 3, 27, 8, 0)), berlin())
    }

    #[test]
    fn accepts_the_supported_subset_normalised() {
        assert_eq!(parse("rrule:freq=weekly").expect("valid").rule(), "FREQ=WEEKLY");
        assert!(parse("FREQ=MONTHLY;BYMONTHDAY=-1").is_ok());
    }

    #[test]
    fn rejections_name_the_rule_field() {
        // Subset problems and `rrule`'s own checks (which need the due time) both land on the rule field.
        for rule in
            ["FREQ=HOURLY", "FREQ=DAILY;BYHOUR=9", "FREQ=WEEKLY;BYMONTHDAY=3", "FREQ=DAILY;UNTIL=20200101T000000Z", ""]
        {
            let violations = parse(rule).expect_err(rule);
            assert!(violations.mentions(RULE_FIELD), "{rule}: {violations}");
        }
    }

    #[test]
    fn reports_every_subset_problem_at_once() {
        let violations = parse("FREQ=HOURLY;BYHOUR=1;COUNT=2;UNTIL=20301231T000000Z").expect_err("invalid");
        assert_eq!(violations.iter().count(), 3, "{violations}");
    }

    #[test]
    fn requires_a_due_time() {
        let violations =
            Recurrence::parse("FREQ=DAILY", RecurrenceAnchor::Due, None, berlin()).expect_err("no due time");
        assert!(violations.mentions("due_at"));
    }

    #[test]
    fn daily_rule_keeps_local_time_across_the_dst_change() {
        // 2026-03-29 is the spring-forward day in Berlin: 09:00 local is 08:00Z before it and 07:00Z after.
        let recurrence = parse("FREQ=DAILY").expect("valid");
        let dates = recurrence.occurrences(utc(2026, 3, 27, 8, 0), berlin(), 4).expect("occurrences");
        assert_eq!(
            dates,
            vec![utc(2026, 3, 27, 8, 0), utc(2026, 3, 28, 8, 0), utc(2026, 3, 29, 7, 0), utc(2026, 3, 30, 7, 0)]
        );
    }

    #[test]
    fn next_after_is_strictly_after() {
        let recurrence = parse("FREQ=WEEKLY").expect("valid");
        let due = utc(2026, 3, 27, 8, 0);
        assert_eq!(recurrence.next_after(due, berlin(), due).expect("computes"), Some(utc(2026, 4, 3, 7, 0)));
    }

    #[test]
    fn count_runs_down_one_occurrence_at_a_time() {
        let three = parse("FREQ=DAILY;COUNT=3").expect("valid");
        let two = three.after_one_occurrence().expect("count").expect("two left");
        assert_eq!(two.rule(), "FREQ=DAILY;COUNT=2");
        let one = two.after_one_occurrence().expect("count").expect("one left");
        assert_eq!(one.after_one_occurrence().expect("count"), None);
        let endless = parse("FREQ=WEEKLY").expect("valid");
        assert_eq!(endless.after_one_occurrence().expect("no count"), Some(endless));
    }

    #[test]
    fn trusted_rules_round_trip() {
        let recurrence = Recurrence::from_trusted("FREQ=DAILY;COUNT=3".to_owned(), RecurrenceAnchor::Completion);
        assert_eq!(recurrence.rule(), "FREQ=DAILY;COUNT=3");
        assert_eq!(recurrence.anchor(), RecurrenceAnchor::Completion);
    }
}
