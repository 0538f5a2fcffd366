//! The alerts on the monitoring itself (`monitoring/prometheus/rules/monitoring.yml`) read what a real
//! Prometheus and a real Alertmanager emit when they fail: a "watched" Prometheus evaluates a rule that errors
//! and sends its alerts to an Alertmanager whose receivers refuse connections; a second Prometheus scrapes both,
//! as compose's Prometheus scrapes itself and Alertmanager, evaluates the shipped monitoring rules, and both
//! alerts go pending with the labels their runbooks name. (The collector's export alert is covered by promtool
//! only: no collector binary runs here.)
//!
//! Needs Debian's `prometheus` and `prometheus-alertmanager` packages.

use e2e::alerting::rules::rules_dir;
use e2e::alerting::{Alertmanager, TestConfig, Timings};
use e2e::monitoring::{Prometheus, PrometheusConfig};
use e2e::{DEADLINE, free_port};

/// A rule that fails at every evaluation: `up` has one series per scrape job, and `on ()` matches them all to
/// each other, which PromQL refuses as many-to-many.
const FAILING_RULES: &str = "\
groups:
  - name: always-failing
    rules:
      - record: demo:many_to_many:product
        expr: up * on () up
";

#[tokio::test]
async fn a_failing_rule_and_undeliverable_notifications_raise_the_monitoring_alerts() {
    // Receivers pointed at a port nothing listens on: every notification attempt is refused.
    let refused = free_port().expect("a free port");
    let config = TestConfig::from_repo(&format!("http://127.0.0.1:{refused}"), Timings::FAST).expect("test copy");
    let alertmanager = Alertmanager::start(&config).await.expect("alertmanager starts");

    let rules = tempfile::tempdir().expect("a directory for the failing rule");
    let failing = rules.path().join("failing.yml");
    std::fs::write(&failing, FAILING_RULES).expect("write the failing rule");
    // Watched: its Watchdog (alerts.yml) is notified through Alertmanager, and its failing rule errors.
    let watched_config = PrometheusConfig::from_repo()
        .and_then(|config| config.intervals("1s", "1s"))
        .and_then(|config| config.alertmanager(Some(&format!("127.0.0.1:{}", alertmanager.port()))))
        .and_then(|config| config.rule_files(&[rules_dir().join("alerts.yml"), failing.clone()]))
        .expect("watched Prometheus' configuration");
    let watched = Prometheus::start(&watched_config).await.expect("the watched Prometheus starts");

    // Watching: scrapes both with the shipped jobs and labels, and evaluates the monitoring rules.
    let watching_config = PrometheusConfig::from_repo()
        .and_then(|config| config.intervals("1s", "1s"))
        .and_then(|config| config.alertmanager(None))
        .and_then(|config| config.targets("prometheus", &[watched.address()]))
        .and_then(|config| config.targets("alertmanager", &[format!("127.0.0.1:{}", alertmanager.port())]))
        .and_then(|config| config.rule_files(&[rules_dir().join("monitoring.yml")]))
        .expect("watching Prometheus' configuration");
    let watching = Prometheus::start(&watching_config).await.expect("the watching Prometheus starts");

    let evaluation = watching
        .wait_for(
            r#"ALERTS{alertname="TaskwatchRuleEvaluationFailing", alertstate="pending", namespace="taskwatch", service="monitoring"}"#,
            DEADLINE * 2,
            |samples| samples.iter().any(|sample| sample.label("rule_group").is_some_and(|group| group.ends_with(";always-failing"))),
        )
        .await;
    assert!(
        evaluation.is_ok(),
        "the failing rule raised no TaskwatchRuleEvaluationFailing: {evaluation:?}\nwatched said:\n{}",
        watched.output()
    );
    let notifications = watching
        .wait_for(
            r#"ALERTS{alertname="TaskwatchAlertNotificationsFailing", alertstate="pending", namespace="taskwatch", integration="webhook"}"#,
            DEADLINE * 2,
            |samples| !samples.is_empty(),
        )
        .await;
    assert!(
        notifications.is_ok(),
        "refused notifications raised no TaskwatchAlertNotificationsFailing: {notifications:?}\nwatching said:\n{}",
        watching.output()
    );
    // Healthy groups of the watched Prometheus stay out of it: only the failing group is named.
    let groups =
        watching.query(r#"ALERTS{alertname="TaskwatchRuleEvaluationFailing"}"#).await.expect("query the alerts");
    let named: Vec<&str> = groups.iter().filter_map(|sample| sample.label("rule_group")).collect();
    assert!(named.iter().all(|group| group.ends_with(";always-failing")), "{named:?}");
}
