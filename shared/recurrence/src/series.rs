//! A recurring series as RFC 5545 defines it: a start (DTSTART) and a rule, expanded on the wall clock of one zone.

use chrono::{DateTime, Duration, NaiveDateTime, Offset, SubsecRound, TimeZone, Utc};
use chrono_tz::Tz;
use rrule::{RRule, RRuleSet, Unvalidated};

use crate::error::RuleError;
use crate::rule::Rule;

/// The earliest due time a series may have: the Unix epoch, where Kafka, Prometheus and the reminder timestamps
/// all begin.
pub const EARLIEST: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// The latest instant an occurrence may have: 2099-12-31T23:59:59Z. `chrono-tz` compiles every zone's offset
/// changes through 2099 and none after, so later local times would silently lose their DST (the RFC 5545
/// property test against zoneinfo finds exactly that from 2100 on). A series whose next occurrence would be later
/// ends there, and a task cannot be due later.
pub const LATEST: DateTime<Utc> = match DateTime::from_timestamp_secs(4_102_444_799) {
    Some(latest) => latest,
    None => panic!("2099-12-31T23:59:59Z is within chrono's range"),
};

/// A rule anchored at its series' start, in the series' zone.
///
/// The rule runs on *wall-clock* time: DTSTART is the start's local date-time, the rule is expanded on naive
/// local date-times (so "daily at 02:30" stays 02:30 whatever happens to the offset), and only then is each
/// local date-time resolved to an instant the way RFC 5545 (section 3.3.5) says: a time inside a spring-forward
/// gap takes the offset from before the gap (02:30 becomes 03:30 summer time, that day only), a repeated time
/// is its first instant. Resolving each occurrence afresh from the series' start is what keeps one shifted day
/// from shifting the rest of the series.
#[derive(Debug, Clone)]
pub struct Series {
    rule: Rule,
    start: DateTime<Utc>,
    zone: Tz,
    /// The rule without COUNT and UNTIL, from the start's local date-time taken as a floating (UTC) time.
    schedule: RRuleSet,
}

/// The first occurrence after an instant, or why there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// The series has an occurrence after the instant; this is the first one.
    Occurrence(DateTime<Utc>),
    /// COUNT is used up, UNTIL has passed, or the rule has no further date.
    Ended,
    /// The next occurrence would be after [`LATEST`], where every series ends.
    BeyondLatest,
}

impl Series {
    /// The series of `rule` starting at `start` (its first occurrence, whole seconds) in `zone`. Checks the rule
    /// with `rrule`'s own validator (e.g. BYMONTHDAY with FREQ=WEEKLY is refused); whether UNTIL lies before the
    /// start is [`Series::check_until`]'s concern, because a re-anchored series may legitimately have ended.
    pub fn new(rule: Rule, start: DateTime<Utc>, zone: Tz) -> Result<Self, RuleError> {
        let start = start.trunc_subsecs(0);
        let parsed: RRule<Unvalidated> =
            rule.schedule().as_str().parse().map_err(|error| RuleError::single(format!("invalid rule: {error}")))?;
        let floating = start.with_timezone(&zone).naive_local().and_utc().with_timezone(&rrule::Tz::UTC);
        let schedule = parsed.build(floating).map_err(|error| RuleError::single(format!("invalid rule: {error}")))?;
        Ok(Self { rule, start, zone, schedule })
    }

    /// The rule as given, `COUNT` and `UNTIL` included.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// The first occurrence (DTSTART), in whole seconds.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// The zone whose wall clock the rule runs on.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// Refuses an UNTIL before the start: such a series would have no occurrence at all, not even its first.
    pub fn check_until(&self) -> Result<(), RuleError> {
        match self.rule.until()? {
            Some(until) if until < self.start => {
                Err(RuleError::single("UNTIL is before the first occurrence (the task's due_at)"))
            }
            _ => Ok(()),
        }
    }

    /// Every occurrence in order: the start first (RFC 5545 counts DTSTART as the first occurrence even when it
    /// does not match the rule), then each date of the rule after it, up to COUNT, UNTIL or [`LATEST`].
    pub fn occurrences(&self) -> Result<impl Iterator<Item = DateTime<Utc>> + '_, RuleError> {
        let count = self.rule.count()?.map_or(usize::MAX, |count| count as usize);
        let until = self.rule.until()?.map_or(LATEST, |until| until.min(LATEST));
        let start_local = self.start.with_timezone(&self.zone).naive_local();
        let zone = self.zone;
        let later = self
            .schedule
            .clone()
            .limit()
            .into_iter()
            .map(|floating| floating.naive_utc())
            .filter(move |local| *local > start_local)
            .map(move |local| resolve(zone, local));
        Ok(std::iter::once(self.start).chain(later).take(count).take_while(move |at| *at <= until))
    }

    /// The first occurrence strictly after `after`.
    pub fn first_after(&self, after: DateTime<Utc>) -> Result<After, RuleError> {
        let mut up_to_after = 0usize;
        for at in self.occurrences()? {
            if at > after {
                return Ok(After::Occurrence(at));
            }
            up_to_after += 1;
        }
        // Ended by COUNT or UNTIL, or only by LATEST?
        let ended_by_rule = match self.rule.until()? {
            Some(until) if until <= LATEST => true,
            _ => self.rule.count()?.is_some_and(|count| up_to_after >= count as usize),
        };
        Ok(if ended_by_rule { After::Ended } else { After::BeyondLatest })
    }

    /// How many occurrences lie strictly before `at`.
    pub fn occurrences_before(&self, at: DateTime<Utc>) -> Result<u32, RuleError> {
        let before = self.occurrences()?.take_while(|occurrence| *occurrence < at).count();
        Ok(u32::try_from(before).unwrap_or(u32::MAX))
    }

    /// The rule of the rest of this series once the occurrences strictly before `from` are behind it: the same
    /// rule with COUNT lowered by their number (RFC 5545's RANGE=THISANDFUTURE: a series re-anchored at `from`
    /// keeps its total), or `None` when COUNT is used up.
    pub fn rule_from(&self, from: DateTime<Utc>) -> Result<Option<Rule>, RuleError> {
        let Some(count) = self.rule.count()? else {
            return Ok(Some(self.rule.clone()));
        };
        let done = self.occurrences_before(from)?;
        Ok(count.checked_sub(done).filter(|left| *left > 0).map(|left| self.rule.with_count(left)))
    }
}

/// The instant of local date-time `local` in `zone` by RFC 5545 section 3.3.5: as it is when it exists, the
/// first of the two when it is repeated (fall back), and with the offset from before the gap when it does not
/// exist (spring forward).
pub fn resolve(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        chrono::LocalResult::Single(at) => at.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        chrono::LocalResult::None => {
            // A day before the gap is before its transition in every zone (offsets stay within ±26 hours of
            // each other), and after the previous one: zones change offset months apart.
            let before_gap = local.and_utc() - Duration::hours(26);
            let offset = zone.offset_from_utc_datetime(&before_gap.naive_utc());
            let offset_seconds = offset.fix().local_minus_utc();
            (local - Duration::seconds(i64::from(offset_seconds))).and_utc()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).map(|at| at.to_utc()).expect("an RFC 3339 instant")
    }

    fn series(rule: &str, start: &str, zone: Tz) -> Series {
        Series::new(Rule::parse(rule).expect("a valid rule"), at(start), zone).expect("a series")
    }

    #[test]
    fn a_time_in_the_gap_moves_for_that_day_only() {
        // 02:30 New York: 03:30 EDT on the spring-forward day, 02:30 EDT again the day after.
        let daily = series("FREQ=DAILY", "2027-03-12T07:30:00Z", chrono_tz::America::New_York);
        let dates: Vec<_> = daily.occurrences().expect("occurrences").take(5).collect();
        let expected = ["2027-03-12T07:30:00Z", "2027-03-13T07:30:00Z", "2027-03-14T07:30:00Z", "2027-03-15T06:30:00Z"];
        assert_eq!(dates[..4], expected.map(at));
        assert_eq!(dates[4], at("2027-03-16T06:30:00Z"));
    }

    #[test]
    fn local_times_resolve_as_rfc5545_says() {
        let berlin = chrono_tz::Europe::Berlin;
        let local = |text: &str| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("a local time");
        assert_eq!(resolve(berlin, local("2026-03-29 02:30")), at("2026-03-29T01:30:00Z"), "gap: offset before it");
        assert_eq!(resolve(berlin, local("2026-10-25 02:30")), at("2026-10-25T00:30:00Z"), "repeat: the first");
        assert_eq!(resolve(berlin, local("2026-07-01 09:00")), at("2026-07-01T07:00:00Z"));
        // Havana springs forward at midnight: 00:30 does not exist, so it is 01:30 daylight time.
        let havana = chrono_tz::America::Havana;
        assert_eq!(resolve(havana, local("2026-03-08 00:30")), at("2026-03-08T05:30:00Z"));
    }

    #[test]
    fn count_includes_the_start_and_rule_from_keeps_the_total() {
        // The start is a Tuesday, off the rule: RFC 5545 still counts it as the first of three.
        let mondays = series("FREQ=WEEKLY;BYDAY=MO;COUNT=3", "2026-05-05T09:00:00Z", chrono_tz::UTC);
        let dates: Vec<_> = mondays.occurrences().expect("occurrences").collect();
        assert_eq!(dates, ["2026-05-05T09:00:00Z", "2026-05-11T09:00:00Z", "2026-05-18T09:00:00Z"].map(at));
        let rest = mondays.rule_from(at("2026-05-11T09:00:00Z")).expect("count").expect("two left");
        assert_eq!(rest.as_str(), "FREQ=WEEKLY;BYDAY=MO;COUNT=2");
        assert_eq!(mondays.rule_from(at("2026-05-19T00:00:00Z")).expect("count"), None);
    }

    #[test]
    fn every_series_ends_at_the_latest_representable_instant() {
        let daily = series("FREQ=DAILY", "2099-12-30T12:00:00Z", chrono_tz::UTC);
        assert_eq!(
            daily.first_after(at("2099-12-30T12:00:00Z")).expect("next"),
            After::Occurrence(at("2099-12-31T12:00:00Z"))
        );
        assert_eq!(daily.first_after(at("2099-12-31T12:00:00Z")).expect("next"), After::BeyondLatest);
        let counted = series("FREQ=DAILY;COUNT=2", "2099-12-30T12:00:00Z", chrono_tz::UTC);
        assert_eq!(counted.first_after(at("2099-12-31T12:00:00Z")).expect("next"), After::Ended);
        let until = series("FREQ=DAILY;UNTIL=20991231T000000Z", "2099-12-30T12:00:00Z", chrono_tz::UTC);
        assert_eq!(until.first_after(at("2099-12-30T12:00:00Z")).expect("next"), After::Ended);
    }

    #[test]
    fn until_before_the_start_is_refused() {
        let early = series("FREQ=DAILY;UNTIL=20200101T000000Z", "2026-05-05T09:00:00Z", chrono_tz::UTC);
        assert!(early.check_until().is_err());
        assert!(series("FREQ=DAILY", "2026-05-05T09:00:00Z", chrono_tz::UTC).check_until().is_ok());
    }
}
