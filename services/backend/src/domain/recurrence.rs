//! Recurrence rules: the RFC 5545 RRULE subset Taskwatch supports, validated and expanded by the shared
//! `recurrence` crate (which `recurring-task` uses to compute next occurrences, so both read a rule the same way).
//!
//! A recurring task belongs to a series that starts at its first due time (DTSTART) *in the task's IANA time
//! zone*; every occurrence carries that start, so "every day at 02:30 America/New_York" is 03:30 on the one day
//! 02:30 does not exist and 02:30 again the day after.

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
pub use recurrence::RecurrenceAnchor;
use recurrence::{After, LATEST, Rule, RuleError, Series};

use super::violations::{Collector, Violations};

const RULE_FIELD: &str = "recurrence.rrule";

/// A validated recurrence: an RRULE (without DTSTART) in normalised upper-case form, its anchor, and the start of
/// the series (whole seconds) it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurrence {
    shared: recurrence::Recurrence,
    series_start: DateTime<Utc>,
}

impl Recurrence {
    /// Validates `rule` against the subset and against `rrule`'s own checks, for the series starting at
    /// `series_start` (`due_at` when `None`: a new series) in `time_zone`.
    ///
    /// Field paths in the violations are absolute (`recurrence.rrule`, `due_at`).
    pub fn parse(
        rule: &str,
        anchor: RecurrenceAnchor,
        due_at: Option<DateTime<Utc>>,
        time_zone: Tz,
        series_start: Option<DateTime<Utc>>,
    ) -> Result<Self, Violations> {
        let rule = Rule::parse(rule).map_err(rule_violations)?;
        let Some(due_at) = due_at else {
            return Err(Violations::single("due_at", "is required for a recurring task (the rule starts there)"));
        };
        let series_start = series_start.unwrap_or(due_at).trunc_subsecs(0);
        let series = Series::new(rule.clone(), series_start, time_zone).map_err(rule_violations)?;
        series.check_until().map_err(rule_violations)?;
        Ok(Self { shared: recurrence::Recurrence::new(rule, anchor), series_start })
    }

    /// Rebuilds a recurrence read back from storage or an event of our own, where it was validated on the way in.
    pub fn from_trusted(rule: String, anchor: RecurrenceAnchor, series_start: DateTime<Utc>) -> Self {
        Self { shared: recurrence::Recurrence::new(Rule::from_trusted(rule), anchor), series_start }
    }

    /// The RRULE without DTSTART, normalised upper-case (`FREQ=WEEKLY;BYDAY=MO`).
    pub fn rule(&self) -> &str {
        self.shared.rule().as_str()
    }

    /// Where the next occurrence is counted from: the due schedule or the completion.
    pub fn anchor(&self) -> RecurrenceAnchor {
        self.shared.anchor()
    }

    /// The first due time of the series this occurrence belongs to: the DTSTART its dates are computed from.
    pub fn series_start(&self) -> DateTime<Utc> {
        self.series_start
    }

    /// The shared crate's value, for computing next occurrences.
    pub fn as_shared(&self) -> &recurrence::Recurrence {
        &self.shared
    }

    /// The rule the rest of the series has once it is re-anchored at the occurrence due at `due_at`: COUNT
    /// lowered by the occurrences before it (RFC 5545 RANGE=THISANDFUTURE), so the series keeps its total.
    pub fn rule_from(&self, due_at: DateTime<Utc>, time_zone: Tz) -> Result<String, Violations> {
        let series = self.series(time_zone)?;
        let rest = series.rule_from(due_at.trunc_subsecs(0)).map_err(rule_violations)?;
        // An occurrence is never before all of its series, so there is always a rest; keep the rule if not.
        Ok(rest.map_or_else(|| self.rule().to_owned(), Rule::into_string))
    }

    /// Refuses a series whose next occurrence after `due_at` could not be represented (after [`LATEST`]); one
    /// that ends before (COUNT, UNTIL) is fine.
    pub fn check_next_representable(&self, due_at: DateTime<Utc>, time_zone: Tz) -> Result<(), Violations> {
        match self.series(time_zone)?.first_after(due_at).map_err(rule_violations)? {
            After::BeyondLatest => Err(Violations::single(
                "due_at",
                format!(
                    "leaves no room for the next occurrence: it would be after {}, the latest due time",
                    LATEST.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            )),
            After::Occurrence(_) | After::Ended => Ok(()),
        }
    }

    fn series(&self, time_zone: Tz) -> Result<Series, Violations> {
        Series::new(self.shared.rule().clone(), self.series_start, time_zone).map_err(rule_violations)
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
        Recurrence::parse(rule, RecurrenceAnchor::Due, Some(utc(2026, 3, 27, 8, 0)), berlin(), None)
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
            Recurrence::parse("FREQ=DAILY", RecurrenceAnchor::Due, None, berlin(), None).expect_err("no due time");
        assert!(violations.mentions("due_at"));
    }

    #[test]
    fn a_new_series_starts_at_the_due_time_in_whole_seconds() {
        let due = utc(2026, 3, 27, 8, 0) + chrono::Duration::milliseconds(250);
        let recurrence =
            Recurrence::parse("FREQ=DAILY", RecurrenceAnchor::Due, Some(due), berlin(), None).expect("valid");
        assert_eq!(recurrence.series_start(), utc(2026, 3, 27, 8, 0));
        let later =
            Recurrence::parse("FREQ=DAILY", RecurrenceAnchor::Due, Some(due), berlin(), Some(utc(2026, 3, 1, 8, 0)))
                .expect("valid");
        assert_eq!(later.series_start(), utc(2026, 3, 1, 8, 0));
    }

    #[test]
    fn re_anchoring_keeps_the_series_total() {
        let recurrence = Recurrence::parse(
            "FREQ=DAILY;COUNT=5",
            RecurrenceAnchor::Due,
            Some(utc(2026, 3, 20, 8, 0)),
            berlin(),
            None,
        )
        .expect("valid");
        // The third occurrence (22nd) re-anchored: it and two more remain.
        assert_eq!(recurrence.rule_from(utc(2026, 3, 22, 8, 0), berlin()).expect("rule"), "FREQ=DAILY;COUNT=3");
        let endless = parse("FREQ=WEEKLY").expect("valid");
        assert_eq!(endless.rule_from(utc(2026, 5, 1, 8, 0), berlin()).expect("rule"), "FREQ=WEEKLY");
    }

    #[test]
    fn a_series_needs_room_for_its_next_occurrence() {
        let last_day = utc(2099, 12, 31, 8, 0);
        let daily =
            Recurrence::parse("FREQ=DAILY", RecurrenceAnchor::Due, Some(last_day), berlin(), None).expect("valid");
        assert!(daily.check_next_representable(last_day, berlin()).expect_err("no room").mentions("due_at"));
        let once = Recurrence::parse("FREQ=DAILY;COUNT=1", RecurrenceAnchor::Due, Some(last_day), berlin(), None)
            .expect("valid");
        assert!(once.check_next_representable(last_day, berlin()).is_ok(), "a series that ends needs no room");
        assert!(parse("FREQ=DAILY").expect("valid").check_next_representable(utc(2026, 3, 27, 8, 0), berlin()).is_ok());
    }

    #[test]
    fn trusted_rules_round_trip() {
        let start = utc(2026, 3, 27, 8, 0);
        let recurrence = Recurrence::from_trusted("FREQ=DAILY;COUNT=3".to_owned(), RecurrenceAnchor::Completion, start);
        assert_eq!(recurrence.rule(), "FREQ=DAILY;COUNT=3");
        assert_eq!(recurrence.anchor(), RecurrenceAnchor::Completion);
        assert_eq!(recurrence.series_start(), start);
    }
}
