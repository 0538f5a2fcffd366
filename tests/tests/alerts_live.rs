//! Alerts proven live (issue 4 §6): the native stack, a real Prometheus scraping it and evaluating the repo's
//! own rule files, and a real Alertmanager with the repo's routes and inhibitions, delivering to an in-test
//! webhook receiver.
//!
//! The test override changes timings only, never what is measured or decided:
//! - rule files: each `for:` becomes [`FOR`] (`alerting::rules::with_for_durations`, which checks that no
//!   other line changed); expressions, thresholds and windows are the shipped ones;
//! - Prometheus: scrape and evaluation every second, the services' test ports as targets, the test's
//!   Alertmanager (`monitoring::PrometheusConfig`);
//! - Alertmanager: receivers pointed at the webhook receiver (`/{receiver}`), group_wait/group_interval 1 s
//!   (`alerting::TestConfig`).
//!
//! Bounded times. Down alert: a failed scrape (≤ 1 s) makes `up == 0`, the next evaluation (≤ 1 s) makes
//! the alert pending, it fires [`FOR`] later, Prometheus sends it at once, Alertmanager notifies after its
//! group_wait (1 s): about 8 s, so [`DEADLINE`] (60 s) leaves a wide margin for two loaded cores. Resolution is
//! the same chain after the restart. Burn-rate page: see that test.

use std::time::Duration;

use e2e::alerting::rules::with_for_durations;
use e2e::alerting::{Alertmanager, Notification, TestConfig, Timings};
use e2e::monitoring::{Prometheus, PrometheusConfig};
use e2e::{DEADLINE, INTERNAL_SERVICE_TOKEN, PIPELINE_DEADLINE, Service, Stack};
use serde_json::json;
use testkit::webhook::WebhookReceiver;

/// Every rule's `for:` in the test copy: long enough that an alert is seen pending over several
/// evaluations first, short enough for a test.
const FOR: &str = "5s";
const INTERVAL: &str = "1s";

/// Prometheus and Alertmanager watching `stack`, with the webhook receiver standing in for every receiver.
struct Monitoring {
    // Prometheus first: it stops sending before Alertmanager goes away.
    prometheus: Prometheus,
    alertmanager: Alertmanager,
    sink: WebhookReceiver,
    _rules: tempfile::TempDir,
}

impl Monitoring {
    async fn start(stack: &Stack) -> Self {
        let sink = WebhookReceiver::start().await.expect("webhook receiver");
        let config = TestConfig::from_repo(&format!("http://{}", sink.address()), Timings::FAST).expect("test copy");
        let alertmanager = Alertmanager::start(&config).await.expect("alertmanager starts");

        let rules = tempfile::tempdir().expect("temporary directory");
        let rule_files = with_for_durations(rules.path(), FOR).expect("rule copies");
        let alertmanager_address = format!("127.0.0.1:{}", alertmanager.port());
        // Prometheus' own port is chosen when it starts, so it is not scraped; nothing here alerts on it.
        let mut jobs = stack.scrape_jobs(Service::ALL);
        jobs.push(("alertmanager", vec![alertmanager_address.clone()]));
        let config = PrometheusConfig::from_repo()
            .and_then(|config| config.intervals(INTERVAL, INTERVAL))
            .and_then(|config| config.rule_files(&rule_files))
            .and_then(|config| config.alertmanager(Some(&alertmanager_address)))
            .and_then(|config| config.only_jobs(&jobs))
            .expect("prometheus test config");
        let prometheus = Prometheus::start(&config).await.expect("prometheus starts");
        for &service in Service::ALL {
            prometheus.wait_until_scraped(service.name(), DEADLINE).await.expect("service scraped");
        }
        Self { prometheus, alertmanager, sink, _rules: rules }
    }

    /// Waits for a notification to `receiver` carrying an alert in `status` with `labels`.
    async fn wait_for(&self, receiver: &str, status: &str, labels: &[(&str, &str)], timeout: Duration) -> Notification {
        let found = self
            .sink
            .wait_for(
                |request| Notification::parse(request).is_some_and(|n| n.reports(receiver, status, labels)),
                timeout,
            )
            .await;
        let Some(request) = found else {
            panic!(
                "no {status} notification of {labels:?} reached {receiver} within {timeout:?}.\n\
                 Prometheus alerts: {:#?}\nAlertmanager said:\n{}\nPrometheus said:\n{}",
                self.prometheus.alerts().await.unwrap_or_default(),
                self.alertmanager.output(),
                self.prometheus.output()
            )
        };
        Notification::parse(&request).expect("parsed above")
    }

    fn notifications(&self) -> Vec<Notification> {
        self.sink.requests().iter().filter_map(Notification::parse).collect()
    }
}

#[tokio::test]
async fn a_stopped_service_pages_through_prometheus_and_alertmanager_and_resolves_after_restart() {
    let mut stack = Stack::start().await.expect("stack starts");
    let monitoring = Monitoring::start(&stack).await;

    // Before anything breaks the rules evaluate, the always-firing Watchdog reaches the dead man's switch (and
    // only that receiver), and no service is down.
    monitoring
        .prometheus
        .wait_for(r#"ALERTS{alertname="Watchdog", alertstate="firing"}"#, DEADLINE, |samples| samples.len() == 1)
        .await
        .expect("the rules are evaluated");
    let watchdog = [("alertname", "Watchdog")];
    monitoring.wait_for("deadmans-switch", "firing", &watchdog, DEADLINE).await;
    assert!(
        !monitoring.notifications().iter().any(|n| n.receiver != "deadmans-switch" && n.mentions(&watchdog)),
        "the Watchdog reached a receiver other than the dead man's switch"
    );
    let down_alerts = monitoring.prometheus.query(r#"ALERTS{alertname="TaskwatchServiceDown"}"#).await;
    assert_eq!(down_alerts.expect("query").len(), 0, "a down alert while every service runs");
    let down = |service: &'static str| [("alertname", "TaskwatchServiceDown"), ("service", service)];

    stack.stop_service(Service::Reminder).await.expect("reminder stops");
    let page = monitoring.wait_for("pager", "firing", &down("reminder"), DEADLINE).await;
    let alert = page.alerts.iter().find(|alert| alert.has_labels(&down("reminder"))).expect("the alert");
    assert_eq!(alert.labels.get("severity").map(String::as_str), Some("critical"));
    assert!(
        alert.annotations.get("runbook_url").is_some_and(|url| url.ends_with("/TaskwatchServiceDown.md")),
        "{alert:?}"
    );
    // The webhook feed has it too, and no other service is reported down.
    monitoring.wait_for("webhook", "firing", &down("reminder"), DEADLINE).await;
    for service in ["backend", "recurring-task", "notification"] {
        assert!(
            !monitoring.notifications().iter().any(|n| n.mentions(&down(service))),
            "{service} reported down while only the reminder was stopped"
        );
    }

    stack.start_service(Service::Reminder).await.expect("reminder restarts");
    monitoring.wait_for("pager", "resolved", &down("reminder"), DEADLINE).await;
}

/// A 50 % error ratio against a 99.9 % objective is a 500× burn. The page's windows are the shipped 1 h and
/// 5 m: on a fresh Prometheus both hold only the seconds since the fault began, so both ratios are about
/// 0.5 — far above 14.4 × 0.1 % — as soon as `rate()` has two scrapes of the 5xx series (≈ 2 s), then
/// [`FOR`], one evaluation, and Alertmanager's group_wait: ≈ 10 s. [`PIPELINE_DEADLINE`] (120 s) bounds it with
/// room for two busy cores; traffic runs throughout, about 20 requests a second.
#[tokio::test]
async fn an_injected_error_ratio_fires_the_availability_burn_rate_page() {
    let stack =
        Stack::builder().env(Service::Backend, "FAULT_INJECTION_ENABLED", "true").start().await.expect("stack starts");
    let monitoring = Monitoring::start(&stack).await;
    let alice = stack.api("alice").expect("alice's client");

    // Steady traffic for the whole test, errors or not.
    let traffic = tokio::spawn(async move {
        loop {
            let _ = alice.tasks_with_status("open").await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let burn =
        [("alertname", "BackendApiAvailabilityErrorBudgetBurn"), ("service", "backend"), ("severity", "critical")];

    // Healthy first: the SLI is evaluated on real traffic and is 0, and nothing burns.
    let sli = r#"taskwatch_slo:sli_error:ratio_rate5m{slo="backend-api-availability"}"#;
    monitoring
        .prometheus
        .wait_for(sli, DEADLINE, |samples| samples.len() == 1 && samples[0].value == 0.0)
        .await
        .expect("the availability SLI is recorded from real traffic");
    let alerts = monitoring.prometheus.query(r#"ALERTS{alertname="BackendApiAvailabilityErrorBudgetBurn"}"#).await;
    assert_eq!(alerts.expect("query").len(), 0, "burning before any fault");

    let client = reqwest::Client::new();
    let response = client
        .put(format!("{}/admin/faults", stack.url(Service::Backend)))
        .bearer_auth(INTERNAL_SERVICE_TOKEN)
        .json(&json!({ "http": { "error_ratio": 0.5 } }))
        .send()
        .await
        .expect("the fault switch answers");
    assert_eq!(response.status(), 200, "fault refused: {}", response.text().await.unwrap_or_default());

    let page = monitoring.wait_for("pager", "firing", &burn, PIPELINE_DEADLINE).await;
    let alert = page.alerts.iter().find(|alert| alert.has_labels(&burn)).expect("the alert");
    assert_eq!(alert.labels.get("slo").map(String::as_str), Some("backend-api-availability"));
    let measured = monitoring.prometheus.query(sli).await.expect("sli query");
    assert!(measured.first().is_some_and(|sample| sample.value > 14.4 * 0.001), "SLI while burning: {measured:?}");
    traffic.abort();
}

/// Issue 10: a consumer back inside its session timeout is left without partitions by tansu 0.6 (see
/// `messaging::consumer::group_watch`). While its group owns none of `reminders`, the unowned-partitions page
/// fires; the consumer's guard rejoins after twice the session timeout, and the page resolves. notification's
/// session timeout is 10 s here (the harness's 6 s otherwise), so the stall outlasts [`FOR`] by a wide margin.
#[tokio::test]
async fn partitions_left_unowned_by_a_restart_inside_the_session_timeout_page_and_resolve_after_the_rejoin() {
    let mut stack = Stack::builder()
        .env(Service::Notification, "KAFKA_SESSION_TIMEOUT", "10s")
        .start()
        .await
        .expect("stack starts");
    let monitoring = Monitoring::start(&stack).await;
    assert!(
        stack.wait_until_partitions_owned(Service::Notification, "reminders", PIPELINE_DEADLINE).await,
        "notification never owned reminders:\n{}",
        stack.output(Service::Notification)
    );
    let unowned = [("alertname", "TaskwatchConsumerPartitionsUnowned"), ("service", "notification")];

    stack.kill_service(Service::Notification).expect("kill");
    tokio::time::sleep(Duration::from_secs(4)).await;
    stack.start_service(Service::Notification).await.expect("notification restarts");

    let page = monitoring.wait_for("pager", "firing", &unowned, PIPELINE_DEADLINE).await;
    let alert = page.alerts.iter().find(|alert| alert.has_labels(&unowned)).expect("the alert");
    assert_eq!(alert.labels.get("topic").map(String::as_str), Some("reminders"));
    monitoring.wait_for("pager", "resolved", &unowned, PIPELINE_DEADLINE).await;
    assert!(stack.wait_until_partitions_owned(Service::Notification, "reminders", DEADLINE).await);
    let rejoins = stack
        .metrics(Service::Notification)
        .await
        .and_then(|exposition| e2e::metric_sum(&exposition, "taskwatch_consumer_rejoins_total", &[]));
    assert!(
        rejoins >= Some(1.0),
        "recovered without the guard rejoining ({rejoins:?}):\n{}",
        stack.output(Service::Notification)
    );
}

/// Issue 10: a consumer that takes no message while its lag is above zero pages once it has finished nothing
/// for a minute plus the alert's `for:` ([`FOR`] here), and the page resolves once it consumes again. The lag
/// need not grow: three waiting completions are enough.
#[tokio::test]
async fn a_stuck_consumer_with_waiting_messages_pages_and_resolves_once_it_consumes_again() {
    let stack = Stack::builder()
        .env(Service::RecurringTask, "FAULT_INJECTION_ENABLED", "true")
        .start()
        .await
        .expect("stack starts");
    let monitoring = Monitoring::start(&stack).await;
    let alice = stack.api("alice").expect("alice's client");
    let faults = format!("{}/admin/faults", stack.url(Service::RecurringTask));
    let client = reqwest::Client::new();
    let stuck = client
        .put(&faults)
        .bearer_auth(INTERNAL_SERVICE_TOKEN)
        .json(&json!({ "consumer": { "stuck": true } }))
        .send()
        .await
        .expect("the fault switch answers");
    assert_eq!(stuck.status(), 200);
    for n in 1..=3 {
        alice.create_task(&json!({ "title": format!("Waiting #{n}") })).await.expect("task created");
    }
    let stalled = [("alertname", "TaskwatchConsumerStalled"), ("service", "recurring-task")];
    let page = monitoring.wait_for("pager", "firing", &stalled, Duration::from_secs(180)).await;
    let alert = page.alerts.iter().find(|alert| alert.has_labels(&stalled)).expect("the alert");
    assert_eq!(alert.labels.get("topic").map(String::as_str), Some("task-events"));

    let unstuck = client.delete(&faults).bearer_auth(INTERNAL_SERVICE_TOKEN).send().await.expect("answers");
    assert!(unstuck.status().is_success());
    monitoring.wait_for("pager", "resolved", &stalled, PIPELINE_DEADLINE).await;
}

/// Issue 10: the first dead letter of a freshly started service fires its alert. The consumer starts its
/// counters at zero, so the first dead letter is an increase Prometheus sees; a series born at one would not be.
#[tokio::test]
async fn the_first_dead_letter_of_a_fresh_service_fires_its_alert() {
    let stack = Stack::start().await.expect("stack starts");
    let monitoring = Monitoring::start(&stack).await;
    // The zero series is scraped before anything happens.
    monitoring
        .prometheus
        .wait_for(
            r#"taskwatch_messages_dead_lettered_total{job="recurring-task", topic="task-events"}"#,
            DEADLINE,
            |samples| samples.len() == 1 && samples[0].value == 0.0,
        )
        .await
        .expect("the dead-letter counter exists at zero from the start");
    let garbage = e2e::kafka::RawMessage::not_a_cloud_event("task-events", "alerts-live");
    stack.republish(&garbage).await.expect("garbage published");
    let dead_letters = [("alertname", "TaskwatchConsumerDeadLetters"), ("service", "recurring-task")];
    monitoring.wait_for("chat", "firing", &dead_letters, PIPELINE_DEADLINE).await;
}
