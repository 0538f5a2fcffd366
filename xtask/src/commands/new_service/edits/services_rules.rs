//! `monitoring/prometheus/rules/services.yml`: the new service's `TaskwatchServiceAbsent` rule, a copy of the
//! last existing service's with the job and service changed (the chart renders the same from its values).

use super::{EditError, Spec};

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
        assert!(added.contains(r#"expr: absent(up{namespace="taskwatch", job="audit-log"})"#), "{added}");
        assert!(added.contains("service: audit-log\n"), "{added}");
        assert!(matches!(add_absent_rule(&edited, &spec()), Err(EditError::Exists(_))));
    }
}
