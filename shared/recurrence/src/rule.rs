//! The RRULE text itself: subset validation, normalisation, and its parts (`COUNT`, `UNTIL`, the schedule without
//! them); [`crate::Series`] runs it through the `rrule` crate.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::error::RuleError;

/// Rule parts the subset allows; anything else (BYHOUR, BYSETPOS, WKST, …) is rejected rather than ignored.
const ALLOWED_PARTS: [&str; 6] = ["FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL"];
const ALLOWED_FREQUENCIES: [&str; 4] = ["DAILY", "WEEKLY", "MONTHLY", "YEARLY"];
const SUB_DAILY_FREQUENCIES: [&str; 3] = ["HOURLY", "MINUTELY", "SECONDLY"];
/// The parts that end a series; the occurrence math applies them itself (see [`Rule::schedule`]).
const END_PARTS: [&str; 2] = ["COUNT", "UNTIL"];
const UNTIL_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// An RRULE of the supported subset, without DTSTART, in normalised upper-case form (`FREQ=WEEKLY;BYDAY=MO`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    text: String,
}

impl Rule {
    /// Checks `text` against the subset, reporting every problem at once. Case and an `RRULE:` prefix are
    /// forgiven. Whether the rule can start at a given due time is [`crate::Series::new`]'s job.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        let rule = Self::from_trusted(text);
        check_subset(&rule.text)?;
        Ok(rule)
    }

    /// A rule read back from storage or from an event of our own, where it was validated on the way in. It is
    /// only normalised; a rule that was not valid after all fails when occurrences are computed.
    pub fn from_trusted(text: impl AsRef<str>) -> Self {
        let upper = text.as_ref().trim().to_ascii_uppercase();
        let text = upper.strip_prefix("RRULE:").map(str::to_owned).unwrap_or(upper);
        Self { text }
    }

    /// The normalised rule text, e.g. `FREQ=WEEKLY;BYDAY=MO`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The normalised rule text, owned (e.g. to store it).
    pub fn into_string(self) -> String {
        self.text
    }

    /// `COUNT`, if the rule has one: how many occurrences the series has, its start included.
    pub fn count(&self) -> Result<Option<u32>, RuleError> {
        self.part("COUNT").map(parse_count).transpose()
    }

    /// The inclusive `UNTIL`, if the rule has one.
    pub(crate) fn until(&self) -> Result<Option<DateTime<Utc>>, RuleError> {
        self.part("UNTIL").map(parse_until).transpose()
    }

    /// The same rule with `COUNT` replaced by `count`.
    pub(crate) fn with_count(&self, count: u32) -> Self {
        let mut parts: Vec<String> =
            self.text.split(';').filter(|part| part_name(part) != "COUNT").map(str::to_owned).collect();
        parts.push(format!("COUNT={count}"));
        Self { text: parts.join(";") }
    }

    /// The same rule without `COUNT`.
    pub(crate) fn without_count(&self) -> Self {
        let text = self.text.split(';').filter(|part| part_name(part) != "COUNT").collect::<Vec<_>>();
        Self { text: text.join(";") }
    }

    /// The rule without its end (`COUNT`, `UNTIL`): only the shape of the schedule. [`crate::Series`] applies the
    /// end itself, on resolved instants, and counts its start as RFC 5545 does even when the rule does not match it.
    pub(crate) fn schedule(&self) -> Self {
        let text = self.text.split(';').filter(|part| !END_PARTS.contains(&part_name(part))).collect::<Vec<_>>();
        Self { text: text.join(";") }
    }

    fn part(&self, name: &str) -> Option<&str> {
        self.text.split(';').find_map(|part| part.split_once('=').filter(|(key, _)| *key == name).map(|(_, v)| v))
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn part_name(part: &str) -> &str {
    part.split_once('=').map_or(part, |(name, _)| name)
}

/// Checks the parts the subset allows, reporting every problem with the rule text at once.
fn check_subset(rule: &str) -> Result<(), RuleError> {
    let mut problems = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut frequency = None;
    for part in rule.split(';') {
        let Some((name, value)) = part.split_once('=') else {
            problems.push(format!("`{part}` is not a NAME=VALUE rule part"));
            continue;
        };
        if !ALLOWED_PARTS.contains(&name) {
            problems.push(format!("rule part `{name}` is not supported (allowed: {})", ALLOWED_PARTS.join(", ")));
            continue;
        }
        if seen.contains(&name) {
            problems.push(format!("rule part `{name}` appears more than once"));
            continue;
        }
        seen.push(name);
        let checked = match name {
            "FREQ" => {
                frequency = Some(value);
                Ok(())
            }
            "UNTIL" => parse_until(value).map(drop),
            "COUNT" => parse_count(value).map(drop),
            _ => Ok(()),
        };
        if let Err(error) = checked {
            problems.extend(error.problems().iter().cloned());
        }
    }
    match frequency {
        None => problems.push("FREQ is required".to_owned()),
        Some(freq) if SUB_DAILY_FREQUENCIES.contains(&freq) => {
            problems.push(format!("FREQ={freq} is not supported: tasks recur at most daily"));
        }
        Some(freq) if !ALLOWED_FREQUENCIES.contains(&freq) => {
            problems.push(format!("FREQ={freq} is not supported (allowed: {})", ALLOWED_FREQUENCIES.join(", ")));
        }
        Some(_) => {}
    }
    if seen.contains(&"COUNT") && seen.contains(&"UNTIL") {
        problems.push("COUNT and UNTIL must not both be set".to_owned());
    }
    RuleError::from_problems(problems).map_or(Ok(()), Err)
}

/// `YYYYMMDDTHHMMSSZ`: RFC 5545 requires UNTIL in UTC when DTSTART has a time zone.
fn parse_until(value: &str) -> Result<DateTime<Utc>, RuleError> {
    NaiveDateTime::parse_from_str(value, UNTIL_FORMAT)
        .ok()
        .filter(|_| value.len() == 16)
        .map(|naive| naive.and_utc())
        .ok_or_else(|| {
            RuleError::single(
                "UNTIL must be a UTC date-time such as 20261231T235959Z (RFC 5545 requires UTC with a time zone)",
            )
        })
}

fn parse_count(value: &str) -> Result<u32, RuleError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|count| *count >= 1)
        .ok_or_else(|| RuleError::single(format!("COUNT must be a whole number of at least 1, not `{value}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_prefix() {
        assert_eq!(Rule::parse(" rrule:freq=weekly;byday=mo ").expect("valid").as_str(), "FREQ=WEEKLY;BYDAY=MO");
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
        ] {
            assert!(Rule::parse(rule).is_ok(), "{rule}: {:?}", Rule::parse(rule));
        }
    }

    #[test]
    fn rejects_what_the_subset_excludes() {
        for (rule, expected) in [
            ("FREQ=HOURLY", "at most daily"),
            ("FREQ=MINUTELY", "at most daily"),
            ("FREQ=SECONDLY", "at most daily"),
            ("FREQ=FORTNIGHTLY", "not supported"),
            ("INTERVAL=2", "FREQ is required"),
            ("FREQ=DAILY;COUNT=3;UNTIL=20301231T000000Z", "must not both"),
            ("FREQ=DAILY;BYHOUR=9", "`BYHOUR` is not supported"),
            ("FREQ=DAILY;FREQ=WEEKLY", "more than once"),
            ("FREQ=DAILY;UNTIL=20301231", "UTC date-time"),
            ("FREQ=DAILY;UNTIL=20301331T000000Z", "UTC date-time"),
            ("FREQ=DAILY;COUNT=0", "at least 1"),
            ("FREQ=DAILY;COUNT=-2", "at least 1"),
            ("garbage", "NAME=VALUE"),
            ("", "NAME=VALUE"),
        ] {
            let error = Rule::parse(rule).expect_err(rule);
            assert!(error.to_string().contains(expected), "{rule}: {error}");
        }
    }

    #[test]
    fn reports_every_subset_problem_at_once() {
        let error = Rule::parse("FREQ=HOURLY;BYHOUR=1;COUNT=2;UNTIL=20301231T000000Z").expect_err("invalid");
        assert_eq!(error.problems().len(), 3, "{error}");
    }

    #[test]
    fn end_parts_are_split_off_and_count_is_replaced() {
        let rule = Rule::parse("FREQ=WEEKLY;COUNT=5;BYDAY=MO").expect("valid");
        assert_eq!(rule.count().expect("count"), Some(5));
        assert_eq!(rule.schedule().as_str(), "FREQ=WEEKLY;BYDAY=MO");
        assert_eq!(rule.with_count(4).as_str(), "FREQ=WEEKLY;BYDAY=MO;COUNT=4");
        let until = Rule::parse("FREQ=DAILY;UNTIL=20261231T235959Z").expect("valid");
        assert_eq!(until.until().expect("until").map(|u| u.to_rfc3339()).as_deref(), Some("2026-12-31T23:59:59+00:00"));
        assert_eq!(until.count().expect("count"), None);
    }
}
