//! The recurrence crate against an independent RFC 5545 implementation: python-dateutil's rrule on zoneinfo
//! (`rfc5545_reference.py`, from the pinned Python tools `cargo xtask test` installs).
//!
//! Thousands of generated rules (every supported part, COUNT, UNTIL, INTERVAL, BYDAY with ordinals, negative
//! BYMONTHDAY) start at local times picked next to DST transitions in zones with gaps and repeats, 30- and
//! 45-minute offsets and transitions at midnight. Completing the occurrences one after another must give exactly
//! the reference's expansion from the series' first due time.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Offset, SubsecRound, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest::sample::Index;
use recurrence::{CompletedOccurrence, NextOccurrence, Recurrence, RecurrenceAnchor, Rule, Series};

/// Zones whose offset changes in the years the cases start in: the common ones, the 30-minute (St John's,
/// Adelaide, Lord Howe's half-hour shift) and 45-minute (Chatham) offsets, midnight transitions (Havana,
/// Santiago, Cairo, Beirut), evening ones (Nuuk) and Gaza's several a year.
const ZONES: &[&str] = &[
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Europe/London",
    "Europe/Chisinau",
    "Australia/Sydney",
    "Australia/Adelaide",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "America/St_Johns",
    "America/Havana",
    "America/Santiago",
    "America/Nuuk",
    "Africa/Cairo",
    "Asia/Beirut",
    "Asia/Gaza",
    "Asia/Jerusalem",
];

/// How many occurrences of each series are compared.
const LIMIT: usize = 24;

const WEEKDAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

/// The python-dateutil expansion, one request per line to one long-lived process.
struct Reference {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Reference {
    fn start() -> Self {
        let python = testkit::python::program("python").unwrap_or_else(|error| panic!("{error}"));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rfc5545_reference.py");
        // An empty PYTHONTZPATH makes zoneinfo use the pinned `tzdata` package, never the machine's zone files.
        let mut child = Command::new(&python)
            .arg(script)
            .env("PYTHONTZPATH", "")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {} {script}: {error}", python.display()));
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut reference = Self { child, stdin, stdout };
        let hello = reference.read_line();
        assert_eq!(
            hello["tzdata"].as_str(),
            Some(python_tzdata_version(chrono_tz::IANA_TZDB_VERSION).as_str()),
            "the reference must use the tz release chrono-tz is built from ({})",
            chrono_tz::IANA_TZDB_VERSION
        );
        reference
    }

    fn shared() -> MutexGuard<'static, Reference> {
        static REFERENCE: OnceLock<Mutex<Reference>> = OnceLock::new();
        // A failed case poisons nothing the next one depends on: each request is one line and one answer.
        REFERENCE.get_or_init(|| Mutex::new(Reference::start())).lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// The first `limit` occurrences of `rule` from `start` in `zone`, by the reference.
    fn expand(&mut self, rule: &str, start: DateTime<Utc>, zone: &str, limit: usize) -> Vec<DateTime<Utc>> {
        let request = serde_json::json!({
            "rule": rule,
            "start": start.to_rfc3339(),
            "zone": zone,
            "limit": limit,
            "latest": recurrence::LATEST.to_rfc3339(),
        });
        writeln!(self.stdin, "{request}").expect("writing to the reference");
        self.stdin.flush().expect("flushing the reference's stdin");
        let answer = self.read_line();
        let Some(occurrences) = answer["occurrences"].as_array() else {
            panic!("the reference failed on {request}: {answer}");
        };
        occurrences
            .iter()
            .map(|at| {
                DateTime::parse_from_rfc3339(at.as_str().expect("a string")).expect("an RFC 3339 instant").to_utc()
            })
            .collect()
    }

    fn read_line(&mut self) -> serde_json::Value {
        let mut line = String::new();
        let read = self.stdout.read_line(&mut line).expect("reading from the reference");
        assert!(read > 0, "the reference exited (status {:?})", self.child.try_wait());
        serde_json::from_str(&line).unwrap_or_else(|error| panic!("the reference wrote `{line}`: {error}"))
    }
}

/// `2025b` (IANA) is `2025.2` (the `tzdata` package).
fn python_tzdata_version(iana: &str) -> String {
    let (year, letter) = iana.split_at(4);
    let release = letter.bytes().next().map_or(0, |byte| byte - b'a' + 1);
    format!("{year}.{release}")
}

/// The local wall-clock time at which each offset change of `zone` happens (read on the clock before it), in the
/// years the cases start in. Modern transitions fall on UTC quarter hours, so a 15-minute scan finds each one.
fn transitions(zone: Tz) -> Vec<NaiveDateTime> {
    let offset_at = |at: NaiveDateTime| zone.offset_from_utc_datetime(&at).fix().local_minus_utc();
    let mut at = NaiveDate::from_ymd_opt(2026, 1, 1).and_then(|day| day.and_hms_opt(0, 0, 0)).expect("a date");
    let end = NaiveDate::from_ymd_opt(2040, 1, 1).and_then(|day| day.and_hms_opt(0, 0, 0)).expect("a date");
    let mut offset = offset_at(at);
    let mut found = Vec::new();
    while at < end {
        let next = at + Duration::minutes(15);
        let next_offset = offset_at(next);
        if next_offset != offset {
            found.push(next + Duration::seconds(i64::from(offset)));
        }
        (at, offset) = (next, next_offset);
    }
    found
}

fn zone_transitions() -> &'static [(Tz, Vec<NaiveDateTime>)] {
    static TRANSITIONS: OnceLock<Vec<(Tz, Vec<NaiveDateTime>)>> = OnceLock::new();
    TRANSITIONS.get_or_init(|| {
        ZONES
            .iter()
            .map(|name| {
                let zone: Tz = name.parse().expect("an IANA zone");
                let found = transitions(zone);
                assert!(!found.is_empty(), "{name} has no transition to test against");
                (zone, found)
            })
            .collect()
    })
}

/// One generated series.
#[derive(Debug, Clone)]
struct Case {
    zone: Tz,
    rule: String,
    start: DateTime<Utc>,
    /// How late each occurrence is completed, in seconds (cycled).
    lateness: Vec<i64>,
}

#[derive(Debug, Clone, Copy)]
enum Frequency {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Frequency {
    const fn name(self) -> &'static str {
        match self {
            Frequency::Daily => "DAILY",
            Frequency::Weekly => "WEEKLY",
            Frequency::Monthly => "MONTHLY",
            Frequency::Yearly => "YEARLY",
        }
    }

    /// How many days before a transition a series may start and still reach it within [`LIMIT`] occurrences.
    const fn reach_days(self) -> usize {
        match self {
            Frequency::Daily => 30,
            Frequency::Weekly => 200,
            Frequency::Monthly => 800,
            Frequency::Yearly => 8000,
        }
    }

    /// BYDAY ordinals this frequency allows (RFC 5545: only MONTHLY and YEARLY take them).
    fn ordinals(self) -> &'static [i32] {
        match self {
            Frequency::Daily | Frequency::Weekly => &[],
            // `rrule` 0.14 refuses -5 with MONTHLY and -53 with YEARLY (it allows -4..=5 and -52..=53), so the
            // API does too.
            Frequency::Monthly => &[1, 2, 3, 4, 5, -1, -2, -4],
            Frequency::Yearly => &[1, 2, 10, 20, 52, 53, -1, -10, -52],
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum End {
    Open,
    Count(u32),
    /// Days and seconds after the start.
    Until(i64, i64),
}

fn frequency() -> impl Strategy<Value = Frequency> {
    prop_oneof![Just(Frequency::Daily), Just(Frequency::Weekly), Just(Frequency::Monthly), Just(Frequency::Yearly)]
}

fn by_day(frequency: Frequency) -> BoxedStrategy<Option<String>> {
    let plain = prop::collection::btree_set(prop::sample::select(WEEKDAYS.to_vec()), 1..=3)
        .prop_map(|days| days.into_iter().collect::<Vec<_>>().join(","));
    let ordinals = frequency.ordinals();
    if ordinals.is_empty() {
        return prop::option::weighted(0.4, plain).boxed();
    }
    let ordinal = (prop::sample::select(ordinals.to_vec()), prop::sample::select(WEEKDAYS.to_vec()))
        .prop_map(|(n, day)| format!("{n}{day}"));
    let with_ordinals = prop::collection::vec(ordinal, 1..=2).prop_map(|days| days.join(","));
    prop::option::weighted(0.6, prop_oneof![plain, with_ordinals]).boxed()
}

fn by_month_day(frequency: Frequency) -> BoxedStrategy<Option<String>> {
    if matches!(frequency, Frequency::Weekly) {
        return Just(None).boxed();
    }
    let day = prop_oneof![1i32..=31, -31i32..=-1];
    let days = prop::collection::btree_set(day, 1..=3)
        .prop_map(|days| days.into_iter().map(|day| day.to_string()).collect::<Vec<_>>().join(","));
    prop::option::weighted(0.35, days).boxed()
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![
        2 => Just(End::Open),
        2 => (1u32..=30).prop_map(End::Count),
        1 => (0i64..=3000, 0i64..86_400).prop_map(|(days, seconds)| End::Until(days, seconds)),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    frequency()
        .prop_flat_map(|frequency| {
            (
                Just(frequency),
                prop::option::weighted(0.4, 1u32..=4),
                by_day(frequency),
                by_month_day(frequency),
                end(),
                (0..ZONES.len(), any::<Index>(), -150i64..=180, any::<Index>()),
                prop::collection::vec(0i64..200_000, 1..4),
            )
        })
        .prop_map(|(frequency, interval, by_day, by_month_day, end, (zone, transition, minutes, days), lateness)| {
            let (zone, transitions) = &zone_transitions()[zone];
            // A wall-clock time next to (often inside) a gap or a repeat, some days before it on the calendar.
            let near = *transition.get(transitions) + Duration::minutes(minutes);
            let start_local = near - Duration::days(days.index(frequency.reach_days()) as i64);
            let start = recurrence::resolve(*zone, start_local);
            // Ordinals and month days together rarely meet at all; keep such rules out so every case can expand.
            let by_month_day =
                by_month_day.filter(|_| !by_day.as_deref().is_some_and(|d| d.contains(char::is_numeric)));
            let mut parts = vec![format!("FREQ={}", frequency.name())];
            parts.extend(interval.map(|n| format!("INTERVAL={n}")));
            parts.extend(by_day.map(|days| format!("BYDAY={days}")));
            parts.extend(by_month_day.map(|days| format!("BYMONTHDAY={days}")));
            match end {
                End::Open => {}
                End::Count(count) => parts.push(format!("COUNT={count}")),
                End::Until(days, seconds) => {
                    let until = start + Duration::days(days) + Duration::seconds(seconds);
                    parts.push(format!("UNTIL={}", until.format("%Y%m%dT%H%M%SZ")));
                }
            }
            Case { zone: *zone, rule: parts.join(";"), start, lateness }
        })
}

/// Completes each occurrence (late by the case's lateness) and collects what the series schedules next.
fn completed_one_after_another(case: &Case, anchor: RecurrenceAnchor) -> Vec<DateTime<Utc>> {
    let rule = Rule::parse(&case.rule).unwrap_or_else(|error| panic!("{} is refused: {error}", case.rule));
    let mut recurrence = Recurrence::new(rule, anchor);
    let mut series_start = case.start;
    let mut due_at = case.start;
    let mut due = vec![due_at];
    for lateness in case.lateness.iter().cycle() {
        if due.len() >= LIMIT {
            break;
        }
        let completed = CompletedOccurrence {
            due_at,
            completed_at: due_at + Duration::seconds(*lateness),
            time_zone: case.zone,
            series_start,
        };
        match recurrence.next_occurrence(&completed).unwrap_or_else(|error| panic!("{}: {error}", case.rule)) {
            NextOccurrence::SeriesEnded => break,
            NextOccurrence::Scheduled { due_at: next, rule, series_start: start } => {
                assert!(next > due_at, "{}: {next} does not follow {due_at}", case.rule);
                (due_at, series_start) = (next, start);
                recurrence = Recurrence::new(rule, anchor);
                due.push(next);
            }
        }
    }
    due
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    /// The property: however late each occurrence is done, a due-anchored series is the RFC 5545
    /// expansion from its first due time, through every gap and repeat.
    #[test]
    fn completing_each_occurrence_yields_the_rfc5545_expansion(case in case()) {
        let expected = Reference::shared().expand(&case.rule, case.start, case.zone.name(), LIMIT);
        let series = Series::new(Rule::parse(&case.rule).expect("a valid rule"), case.start, case.zone)
            .expect("a series");
        let expanded: Vec<_> = series.occurrences().expect("occurrences").take(LIMIT).collect();
        prop_assert_eq!(&expanded, &expected, "{} from {} in {}", case.rule, case.start, case.zone);
        let completed = completed_one_after_another(&case, RecurrenceAnchor::Due);
        prop_assert_eq!(&completed, &expected, "{} from {} in {}", case.rule, case.start, case.zone);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, failure_persistence: None, ..ProptestConfig::default() })]

    /// A completion-anchored series restarts the rule at each completion: every next occurrence is the
    /// reference's first date after the completion (and after the completed due time), and COUNT still bounds
    /// the whole series.
    #[test]
    fn completion_anchored_series_restart_at_each_completion(case in case()) {
        let completed = completed_one_after_another(&case, RecurrenceAnchor::Completion);
        let rule = Rule::parse(&case.rule).expect("a valid rule");
        let open_rule: Vec<&str> = case.rule.split(';').filter(|part| !part.starts_with("COUNT=")).collect();
        let mut reference = Reference::shared();
        for (step, pair) in completed.windows(2).enumerate() {
            let lateness = case.lateness[step % case.lateness.len()];
            let restart = (pair[0] + Duration::seconds(lateness)).trunc_subsecs(0);
            let dates = reference.expand(&open_rule.join(";"), restart, case.zone.name(), LIMIT);
            let expected = dates.into_iter().find(|at| *at > restart.max(pair[0]));
            prop_assert_eq!(Some(pair[1]), expected, "{} after {} done at {}", case.rule, pair[0], restart);
        }
        let count = rule.count().expect("count").map_or(usize::MAX, |count| count as usize);
        prop_assert!(completed.len() <= count, "{}: {} occurrences", case.rule, completed.len());
        if completed.len() < LIMIT.min(count) {
            // The series ended before COUNT: the reference must have no date left either.
            let last = completed[completed.len() - 1];
            let lateness = case.lateness[(completed.len() - 1) % case.lateness.len()];
            let restart = (last + Duration::seconds(lateness)).trunc_subsecs(0);
            let dates = reference.expand(&open_rule.join(";"), restart, case.zone.name(), LIMIT);
            let expected = dates.into_iter().find(|at| *at > restart.max(last));
            prop_assert_eq!(expected, None, "{} ended after {} done at {}", case.rule, last, restart);
        }
    }
}
