//! `monitoring/prometheus/rules/services.yml`: the new service's `TaskwatchServiceAbsent` rule, a copy of the
//! last existing service's with the job and service changed (the chart renders the same from its values; its
//! byte copy under `helm/taskwatch/files/rules/` gets the same edit). The promtool cases of that rule give every
//! service a target except the one they expect absent, so each case that lists targets gets the new service's.

use super::text::Lines;
use super::{EditError, Spec};

/// How a promtool case's scrape target of a Taskwatch service in the test namespace starts.
const TARGET_SERIES: &str = "      - series: 'up{namespace=\"taskwatch\", part_of=\"taskwatch\", job=\"";
/// How a promtool case starts.
const CASE_START: &str = "  - name: ";

/// The line every per-service rule starts with.
const RULE_START: &str = "      - alert: TaskwatchServiceAbsent\n";

pub fn add_absent_rule(text: &str, spec: &Spec) -> Result<String, EditError> {
    let name = spec.name.as_str();
    if text.contains(&format!("job=\"{name}\"")) {
        return Err(EditError::Exists(format!("an absent rule for `{name}`")));
    }
    let last = text.rfind(RULE_START).ok_or_else(|| EditError::Anchor("a TaskwatchServiceAbsent rule".into()))?;
    let rule = &text[last..];
    let existing = rule
        .split_once("job=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(job, _)| job)
        .ok_or_else(|| EditError::Anchor("the job of the last TaskwatchServiceAbsent rule".into()))?;
    let copy = rule
        .replace(&format!("job=\"{existing}\""), &format!("job=\"{name}\""))
        .replace(&format!("service: {existing}\n"), &format!("service: {name}\n"));
    let mut edited = text.to_owned();
    if !edited.ends_with('\n') {
        edited.push('\n');
    }
    edited.push_str(&copy);
    verify(&serde_norway::from_str(&edited)?, name)?;
    Ok(edited)
}

/// In `alerts_test.yml`: every case that gives Taskwatch services scrape targets, and none to the new service,
/// gives it a healthy one too, after the case's last target, so the cases' expectations (which service is absent,
/// which is down) hold with it in the rules. Applied twice, the second finds every case done: an error.
pub fn add_target_to_absent_tests(text: &str, spec: &Spec) -> Result<String, EditError> {
    let name = spec.name.as_str();
    let ours = format!("{TARGET_SERIES}{name}\"");
    let mut lines = Lines::new(text);
    let mut insertions = Vec::new();
    // Per case: after its last target, unless it has one of the new service's already (a case about it).
    let (mut last_target_in_case, mut case_has_ours) = (None, false);
    for index in 0..=lines.len() {
        let line = lines.get(index);
        if index == lines.len() || line.starts_with(CASE_START) {
            let at = last_target_in_case.take();
            insertions.extend(at.filter(|_| !case_has_ours));
            case_has_ours = false;
        } else if line.starts_with(&ours) {
            case_has_ours = true;
        } else if line.starts_with(TARGET_SERIES) {
            // The series line and its `values` line.
            last_target_in_case = Some(index + 2);
        }
    }
    if insertions.is_empty() {
        return Err(if text.contains(&ours) {
            EditError::Exists(format!("a promtool target for `{name}` in every case"))
        } else {
            EditError::Anchor("a promtool case with Taskwatch scrape targets".into())
        });
    }
    for &at in insertions.iter().rev() {
        lines.insert(
            at,
            [format!("{TARGET_SERIES}{name}\", instance=\"{name}\"}}'"), "        values: '1x40'".to_owned()],
        );
    }
    let edited = lines.into_text();
    let parsed: serde_norway::Value = serde_norway::from_str(&edited)?;
    let cases = parsed["tests"].as_sequence().map_or(0, Vec::len);
    if cases == 0 {
        return Err(EditError::Unverified("the promtool tests have no cases".into()));
    }
    Ok(edited)
}

/// Exactly one rule names the service, and it is labelled with it.
fn verify(rules: &serde_norway::Value, name: &str) -> Result<(), EditError> {
    let ours: Vec<&serde_norway::Value> = rules["groups"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|group| group["rules"].as_sequence().into_iter().flatten())
        .filter(|rule| rule["expr"].as_str().is_some_and(|expr| expr.contains(&format!("job=\"{name}\""))))
        .collect();
    match ours.as_slice() {
        [rule] if rule["labels"]["service"].as_str() == Some(name) => Ok(()),
        _ => {
            Err(EditError::Unverified(format!("{} rules name job `{name}`, expected one labelled with it", ours.len())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{repo_file, spec};
    use super::*;

    #[test]
    fn the_rule_follows_the_last_one_in_the_real_file() {
        let original = repo_file("monitoring/prometheus/rules/services.yml");
        let edited = add_absent_rule(&original, &spec()).unwrap();
        assert!(edited.starts_with(&original));
        let added = &edited[original.len()..];
        assert!(added.contains(r#"expr: absent(up{namespace="taskwatch", job="event-archive"})"#), "{added}");
        assert!(added.contains("service: event-archive\n"), "{added}");
        assert!(matches!(add_absent_rule(&edited, &spec()), Err(EditError::Exists(_))));
    }

    #[test]
    fn every_case_with_targets_gets_one_for_the_new_service() {
        let original = repo_file("monitoring/prometheus/tests/alerts_test.yml");
        let edited = add_target_to_absent_tests(&original, &spec()).unwrap();
        let cases_with_targets = original
            .split(CASE_START)
            .filter(|case| case.contains(TARGET_SERIES) && !case.contains(r#"job="event-archive""#))
            .count();
        let added = edited.matches(r#"job="event-archive", instance="event-archive"}'"#).count();
        assert!(cases_with_targets >= 2, "the absent rule's cases list targets");
        assert_eq!(added, cases_with_targets);
        assert_eq!(edited.lines().count(), original.lines().count() + 2 * cases_with_targets);
        assert!(matches!(add_target_to_absent_tests(&edited, &spec()), Err(EditError::Exists(_))));
    }
}
