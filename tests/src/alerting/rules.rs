//! The alerting rules the repo ships (`monitoring/prometheus/rules/*.yml`), read for what Alertmanager
//! sees of them: each alert's name and its static labels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_norway::Value;

use super::{AlertingError, repo_root};

/// `monitoring/prometheus/rules/`.
pub fn rules_dir() -> PathBuf {
    repo_root().join("monitoring/prometheus/rules")
}

/// One `alert:` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRule {
    /// The `alert:` name, which Alertmanager receives as the `alertname` label.
    pub name: String,
    /// Its `labels:` as written; values may be templates (`{{ $labels.job }}`).
    pub labels: BTreeMap<String, String>,
    /// The rule file it was read from, for messages.
    pub file: PathBuf,
}

impl AlertRule {
    /// Its `severity` label as written, which routing depends on; `None` when the rule sets none.
    pub fn severity(&self) -> Option<&str> {
        self.labels.get("severity").map(String::as_str)
    }

    /// The label values Alertmanager would receive for an instance about `service`: a templated `service`
    /// (`{{ $labels.job }}`) becomes `service`, other templated values are left out.
    pub fn labels_for(&self, service: &str) -> BTreeMap<String, String> {
        let mut labels: BTreeMap<String, String> = self
            .labels
            .iter()
            .filter(|(_, value)| !value.contains("{{"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if self.labels.get("service").is_some_and(|value| value.contains("{{")) {
            labels.insert("service".to_owned(), service.to_owned());
        }
        labels.insert("alertname".to_owned(), self.name.clone());
        labels
    }
}

/// Every alert rule in every `*.yml` file of [`rules_dir`], in file and rule order.
pub fn alert_rules() -> Result<Vec<AlertRule>, AlertingError> {
    let mut rules = Vec::new();
    for file in rule_files()? {
        rules.extend(alert_rules_in(&file)?);
    }
    Ok(rules)
}

fn alert_rules_in(file: &Path) -> Result<Vec<AlertRule>, AlertingError> {
    let text = std::fs::read_to_string(file).map_err(AlertingError::io(format!("reading {}", file.display())))?;
    let document: Value =
        serde_norway::from_str(&text).map_err(|source| AlertingError::Yaml { path: file.to_owned(), source })?;
    let rules = document
        .get("groups")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|group| group.get("rules").and_then(Value::as_sequence))
        .flatten()
        .filter_map(|rule| {
            let name = rule.get("alert")?.as_str()?.to_owned();
            let labels = rule
                .get("labels")
                .and_then(Value::as_mapping)
                .into_iter()
                .flatten()
                .filter_map(|(key, value)| Some((key.as_str()?.to_owned(), scalar(value)?)))
                .collect();
            Some(AlertRule { name, labels, file: file.to_owned() })
        })
        .collect();
    Ok(rules)
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Copies of every rule file in [`rules_dir`] into `dir`, identical but for each `for:` duration, which
/// becomes `for_duration`: the live tests' override, so an alert fires seconds rather than minutes after
/// its condition starts to hold. Expressions, labels, annotations and recording rules are untouched: each
/// copy is the original text with only `for:` lines replaced (checked line by line here), and a file with
/// no `for:` is copied as is.
pub fn with_for_durations(dir: &Path, for_duration: &str) -> Result<Vec<PathBuf>, AlertingError> {
    let mut copies = Vec::new();
    for rule in rule_files()? {
        let text = std::fs::read_to_string(&rule).map_err(AlertingError::io(format!("reading {}", rule.display())))?;
        let rewritten: Vec<String> = text.lines().map(|line| replace_for(line, for_duration)).collect();
        for (original, copy) in text.lines().zip(&rewritten) {
            if original != copy && !is_for_line(original) {
                return Err(AlertingError::Shape(format!("the `for:` override changed {original:?}")));
            }
        }
        let name = rule.file_name().ok_or_else(|| AlertingError::Shape(format!("{} has no name", rule.display())))?;
        let copy = dir.join(name);
        std::fs::write(&copy, rewritten.join("\n") + "\n")
            .map_err(AlertingError::io(format!("writing {}", copy.display())))?;
        copies.push(copy);
    }
    Ok(copies)
}

fn rule_files() -> Result<Vec<PathBuf>, AlertingError> {
    let dir = rules_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(AlertingError::io(format!("listing {}", dir.display())))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml" || ext == "yaml"))
        .collect();
    files.sort();
    Ok(files)
}

/// `for: <duration>` (a rule's key; nothing else in a rule file starts that way), optionally quoted or
/// followed by a comment.
fn is_for_line(line: &str) -> bool {
    line.trim_start().strip_prefix("for:").is_some_and(|value| {
        let value = value.split('#').next().unwrap_or_default().trim().trim_matches(['"', '\'']);
        !value.is_empty() && value.chars().all(|c| c.is_ascii_digit() || "smhdwy".contains(c))
    })
}

fn replace_for(line: &str, for_duration: &str) -> String {
    if !is_for_line(line) {
        return line.to_owned();
    }
    let indent = &line[..line.len() - line.trim_start().len()];
    format!("{indent}for: {for_duration}")
}
