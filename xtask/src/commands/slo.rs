//! `cargo xtask slo`: generates the SLO rules (`monitoring/prometheus/rules/slos.yml`) from the SLO spec
//! (`monitoring/prometheus/slos.yaml`); `--check` only compares, and fails when the committed rules are stale.
//!
//! The spec is the one place an SLO is written; [`spec`] validates it, [`rules`] renders the recording rules
//! and burn-rate alerts deterministically (same spec, same bytes).

mod rules;
mod spec;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cargo;

/// The spec, relative to the workspace root.
const SPEC: &str = "monitoring/prometheus/slos.yaml";
/// The generated rules, relative to the workspace root.
const RULES: &str = "monitoring/prometheus/rules/slos.yml";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do not write: fail when the committed rules differ from what the spec generates.
    #[arg(long)]
    check: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let root = cargo::workspace_root();
    let generated = generate(root)?;
    let rules_path = root.join(RULES);
    if args.check {
        let committed = match std::fs::read_to_string(&rules_path) {
            Ok(text) => text,
            // Never generated: every line differs.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => return Err(error).with_context(|| format!("reading {}", rules_path.display())),
        };
        return Ok(match first_difference(&committed, &generated) {
            None => {
                eprintln!("{RULES} is up to date with {SPEC}");
                ExitCode::SUCCESS
            }
            Some(line) => {
                eprintln!("{RULES} is stale (first difference at line {line}): run `cargo xtask slo` and commit it");
                ExitCode::FAILURE
            }
        });
    }
    std::fs::write(&rules_path, &generated).with_context(|| format!("writing {}", rules_path.display()))?;
    eprintln!("wrote {RULES} from {SPEC}");
    Ok(ExitCode::SUCCESS)
}

/// The rule file the spec under `root` generates.
fn generate(root: &Path) -> anyhow::Result<String> {
    let spec_path: PathBuf = root.join(SPEC);
    let text = std::fs::read_to_string(&spec_path).with_context(|| format!("reading {}", spec_path.display()))?;
    let slos = spec::parse(&text).with_context(|| format!("in {}", spec_path.display()))?;
    Ok(rules::render(&slos))
}

/// The 1-based line where `committed` and `generated` first differ, if they do.
fn first_difference(committed: &str, generated: &str) -> Option<usize> {
    if committed == generated {
        return None;
    }
    let mut committed_lines = committed.split('\n');
    let mut generated_lines = generated.split('\n');
    let mut number = 1;
    loop {
        match (committed_lines.next(), generated_lines.next()) {
            (Some(a), Some(b)) if a == b => number += 1,
            _ => return Some(number),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_norway::Value;

    use super::*;

    fn repository_rules() -> (Vec<spec::Slo>, Value) {
        let root = cargo::workspace_root();
        let text = std::fs::read_to_string(root.join(SPEC)).unwrap();
        let slos = spec::parse(&text).unwrap();
        let rendered = rules::render(&slos);
        assert_eq!(rendered, rules::render(&slos), "rendering is deterministic");
        (slos, serde_norway::from_str(&rendered).unwrap())
    }

    fn rules_of(file: &Value) -> Vec<&Value> {
        file["groups"].as_sequence().unwrap().iter().flat_map(|group| group["rules"].as_sequence().unwrap()).collect()
    }

    #[test]
    fn every_slo_has_its_ratios_budget_series_and_four_alerts() {
        let (slos, file) = repository_rules();
        assert_eq!(file["groups"].as_sequence().unwrap().len(), slos.len());
        let rules = rules_of(&file);
        for slo in &slos {
            let recorded: Vec<&str> = rules
                .iter()
                .filter(|rule| rule["labels"]["slo"].as_str() == Some(slo.name.as_str()))
                .filter_map(|rule| rule["record"].as_str())
                .collect();
            let mut expected: Vec<String> =
                rules::WINDOWS.iter().map(|window| format!("slo:sli_error:ratio_rate{window}")).collect();
            expected.extend(
                [
                    "slo:objective:ratio",
                    "slo:error_budget:ratio",
                    "slo:current_burn_rate:ratio",
                    "slo:period_burn_rate:ratio",
                    "slo:period_error_budget_remaining:ratio",
                ]
                .map(str::to_owned),
            );
            assert_eq!(recorded, expected, "{}", slo.name);
            let alerts = rules.iter().filter(|rule| rule["alert"].as_str() == Some(slo.alert_name().as_str())).count();
            assert_eq!(alerts, rules::BURN_ALERTS.len(), "{}", slo.name);
        }
    }

    #[test]
    fn recorded_series_carry_only_slo_and_service_so_the_windows_join() {
        let (_, file) = repository_rules();
        for rule in rules_of(&file).into_iter().filter(|rule| rule.get("record").is_some()) {
            let keys: Vec<&str> = rule["labels"].as_mapping().unwrap().keys().filter_map(Value::as_str).collect();
            assert_eq!(keys, ["slo", "service"], "{:?}", rule["record"]);
        }
    }

    #[test]
    fn alerts_carry_the_required_labels_annotations_and_an_existing_runbook() {
        let (_, file) = repository_rules();
        let root = cargo::workspace_root();
        for rule in rules_of(&file).into_iter().filter(|rule| rule.get("alert").is_some()) {
            for label in ["severity", "slo", "service", "long_window", "short_window", "exhaustion"] {
                assert!(rule["labels"][label].as_str().is_some_and(|v| !v.is_empty()), "{label} in {rule:?}");
            }
            assert!(matches!(rule["labels"]["severity"].as_str(), Some("critical" | "warning")));
            for annotation in ["summary", "description", "runbook_url"] {
                assert!(rule["annotations"][annotation].as_str().is_some_and(|v| !v.is_empty()), "{annotation}");
            }
            let url = rule["annotations"]["runbook_url"].as_str().unwrap();
            let file = url.strip_prefix(rules::RUNBOOK_BASE_URL).unwrap().trim_start_matches('/');
            let alert = rule["alert"].as_str().unwrap();
            assert_eq!(file, format!("{alert}.md"));
            assert!(root.join("monitoring/runbooks").join(file).is_file(), "runbook for {alert} missing");
        }
    }

    #[test]
    fn differences_are_located_by_line() {
        assert_eq!(first_difference("a\nb\n", "a\nb\n"), None);
        assert_eq!(first_difference("a\nb\n", "a\nc\n"), Some(2));
        assert_eq!(first_difference("a\n", "a\nb\n"), Some(2));
        assert_eq!(first_difference("", "a"), Some(1));
    }
}
