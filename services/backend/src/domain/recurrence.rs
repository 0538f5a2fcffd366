//! Recurrence rules: the RFC 5545 RRULE subset Taskwatch supports, validated with the `rrule` crate.
//!
//! The rule is interpreted from the task's due time *in the task's IANA time zone*, so "every day at 09:00
//! Europe/Berlin" stays at 09:00 local time across DST changes instead of drifting by an hour.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rrule::{RRule, RRuleSet, Unvalidated};

use super::violations::{Collector, Violations};

const RULE_FIELD: &str = "recurrence.rrule";

/// Rule parts the subset allows; anything else (BYHOUR, BYSETPOS, WKST, …) is rejected rather than ignored.
const ALLOWED_PARTS: [&str; 6] = ["FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL"];
const ALLOWED_FREQUENCIES: [&str; 4] = ["DAILY", "WEEKLY", "MONTHLY", "YEARLY"];
const SUB_DAILY_FREQUENCIES: [&str; 3] = ["HOURLY", "MINUTELY", "SECONDLY"];

/// Where the next occurrence is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecurrenceAnchor {
    /// Follows the schedule of due dates, however late a task was completed.
    Due,
    /// Counted from the moment the task was completed.
    Completion,
}

impl RecurrenceAnchor {
    pub const fn as_str(self) -> &'static str {
        match self {
            RecurrenceAnchor::Due => "due",
            RecurrenceAnchor::Completion => "completion",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [RecurrenceAnchor::Due, RecurrenceAnchor::Completion].into_iter().find(|anchor| anchor.as_str() == name)
    }
}

/// A validated recurrence: an RRULE (without DTSTART) in normalised upper-case form, plus its anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurrence {
    rule: String,
    anchor: RecurrenceAnchor,
}

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
        let normalised = normalise(rule);
        check_subset(&normalised)?;
        let Some(due_at) = due_at else {
            return Err(Violations::single("due_at", "is required for a recurring task (the rule starts there)"));
        };
        build_set(&normalised, due_at, time_zone)?;
        Ok(Self { rule: normalised, anchor })
    }

    /// Rebuilds a recurrence read back from storage, where it was validated on the way in.
    pub fn from_trusted(rule: String, anchor: RecurrenceAnchor) -> Self {
        Self { rule, anchor }
    }

    pub fn rule(&self) -> &str {
        &self.rule
    }

    pub fn anchor(&self) -> RecurrenceAnchor {
        self.anchor
    }

    /// The first `limit` occurrences, the first being `due_at` itself when it matches the rule.
    pub fn occurrences(
        &self,
        due_at: DateTime<Utc>,
        time_zone: Tz,
        limit: u16,
    ) -> Result<Vec<DateTime<Utc>>, Violations> {
        let set = build_set(&self.rule, due_at, time_zone)?;
        Ok(set.all(limit).dates.into_iter().map(|date| date.with_timezone(&Utc)).collect())
    }

    /// The first occurrence strictly after `after`, if the rule has one.
    pub fn next_after(
        &self,
        due_at: DateTime<Utc>,
        time_zone: Tz,
        after: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, Violations> {
        let set = build_set(&self.rule, due_at, time_zone)?;
        // `rrule`'s `after` bound is inclusive, so ask for two and skip an exact match.
        let after_local = after.with_timezone(&rrule::Tz::Tz(time_zone));
        let candidates = set.after(after_local).all(2).dates;
        Ok(candidates.into_iter().map(|date| date.with_timezone(&Utc)).find(|date| *date > after))
    }
}

fn normalise(rule: &str) -> String {
    let upper = rule.trim().to_ascii_uppercase();
    upper.strip_prefix("RRULE:").map(str::to_owned).unwrap_or(upper)
}

/// Checks the parts the subset allows, reporting every problem with the rule text at once.
fn check_subset(rule: &str) -> Result<(), Violations> {
    let mut collector = Collector::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut frequency = None;
    for part in rule.split(';') {
        let Some((name, value)) = part.split_once('=') else {
            collector.add(RULE_FIELD, format!("`{part}` is not a NAME=VALUE rule part"));
            continue;
        };
        if !ALLOWED_PARTS.contains(&name) {
            collector.add(
                RULE_FIELD,
                format!("rule part `{name}` is not supported (allowed: {})", ALLOWED_PARTS.join(", ")),
            );
            continue;
        }
        if seen.contains(&name) {
            collector.add(RULE_FIELD, format!("rule part `{name}` appears more than once"));
            continue;
        }
        seen.push(name);
        match name {
            "FREQ" => frequency = Some(value),
            "UNTIL" if !is_utc_date_time(value) => collector.add(
                RULE_FIELD,
                "UNTIL must be a UTC date-time such as 20261231T235959Z (RFC 5545 requires UTC with a time zone)",
            ),
            _ => {}
        }
    }
    match frequency {
        None => collector.add(RULE_FIELD, "FREQ is required"),
        Some(freq) if SUB_DAILY_FREQUENCIES.contains(&freq) => {
            collector.add(RULE_FIELD, format!("FREQ={freq} is not supported: tasks recur at most daily"));
        }
        Some(freq) if !ALLOWED_FREQUENCIES.contains(&freq) => collector
            .add(RULE_FIELD, format!("FREQ={freq} is not supported (allowed: {})", ALLOWED_FREQUENCIES.join(", "))),
        Some(_) => {}
    }
    if seen.contains(&"COUNT") && seen.contains(&"UNTIL") {
        collector.add(RULE_FIELD, "COUNT and UNTIL must not both be set");
    }
    collector.finish(|| Some(()))
}

/// `YYYYMMDDTHHMMSSZ`.
fn is_utc_date_time(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 16
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && bytes[..8].iter().chain(&bytes[9..15]).all(u8::is_ascii_digit)
}

/// Runs `rrule`'s parser and validator with DTSTART = `due_at` seen in `time_zone`.
///
/// DTSTART is built from the instant rather than from local-time text, so a due time inside a DST fold is not
/// ambiguous here.
fn build_set(rule: &str, due_at: DateTime<Utc>, time_zone: Tz) -> Result<RRuleSet, Violations> {
    let parsed: RRule<Unvalidated> =
        rule.parse().map_err(|error| Violations::single(RULE_FIELD, format!("invalid rule: {error}")))?;
    let dt_start = due_at.with_timezone(&rrule::Tz::Tz(time_zone));
    parsed.build(dt_start).map_err(|error| Violations::single(RULE_FIELD, format!("invalid rule: {error}")))
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
    fn accepts_the_supported_subset() {
        for rule in [
            "FREQ=DAILY",
            "FREQ=DAILY;INTERVAL=2;COUNT=10",
            "FREQ=WEEKLY;BYDAY=MO,WE,FR",
            "FREQ=MONTHLY;BYMONTHDAY=-1",
            "FREQ=MONTHLY;BYDAY=2TU",
            "FREQ=YEARLY;UNTIL=20301231T000000Z",
            "rrule:freq=weekly",
        ] {
            assert!(parse(rule).is_ok(), "{rule} should be accepted: {:?}", parse(rule));
        }
        assert_eq!(parse("rrule:freq=weekly").expect("valid").rule(), "FREQ=WEEKLY");
    }

    #[test]
    fn rejects_what_the_subset_excludes() {
        for rule in [
            "FREQ=HOURLY",
            "FREQ=MINUTELY",
            "FREQ=SECONDLY",
            "FREQ=FORTNIGHTLY",
            "INTERVAL=2",
            "FREQ=DAILY;COUNT=3;UNTIL=20301231T000000Z",
            "FREQ=DAILY;BYHOUR=9",
            "FREQ=DAILY;FREQ=WEEKLY",
            "FREQ=DAILY;UNTIL=20301231",
            "FREQ=WEEKLY;BYDAY=XX",
            "FREQ=WEEKLY;BYMONTHDAY=3",
            "FREQ=DAILY;UNTIL=20200101T000000Z",
            "garbage",
            "",
        ] {
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
    fn finite_rule_runs_out() {
        let recurrence = parse("FREQ=DAILY;COUNT=2").expect("valid");
        let due = utc(2026, 3, 27, 8, 0);
        assert_eq!(recurrence.next_after(due, berlin(), utc(2026, 3, 28, 8, 0)).expect("computes"), None);
    }

    #[test]
    fn month_end_rule_lands_on_the_last_day() {
        let recurrence = parse("FREQ=MONTHLY;BYMONTHDAY=-1").expect("valid");
        let dates = recurrence.occurrences(utc(2026, 1, 31, 8, 0), berlin(), 3).expect("occurrences");
        assert_eq!(dates, vec![utc(2026, 1, 31, 8, 0), utc(2026, 2, 28, 8, 0), utc(2026, 3, 31, 7, 0)]);
    }
}
