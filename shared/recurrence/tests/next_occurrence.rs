//! The next occurrence of a completed task, table-driven with explicit instants.
//!
//! DST dates used: Europe/Berlin springs forward 2026-03-29 02:00 → 03:00 (+01 → +02) and falls back
//! 2026-10-25 03:00 → 02:00; America/New_York springs forward 2026-03-08 and falls back 2026-11-01.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use recurrence::{CompletedOccurrence, NextOccurrence, Recurrence, RecurrenceAnchor, Rule};

const BERLIN: Tz = chrono_tz::Europe::Berlin;
const NEW_YORK: Tz = chrono_tz::America::New_York;
const UTC: Tz = chrono_tz::UTC;

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

struct Case {
    name: &'static str,
    rule: &'static str,
    anchor: RecurrenceAnchor,
    zone: Tz,
    due: &'static str,
    completed: &'static str,
    /// `None`: the series ends.
    next: Option<&'static str>,
    /// The rule the next occurrence carries, when it differs from `rule`.
    next_rule: Option<&'static str>,
    /// The series' first due time, when it is not `due` (the completed task is a later occurrence).
    series_start: Option<&'static str>,
}

const fn due(name: &'static str, rule: &'static str, zone: Tz, due: &'static str, next: Option<&'static str>) -> Case {
    // Completion long after the due time: with the due anchor it must not matter.
    Case {
        name,
        rule,
        anchor: RecurrenceAnchor::Due,
        zone,
        due,
        completed: "2030-06-01T12:00:00Z",
        next,
        next_rule: None,
        series_start: None,
    }
}

fn run(cases: &[Case]) {
    for case in cases {
        let recurrence = Recurrence::new(Rule::parse(case.rule).unwrap(), case.anchor);
        let series_start = at(case.series_start.unwrap_or(case.due));
        let completed = CompletedOccurrence {
            due_at: at(case.due),
            completed_at: at(case.completed),
            time_zone: case.zone,
            series_start,
        };
        let actual = recurrence.next_occurrence(&completed).unwrap_or_else(|error| panic!("{}: {error}", case.name));
        let expected = match case.next {
            Some(next) => NextOccurrence::Scheduled {
                due_at: at(next),
                rule: Rule::parse(case.next_rule.unwrap_or(case.rule)).unwrap(),
                // A due-anchored series keeps its start; a completion-anchored one starts again at the next one.
                series_start: match case.anchor {
                    RecurrenceAnchor::Due => series_start.trunc_subsecs(0),
                    RecurrenceAnchor::Completion => at(next),
                },
            },
            None => NextOccurrence::SeriesEnded,
        };
        assert_eq!(actual, expected, "{}", case.name);
    }
}

#[test]
fn daily_keeps_local_time_across_dst_in_both_directions() {
    run(&[
        due(
            "Berlin spring forward: 09:00 +01 → 09:00 +02",
            "FREQ=DAILY",
            BERLIN,
            "2026-03-28T08:00:00Z",
            Some("2026-03-29T07:00:00Z"),
        ),
        due(
            "Berlin day after spring forward",
            "FREQ=DAILY",
            BERLIN,
            "2026-03-29T07:00:00Z",
            Some("2026-03-30T07:00:00Z"),
        ),
        due(
            "Berlin fall back: 09:00 +02 → 09:00 +01",
            "FREQ=DAILY",
            BERLIN,
            "2026-10-24T07:00:00Z",
            Some("2026-10-25T08:00:00Z"),
        ),
        due(
            "New York spring forward: 09:00 -05 → 09:00 -04",
            "FREQ=DAILY",
            NEW_YORK,
            "2026-03-07T14:00:00Z",
            Some("2026-03-08T13:00:00Z"),
        ),
        due(
            "New York fall back: 09:00 -04 → 09:00 -05",
            "FREQ=DAILY",
            NEW_YORK,
            "2026-10-31T13:00:00Z",
            Some("2026-11-01T14:00:00Z"),
        ),
        due(
            "weekly across spring forward",
            "FREQ=WEEKLY",
            BERLIN,
            "2026-03-27T08:00:00Z",
            Some("2026-04-03T07:00:00Z"),
        ),
        due("UTC has no DST", "FREQ=DAILY", UTC, "2026-03-28T09:00:00Z", Some("2026-03-29T09:00:00Z")),
    ]);
}

#[test]
fn local_times_in_dst_gaps_and_folds() {
    run(&[
        // 02:30 does not exist on 2026-03-29: RFC 5545 takes it with the offset before the gap (03:30 +02).
        due("into the gap", "FREQ=DAILY", BERLIN, "2026-03-28T01:30:00Z", Some("2026-03-29T01:30:00Z")),
        // 02:30 happens twice on 2026-10-25: the earlier instant (+02).
        due(
            "into the fold: earlier instant",
            "FREQ=DAILY",
            BERLIN,
            "2026-10-24T00:30:00Z",
            Some("2026-10-25T00:30:00Z"),
        ),
        due("out of the fold, first 02:30", "FREQ=DAILY", BERLIN, "2026-10-25T00:30:00Z", Some("2026-10-26T01:30:00Z")),
        // The series: 02:30 New York shifted to 03:30 on the gap day only, 02:30 again the day after.
        Case {
            series_start: Some("2027-03-12T07:30:00Z"),
            ..due("after the gap day", "FREQ=DAILY", NEW_YORK, "2027-03-14T07:30:00Z", Some("2027-03-15T06:30:00Z"))
        },
        Case {
            series_start: Some("2026-03-01T07:15:00Z"),
            ..due("weekly past a gap", "FREQ=WEEKLY", NEW_YORK, "2026-03-08T07:15:00Z", Some("2026-03-15T06:15:00Z"))
        },
        // A due time at the second 02:30 (+01) is an unambiguous instant: the rule starts from it.
        due(
            "out of the fold, second 02:30",
            "FREQ=DAILY",
            BERLIN,
            "2026-10-25T01:30:00Z",
            Some("2026-10-26T01:30:00Z"),
        ),
    ]);
}

#[test]
fn next_is_strictly_after_the_anchor() {
    run(&[
        due(
            "a due time on the rule is not its own successor",
            "FREQ=WEEKLY;BYDAY=MO,WE,FR",
            UTC,
            "2026-05-06T09:00:00Z",
            Some("2026-05-08T09:00:00Z"),
        ),
        due("Friday → Monday", "FREQ=WEEKLY;BYDAY=MO,WE,FR", UTC, "2026-05-08T09:00:00Z", Some("2026-05-11T09:00:00Z")),
        due(
            "a due time off the rule goes to the rule's next date",
            "FREQ=WEEKLY;BYDAY=MO",
            UTC,
            "2026-05-05T09:00:00Z",
            Some("2026-05-11T09:00:00Z"),
        ),
        due("sub-second due time", "FREQ=DAILY", BERLIN, "2026-03-28T08:00:00.500Z", Some("2026-03-29T07:00:00Z")),
        due("interval", "FREQ=DAILY;INTERVAL=2", UTC, "2026-05-06T09:00:00Z", Some("2026-05-08T09:00:00Z")),
        due(
            "second Tuesday of the month",
            "FREQ=MONTHLY;BYDAY=2TU",
            UTC,
            "2026-05-12T09:00:00Z",
            Some("2026-06-09T09:00:00Z"),
        ),
    ]);
}

#[test]
fn due_anchor_follows_the_schedule_however_late_the_completion() {
    run(&[Case {
        name: "completed four days late",
        rule: "FREQ=DAILY",
        anchor: RecurrenceAnchor::Due,
        zone: BERLIN,
        due: "2026-03-01T08:00:00Z",
        completed: "2026-03-05T17:00:00Z",
        next: Some("2026-03-02T08:00:00Z"),
        next_rule: None,
        series_start: None,
    }]);
}

#[test]
fn month_ends_and_leap_days() {
    run(&[
        due(
            "MONTHLY on the 31st skips February (RFC 5545)",
            "FREQ=MONTHLY",
            BERLIN,
            "2026-01-31T08:00:00Z",
            Some("2026-03-31T07:00:00Z"),
        ),
        due(
            "MONTHLY on the 31st skips April",
            "FREQ=MONTHLY",
            BERLIN,
            "2026-03-31T07:00:00Z",
            Some("2026-05-31T07:00:00Z"),
        ),
        due(
            "BYMONTHDAY=-1: January → February 28",
            "FREQ=MONTHLY;BYMONTHDAY=-1",
            BERLIN,
            "2026-01-31T08:00:00Z",
            Some("2026-02-28T08:00:00Z"),
        ),
        due(
            "BYMONTHDAY=-1: February → March 31 (and DST)",
            "FREQ=MONTHLY;BYMONTHDAY=-1",
            BERLIN,
            "2026-02-28T08:00:00Z",
            Some("2026-03-31T07:00:00Z"),
        ),
        due(
            "BYMONTHDAY=-1 in a leap year",
            "FREQ=MONTHLY;BYMONTHDAY=-1",
            UTC,
            "2028-01-31T09:00:00Z",
            Some("2028-02-29T09:00:00Z"),
        ),
        due(
            "yearly on a leap day waits for the next leap year",
            "FREQ=YEARLY",
            UTC,
            "2028-02-29T09:00:00Z",
            Some("2032-02-29T09:00:00Z"),
        ),
    ]);
}

#[test]
fn count_is_the_size_of_the_series_from_its_start() {
    let counted = |name, rule, series_start, next: Option<&'static str>| Case {
        name,
        rule,
        anchor: RecurrenceAnchor::Due,
        zone: BERLIN,
        due: "2026-03-28T08:00:00Z",
        completed: "2026-03-28T09:00:00Z",
        next,
        next_rule: None,
        series_start,
    };
    run(&[
        counted("the first of three → the second", "FREQ=DAILY;COUNT=3", None, Some("2026-03-29T07:00:00Z")),
        counted(
            "the second of three → the third",
            "FREQ=DAILY;COUNT=3",
            Some("2026-03-27T08:00:00Z"),
            Some("2026-03-29T07:00:00Z"),
        ),
        counted("the third of three ends it", "FREQ=DAILY;COUNT=3", Some("2026-03-26T08:00:00Z"), None),
        counted("the only one", "FREQ=DAILY;COUNT=1", None, None),
    ]);
}

#[test]
fn until_is_inclusive_and_ends_the_series() {
    run(&[
        due(
            "next lands exactly on UNTIL",
            "FREQ=DAILY;UNTIL=20260329T070000Z",
            BERLIN,
            "2026-03-28T08:00:00Z",
            Some("2026-03-29T07:00:00Z"),
        ),
        due("next is one second past UNTIL", "FREQ=DAILY;UNTIL=20260329T065959Z", BERLIN, "2026-03-28T08:00:00Z", None),
        due("UNTIL already passed", "FREQ=WEEKLY;UNTIL=20260101T000000Z", BERLIN, "2026-03-28T08:00:00Z", None),
    ]);
}

#[test]
fn completion_anchor_counts_from_the_completion_instant() {
    let from_completion = |name, rule, completed, next: Option<&'static str>| Case {
        name,
        rule,
        anchor: RecurrenceAnchor::Completion,
        zone: BERLIN,
        due: "2026-03-01T08:00:00Z",
        completed,
        next,
        next_rule: None,
        series_start: None,
    };
    run(&[
        from_completion(
            "three days after completion",
            "FREQ=DAILY;INTERVAL=3",
            "2026-03-10T15:45:30.123Z",
            Some("2026-03-13T15:45:30Z"),
        ),
        // 16:00 +01 on the 27th → 16:00 +02 on the 30th: local time kept, not 72 hours added.
        from_completion(
            "across spring forward",
            "FREQ=DAILY;INTERVAL=3",
            "2026-03-27T15:00:00Z",
            Some("2026-03-30T14:00:00Z"),
        ),
        from_completion(
            "weekly rule from a Tuesday completion",
            "FREQ=WEEKLY;BYDAY=MO,WE",
            "2026-03-10T10:00:00Z",
            Some("2026-03-11T10:00:00Z"),
        ),
        from_completion(
            "UNTIL before the completion ends the series",
            "FREQ=DAILY;UNTIL=20260305T000000Z",
            "2026-03-10T10:00:00Z",
            None,
        ),
        // Done two days early: counting from the completion would land before the completed task's own due time.
        from_completion(
            "completed ahead of its due time",
            "FREQ=DAILY",
            "2026-02-27T08:00:00Z",
            // From the completion: Feb 28, Mar 1 09:00 (= the completed due time, so not it), Mar 2.
            Some("2026-03-02T08:00:00Z"),
        ),
    ]);
    // COUNT counts the whole series: each completion-anchored occurrence starts the rest of it.
    run(&[
        Case {
            next_rule: Some("FREQ=DAILY;COUNT=2"),
            ..from_completion(
                "first of three",
                "FREQ=DAILY;COUNT=3",
                "2026-03-10T10:00:00Z",
                Some("2026-03-11T10:00:00Z"),
            )
        },
        from_completion("the last one", "FREQ=DAILY;COUNT=1", "2026-03-10T10:00:00Z", None),
    ]);
}

#[test]
fn a_trusted_rule_that_is_broken_is_an_error_not_a_panic() {
    let recurrence = Recurrence::new(Rule::from_trusted("FREQ=WEEKLY;BYDAY=XX"), RecurrenceAnchor::Due);
    let completed = CompletedOccurrence {
        due_at: at("2026-03-28T08:00:00Z"),
        completed_at: at("2026-03-28T09:00:00Z"),
        time_zone: BERLIN,
        series_start: at("2026-03-28T08:00:00Z"),
    };
    assert!(recurrence.next_occurrence(&completed).is_err());
    let bad_count = Recurrence::new(Rule::from_trusted("FREQ=DAILY;COUNT=x"), RecurrenceAnchor::Due);
    assert!(bad_count.next_occurrence(&completed).is_err());
}
