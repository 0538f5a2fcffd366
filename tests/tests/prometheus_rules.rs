//! The Prometheus side of `monitoring/` as code: the shipped configuration and every rule file pass `promtool
//! check`, every promtool unit test passes, every alert carries what on-call needs (severity, service, summary,
//! description, a runbook that exists) and has a unit test where it fires and one where it stays quiet, and a
//! real Prometheus loads the shipped configuration and evaluates every rule without an error.
//!
//! Every file in `monitoring/prometheus/rules/` and `monitoring/prometheus/tests/` is picked up, whoever wrote it
//! (cause alerts, recording rules, generated SLO rules). Needs Debian's `prometheus` package (`promtool`,
//! `prometheus`); without it the tests fail saying so.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::DEADLINE;
use e2e::monitoring::{
    Prometheus, PrometheusConfig, prometheus_config_path, promtool, read_yaml, rule_files, rule_test_files,
    runbooks_dir,
};
use serde_norway::Value;

const RUNBOOK_URL_PREFIX: &str = "https://github.com/taskwatch/taskwatch/blob/main/monitoring/runbooks/";
const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];
/// Fires all the time by design: it has no quiet case, and its severity `none` routes it to the dead-man's switch.
const WATCHDOG: &str = "Watchdog";
const REQUIRED_ANNOTATIONS: [&str; 3] = ["summary", "description", "runbook_url"];

fn display(path: &Path) -> String {
    path.strip_prefix(e2e::repo_root()).unwrap_or(path).display().to_string()
}

/// One `alert:` rule as written.
struct AlertRule {
    name: String,
    file: PathBuf,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.as_str()?.to_owned(), value.as_str()?.to_owned())))
        .collect()
}

fn alert_rules() -> Vec<AlertRule> {
    let mut alerts = Vec::new();
    for file in rule_files().expect("rule files listed") {
        let document = read_yaml(&file).expect("rule file parses");
        for group in document["groups"].as_sequence().into_iter().flatten() {
            for rule in group["rules"].as_sequence().into_iter().flatten() {
                if let Some(name) = rule["alert"].as_str() {
                    alerts.push(AlertRule {
                        name: name.to_owned(),
                        file: file.clone(),
                        labels: string_map(&rule["labels"]),
                        annotations: string_map(&rule["annotations"]),
                    });
                }
            }
        }
    }
    alerts
}

#[test]
fn promtool_accepts_the_configuration_and_every_rule_file() {
    // `check config` also loads the rule files the configuration names (rules/*.yml).
    let config =
        promtool(["check".as_ref(), "config".as_ref(), prometheus_config_path().as_os_str()]).expect("promtool runs");
    assert!(config.success, "promtool check config failed:\n{}", config.combined());

    let files = rule_files().expect("rule files listed");
    assert!(files.iter().any(|file| file.ends_with("alerts.yml")), "no alerts.yml among {files:?}");
    assert!(files.iter().any(|file| file.ends_with("recording.yml")), "no recording.yml among {files:?}");
    let mut args = vec!["check".into(), "rules".into()];
    args.extend(files.iter().map(|file| file.as_os_str().to_owned()));
    let rules = promtool(args).expect("promtool runs");
    assert!(rules.success, "promtool check rules failed:\n{}", rules.combined());
    assert!(!rules.combined().contains("WARNING"), "promtool check rules warns:\n{}", rules.combined());
}

#[test]
fn every_promtool_unit_test_passes() {
    let files = rule_test_files().expect("test files listed");
    assert!(files.iter().any(|file| file.ends_with("alerts_test.yml")), "no alerts_test.yml among {files:?}");
    let failures: Vec<String> = files
        .iter()
        .filter_map(|file| {
            // One run per file, so a failure names it; promtool resolves `rule_files` relative to the test file.
            let output = promtool(["test".as_ref(), "rules".as_ref(), file.as_os_str()]).expect("promtool runs");
            (!output.success).then(|| format!("--- {}\n{}", display(file), output.combined()))
        })
        .collect();
    assert!(failures.is_empty(), "promtool test rules failed:\n{}", failures.join("\n"));
}

#[test]
fn every_alert_carries_severity_service_summary_description_and_an_existing_runbook() {
    let alerts = alert_rules();
    assert!(alerts.iter().any(|alert| alert.name == "TaskwatchServiceDown"), "TaskwatchServiceDown is missing");
    assert!(alerts.iter().any(|alert| alert.name == WATCHDOG), "the Watchdog is missing");
    // A set: an alert written once per service (TaskwatchServiceAbsent) reports a problem once.
    let mut problems = BTreeSet::new();
    for alert in &alerts {
        let mut problem = |what: String| {
            problems.insert(format!("{} ({}): {what}", alert.name, display(&alert.file)));
        };
        match alert.labels.get("severity").map(String::as_str) {
            Some("none") if alert.name == WATCHDOG => {}
            Some(severity) if SEVERITIES.contains(&severity) => {}
            other => problem(format!("severity {other:?} is not one of {SEVERITIES:?}")),
        }
        if alert.labels.get("service").is_none_or(|service| service.trim().is_empty()) {
            problem("no `service` label".into());
        }
        for annotation in REQUIRED_ANNOTATIONS {
            if alert.annotations.get(annotation).is_none_or(|text| text.trim().is_empty()) {
                problem(format!("no `{annotation}` annotation"));
            }
        }
        if !alert.name.starts_with("Taskwatch") && alert.name != WATCHDOG && !alert.name.ends_with("ErrorBudgetBurn") {
            problem("cause alerts are named Taskwatch…".into());
        }
        let Some(url) = alert.annotations.get("runbook_url") else { continue };
        match url.strip_prefix(RUNBOOK_URL_PREFIX) {
            None => problem(format!("runbook_url {url} does not start with {RUNBOOK_URL_PREFIX}")),
            Some(file) => {
                let path = runbooks_dir().join(file.split('#').next().unwrap_or(file));
                if !path.is_file() {
                    problem(format!("runbook {} does not exist", display(&path)));
                }
            }
        }
    }
    let problems: Vec<String> = problems.into_iter().collect();
    assert!(problems.is_empty(), "alerts missing what on-call needs:\n{}", problems.join("\n"));
}

#[test]
fn every_alert_has_a_unit_test_where_it_fires_and_one_where_it_stays_quiet() {
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for file in rule_test_files().expect("test files listed") {
        let document = read_yaml(&file).expect("test file parses");
        for test in document["tests"].as_sequence().into_iter().flatten() {
            for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
                let Some(name) = case["alertname"].as_str() else { continue };
                let expected = case["exp_alerts"].as_sequence().map_or(0, Vec::len);
                if expected == 0 { &mut quiet } else { &mut fires }.insert(name.to_owned());
            }
        }
    }
    let names: BTreeSet<String> = alert_rules().into_iter().map(|alert| alert.name).collect();
    let never_fires: Vec<&String> = names.iter().filter(|name| !fires.contains(*name)).collect();
    let never_quiet: Vec<&String> = names.iter().filter(|name| *name != WATCHDOG && !quiet.contains(*name)).collect();
    assert!(never_fires.is_empty(), "alerts without a promtool case where they fire: {never_fires:?}");
    assert!(never_quiet.is_empty(), "alerts without a promtool case where they stay quiet: {never_quiet:?}");
    let unknown: Vec<&String> = fires.union(&quiet).filter(|name| !names.contains(*name)).collect();
    assert!(unknown.is_empty(), "unit tests for alerts that no rule file defines: {unknown:?}");
}

/// The shipped configuration in a real server (nothing to scrape: the targets are down, which is fine): every
/// rule group loads and evaluates with health `ok`, and the Watchdog fires.
#[tokio::test]
async fn a_real_prometheus_loads_the_shipped_configuration_and_evaluates_every_rule() {
    let config = PrometheusConfig::from_repo()
        .and_then(|config| config.intervals("1s", "1s"))
        .and_then(|config| config.alertmanager(None))
        .expect("test copy of prometheus.yml");
    let prometheus = Prometheus::start(&config).await.expect("prometheus starts");

    let expected_files = rule_files().expect("rule files listed").len();
    // The SLOs' long-window groups keep their own `interval: 1m` whatever the global one: their first
    // evaluation comes up to a minute after the start, at an offset Prometheus derives from the group's hash.
    let first_long_window_evaluation = Duration::from_secs(60);
    let healthy = testkit::wait::until_some(DEADLINE + first_long_window_evaluation, || async {
        let groups = prometheus.rule_groups().await.ok()?;
        let files: BTreeSet<&str> = groups.iter().filter_map(|group| group["file"].as_str()).collect();
        let rules: Vec<&serde_json::Value> =
            groups.iter().flat_map(|group| group["rules"].as_array().into_iter().flatten()).collect();
        let evaluated = rules.iter().all(|rule| rule["health"] == "ok");
        (files.len() == expected_files && !rules.is_empty() && evaluated).then_some(rules.len())
    })
    .await;
    let groups = prometheus.rule_groups().await.unwrap_or_default();
    let unhealthy: Vec<String> = groups
        .iter()
        .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
        .filter(|rule| rule["health"] != "ok")
        .map(|rule| format!("{} {}: {}", rule["name"], rule["health"], rule["lastError"]))
        .collect();
    assert!(
        healthy.is_ok(),
        "not every rule of {expected_files} files loaded and evaluated cleanly: {unhealthy:#?}\nprometheus said:\n{}",
        prometheus.output()
    );

    let watchdog = prometheus
        .wait_for("ALERTS{alertname=\"Watchdog\", alertstate=\"firing\"}", DEADLINE, |samples| samples.len() == 1)
        .await;
    assert!(watchdog.is_ok(), "the Watchdog is not firing: {watchdog:?}");
    // The shipped scrape jobs are all there, named after the services.
    let up = prometheus.wait_for("count by (job) (up)", Duration::from_secs(30), |samples| samples.len() >= 6).await;
    let jobs: BTreeSet<String> = up
        .expect("every job scraped once")
        .iter()
        .filter_map(|sample| sample.label("job").map(str::to_owned))
        .collect();
    for job in ["backend", "reminder", "recurring-task", "notification", "prometheus", "alertmanager"] {
        assert!(jobs.contains(job), "no scrape job {job}: {jobs:?}");
    }
}

/// Every runbook tells the on-call how to silence its alert for planned work (or why never to).
#[test]
fn every_runbook_says_how_to_silence_its_alert() {
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(runbooks_dir()).expect("runbooks readable") {
        let path = entry.expect("a runbook entry").path();
        let text = std::fs::read_to_string(&path).expect("runbook readable");
        if !text.contains("\n## Silence it\n") {
            missing.push(path.display().to_string());
        }
    }
    assert!(missing.is_empty(), "runbooks without a `## Silence it` section: {missing:?}");
}

/// One Prometheus may watch several releases: every aggregation and every vector match in every shipped rule
/// keeps `namespace`, so two releases' series never merge (the promtool cases with two namespaces show it for
/// the alerts that page; this holds it for every rule, including ones added later).
#[test]
fn every_aggregation_and_match_keeps_the_namespace() {
    let mut merging = Vec::new();
    for file in rule_files().expect("rule files listed") {
        let document = read_yaml(&file).expect("rule file parses");
        for rule in document["groups"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_sequence().into_iter().flatten())
        {
            let expr = rule["expr"].as_str().unwrap_or_default();
            let name = rule["record"].as_str().or(rule["alert"].as_str()).unwrap_or("?");
            // `by (…)` and `on (…)` label lists; `ignoring`/`without` would drop labels, and no rule uses them.
            for keyword in ["by (", "by(", "on (", "on("] {
                for (at, _) in expr.match_indices(keyword) {
                    // A modifier, not the tail of a longer name (`ratio_rate_by(`).
                    let word_start = expr[..at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                    if !word_start {
                        continue;
                    }
                    let list = expr[at + keyword.len()..].split(')').next().unwrap_or_default();
                    if !list.split(',').any(|label| label.trim() == "namespace") {
                        merging.push(format!("{}: {name}: `{keyword}{list})`", display(&file)));
                    }
                }
            }
            for keyword in ["sum(", "max(", "min(", "count(", "avg("] {
                if expr.contains(keyword) {
                    merging
                        .push(format!("{}: {name}: `{keyword}…)` aggregates every namespace into one", display(&file)));
                }
            }
        }
    }
    assert!(merging.is_empty(), "rules that merge namespaces:\n{}", merging.join("\n"));
}
