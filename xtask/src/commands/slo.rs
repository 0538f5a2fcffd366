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
    fn every_slo_has_its_rates_ratios_budget_series_and_four_alerts() {
        let (slos, file) = repository_rules();
        let groups: Vec<&str> =
            file["groups"].as_sequence().unwrap().iter().filter_map(|group| group["name"].as_str()).collect();
        let expected_groups: Vec<String> = slos
            .iter()
            .flat_map(|slo| [format!("taskwatch-slo-{}", slo.name), format!("taskwatch-slo-{}-long", slo.name)])
            .collect();
        assert_eq!(groups, expected_groups);
        let rules = rules_of(&file);
        for slo in &slos {
            let recorded: Vec<String> = rules
                .iter()
                .filter(|rule| rule["labels"]["slo"].as_str() == Some(slo.name.as_str()))
                .filter_map(|rule| rule["record"].as_str().map(str::to_owned))
                .collect();
            let windows = |windows: &[&str]| -> Vec<String> {
                windows
                    .iter()
                    .flat_map(|window| {
                        [
                            rules::series("sli_events", "rate", window),
                            rules::series("sli_bad_events", "rate", window),
                            rules::series("sli_error", "ratio_rate", window),
                        ]
                    })
                    .collect()
            };
            let mut expected = windows(&rules::SHORT_WINDOWS);
            expected.extend(["objective:ratio", "error_budget:ratio", "current_burn_rate:ratio"].map(prefixed));
            expected.push(rules::series("sli_events", "increase", "1m"));
            for window in rules::LONG_WINDOWS {
                expected.push(rules::series("sli_events", "increase", window));
                expected.extend(windows(&[window]));
            }
            expected.extend(["period_burn_rate:ratio", "period_error_budget_remaining:ratio"].map(prefixed));
            assert_eq!(recorded, expected, "{}", slo.name);
            let alerts = rules.iter().filter(|rule| rule["alert"].as_str() == Some(slo.alert_name().as_str())).count();
            assert_eq!(alerts, rules::BURN_ALERTS.len(), "{}", slo.name);
        }
    }

    fn prefixed(name: &str) -> String {
        format!("{}:{name}", rules::PREFIX)
    }

    #[test]
    fn recorded_series_are_ours_and_carry_only_slo_and_service_so_the_windows_join() {
        let (_, file) = repository_rules();
        for rule in rules_of(&file).into_iter().filter(|rule| rule.get("record").is_some()) {
            let name = rule["record"].as_str().unwrap();
            assert!(name.starts_with("taskwatch_slo:"), "{name}: `slo:*` are Sloth's names");
            let keys: Vec<&str> = rule["labels"].as_mapping().unwrap().keys().filter_map(Value::as_str).collect();
            assert_eq!(keys, ["slo", "service"], "{name}");
        }
    }

    #[test]
    fn every_rate_over_counters_and_every_alert_keeps_the_namespace() {
        let (_, file) = repository_rules();
        for rule in rules_of(&file) {
            let expr = rule["expr"].as_str().unwrap();
            let rates = expr.matches("rate(").count();
            assert_eq!(
                expr.matches("sum by (namespace) (rate(").count(),
                rates,
                "every rate is summed by namespace in {expr}"
            );
            assert!(!expr.contains("sum(") && !expr.contains("vector(0)"), "{expr} would merge namespaces");
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

    /// The day-long windows never read raw series: only the short windows `rate` over counters, and the long ones
    /// average the recorded 5m rates (a 30-day `rate` over raw series every evaluation is what they replace).
    #[test]
    fn only_short_windows_read_raw_counters() {
        let (_, file) = repository_rules();
        for rule in rules_of(&file) {
            let expr = rule["expr"].as_str().unwrap();
            for (_, rest) in expr.match_indices("rate(").map(|(at, _)| expr.split_at(at)) {
                if rest.starts_with("rate(taskwatch_slo:") {
                    continue;
                }
                let window = rest.split_once('[').and_then(|(_, w)| w.split_once(']')).map(|(w, _)| w).unwrap();
                assert!(rules::SHORT_WINDOWS.contains(&window), "a raw rate over {window}: {expr}");
            }
            for long in rules::LONG_WINDOWS {
                if expr.contains(&format!("[{long}]")) {
                    assert!(expr.contains("_over_time(taskwatch_slo:"), "{long} over raw series: {expr}");
                }
            }
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
