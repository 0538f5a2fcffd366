//! The repo's Alertmanager configuration (issue 4 §3), checked with the real `amtool` and run in a real
//! Alertmanager: it is valid; every alert the rules can raise reaches the receivers its severity promises;
//! the templates render a summary and a runbook link; a down service inhibits its own latency, error and
//! burn alerts and nothing else.

use std::collections::BTreeMap;
use std::path::Path;

use e2e::DEADLINE;
use e2e::alerting::rules::{AlertRule, alert_rules};
use e2e::alerting::tools::{amtool_check_config, amtool_render, amtool_routes, amtool_verify_route};
use e2e::alerting::{
    Alert, AlertState, Alertmanager, Notification, TestConfig, Timings, alertmanager_config_path, alertmanager_dir,
    demo_config_path,
};
use serde_json::json;
use serde_norway::Value;
use testkit::smtp::SmtpSink;
use testkit::webhook::{ReceivedRequest, WebhookReceiver};

const SERVICES: [&str; 4] = ["backend", "reminder", "recurring-task", "notification"];

/// The receivers an alert of `severity` must reach, in Alertmanager's order: everything also goes to the
/// `webhook` feed; the Watchdog only to the dead man's switch.
fn promised_receivers(alertname: &str, severity: Option<&str>) -> &'static [&'static str] {
    match (alertname, severity) {
        ("Watchdog", _) => &["deadmans-switch"],
        (_, Some("critical")) => &["webhook", "pager"],
        (_, Some("warning")) => &["webhook", "chat"],
        (_, Some("info")) => &["webhook", "email"],
        // No known severity is a rule bug; it must still reach humans.
        _ => &["webhook", "chat"],
    }
}

fn label_args(labels: &BTreeMap<String, String>) -> Vec<String> {
    labels.iter().map(|(name, value)| format!("{name}={value}")).collect()
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn the_shipped_config_passes_amtool_check_config() {
    let output = amtool_check_config(&alertmanager_config_path()).expect("amtool runs");
    assert!(output.success, "amtool check-config failed:\n{}", output.combined());
    // The templates are part of the check only when they are found.
    assert!(output.stdout.contains(" - 1 templates"), "the templates were not loaded:\n{}", output.combined());
}

#[test]
fn each_severity_the_watchdog_and_each_service_route_where_promised() {
    let config = alertmanager_config_path();
    let mut cases: Vec<(Vec<String>, &[&str])> = vec![
        (vec!["alertname=Watchdog".into(), "severity=none".into()], &["deadmans-switch"]),
        // Even a Watchdog with a severity stays out of people's receivers.
        (vec!["alertname=Watchdog".into(), "severity=critical".into()], &["deadmans-switch"]),
        (vec!["alertname=SomethingNew".into(), "service=backend".into()], &["webhook", "chat"]),
        (vec!["alertname=SomethingNew".into(), "severity=none".into()], &["webhook", "chat"]),
        (
            vec!["alertname=BackendApiAvailabilityErrorBudgetBurn".into(), "slo=backend-api-availability".into()]
                .into_iter()
                .chain(["service=backend".into(), "severity=critical".into()])
                .collect(),
            &["webhook", "pager"],
        ),
    ];
    for service in SERVICES {
        for severity in ["critical", "warning", "info"] {
            let labels =
                vec!["alertname=AnyAlert".into(), format!("service={service}"), format!("severity={severity}")];
            cases.push((labels, promised_receivers("AnyAlert", Some(severity))));
        }
    }
    for (labels, expected) in &cases {
        let verified = amtool_verify_route(&config, &as_strs(labels), expected);
        assert!(
            verified.is_ok(),
            "{labels:?} should reach {expected:?}: {}",
            verified.err().map(|e| e.to_string()).unwrap_or_default()
        );
    }
    // The check can fail: the same alert does not verify against a wrong receiver list.
    let page = ["alertname=TaskwatchServiceDown", "service=backend", "severity=critical"];
    assert!(amtool_verify_route(&config, &page, &["pager"]).is_err(), "--verify.receivers accepted a wrong list");
    assert!(amtool_verify_route(&config, &page, &["pager", "webhook"]).is_err(), "receiver order is not checked");
}

#[test]
fn every_alert_the_rules_raise_routes_by_its_severity() {
    let rules = alert_rules().expect("rule files readable");
    assert!(
        rules.iter().any(|rule| rule.name == "TaskwatchServiceDown")
            && rules.iter().any(|rule| rule.name == "Watchdog"),
        "the cause alerts (monitoring/prometheus/rules/alerts.yml) are missing: {:?}",
        rules.iter().map(|rule| &rule.name).collect::<Vec<_>>()
    );
    let config = alertmanager_config_path();
    for rule in &rules {
        for service in SERVICES {
            let labels = label_args(&rule.labels_for(service));
            let expected = promised_receivers(&rule.name, rule.severity());
            let verified = amtool_verify_route(&config, &as_strs(&labels), expected);
            assert!(
                verified.is_ok(),
                "{} ({}) for {service} should reach {expected:?}: {}",
                rule.name,
                rule.file.display(),
                verified.err().map(|e| e.to_string()).unwrap_or_default()
            );
        }
    }
    for rule in rules.iter().filter(|rule| rule.name != "Watchdog") {
        assert!(
            matches!(rule.severity(), Some("critical" | "warning" | "info")),
            "{} has severity {:?}; the routes know critical, warning and info",
            rule.name,
            rule.severity()
        );
    }
}

/// Template data for one group, shaped like Alertmanager's (`template.Data`).
fn template_data(
    dir: &Path,
    status: &str,
    alerts: serde_json::Value,
    common_annotations: serde_json::Value,
) -> std::path::PathBuf {
    let data = json!({
        "receiver": "pager",
        "status": status,
        "alerts": alerts,
        "groupLabels": { "alertname": "TaskwatchServiceDown", "service": "backend" },
        "commonLabels": { "alertname": "TaskwatchServiceDown", "service": "backend", "severity": "critical" },
        "commonAnnotations": common_annotations,
        "externalURL": "http://alertmanager.example.org:9093",
    });
    let path = dir.join(format!("{status}.json"));
    std::fs::write(&path, data.to_string()).expect("template data written");
    path
}

const RUNBOOK: &str = "https://github.com/taskwatch/taskwatch/blob/main/monitoring/runbooks/TaskwatchServiceDown.md";

fn down_alert(status: &str, instance: &str) -> serde_json::Value {
    json!({
        "status": status,
        "labels": { "alertname": "TaskwatchServiceDown", "service": "backend", "severity": "critical", "instance": instance },
        "annotations": {
            "summary": format!("backend is down ({instance})"),
            "description": "Prometheus has failed to scrape backend for more than a minute.",
            "runbook_url": RUNBOOK,
        },
        "startsAt": "2026-11-22T10:00:00Z",
        "endsAt": if status == "resolved" { "2026-11-22T10:30:00Z" } else { "0001-01-01T00:00:00Z" },
        "generatorURL": "http://prometheus.example.org:9090/graph",
        "fingerprint": format!("{instance}-{status}"),
    })
}

#[test]
fn the_templates_render_a_title_the_summary_and_the_runbook_link() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let glob = alertmanager_dir().join("templates/*.tmpl").to_string_lossy().into_owned();
    let render = |data: &Path, name: &str| {
        amtool_render(&glob, data, &format!("{{{{ template \"{name}\" . }}}}"))
            .unwrap_or_else(|error| panic!("template {name} does not render: {error}"))
    };

    // Every template the receivers use is defined (amtool fails on an undefined one).
    let config = std::fs::read_to_string(alertmanager_config_path()).expect("config readable");
    let used: Vec<&str> = config
        .split("template \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|name| name.starts_with("taskwatch."))
        .collect();
    assert!(used.len() >= 4, "the receivers use the templates: {used:?}");
    let common = json!({ "summary": "backend is down (10.0.0.1:8080)", "runbook_url": RUNBOOK });
    let firing = template_data(dir.path(), "firing", json!([down_alert("firing", "10.0.0.1:8080")]), common);
    for name in &used {
        render(&firing, name);
    }

    assert_eq!(render(&firing, "taskwatch.title").trim(), "[FIRING:1] TaskwatchServiceDown · backend");
    assert_eq!(render(&firing, "taskwatch.runbook_url").trim(), RUNBOOK);
    assert_eq!(render(&firing, "taskwatch.summary").trim(), "backend is down (10.0.0.1:8080)");
    let text = render(&firing, "taskwatch.text");
    for expected in
        ["Firing:", "backend is down (10.0.0.1:8080)", "for more than a minute", RUNBOOK, "severity=critical"]
    {
        assert!(text.contains(expected), "the text lacks {expected:?}:\n{text}");
    }
    assert!(!text.contains("Resolved:"), "nothing resolved yet:\n{text}");

    // Two instances, one resolved: the summaries differ, so the first alert's is used; both are listed.
    let mixed = template_data(
        dir.path(),
        "mixed",
        json!([down_alert("firing", "10.0.0.2:8080"), down_alert("resolved", "10.0.0.1:8080")]),
        json!({ "runbook_url": RUNBOOK }),
    );
    assert_eq!(render(&mixed, "taskwatch.summary").trim(), "backend is down (10.0.0.2:8080)");
    let text = render(&mixed, "taskwatch.text");
    assert!(text.contains("Firing:") && text.contains("Resolved:") && text.contains("resolved 2026-11-22"), "{text}");

    // Without a common runbook the link falls back to the runbook index, never to nothing.
    let resolved = template_data(dir.path(), "resolved", json!([down_alert("resolved", "10.0.0.1:8080")]), json!({}));
    assert_eq!(render(&resolved, "taskwatch.title").trim(), "[RESOLVED] TaskwatchServiceDown · backend");
    assert!(render(&resolved, "taskwatch.runbook_url").trim().ends_with("/monitoring/runbooks"));
}

/// Removes what the test copy is allowed to change, recursively.
fn without_timings(value: &mut Value) {
    match value {
        Value::Mapping(mapping) => {
            for key in ["group_wait", "group_interval", "repeat_interval"] {
                mapping.remove(key);
            }
            mapping.values_mut().for_each(without_timings);
        }
        Value::Sequence(items) => items.iter_mut().for_each(without_timings),
        _ => {}
    }
}

#[test]
fn the_test_copy_routes_and_inhibits_exactly_like_the_shipped_config() {
    let shipped_text = std::fs::read_to_string(alertmanager_config_path()).expect("config readable");
    let mut shipped: Value = serde_norway::from_str(&shipped_text).expect("config is YAML");
    let copy = TestConfig::from_repo("http://127.0.0.1:9", Timings::FAST).expect("test copy");
    let mut copied: Value = serde_norway::from_str(&copy.to_yaml().expect("copy serialises")).expect("copy is YAML");
    for key in ["inhibit_rules", "global"] {
        assert_eq!(shipped[key], copied[key], "the test copy changed `{key}`");
    }
    without_timings(&mut shipped["route"]);
    without_timings(&mut copied["route"]);
    assert_eq!(shipped["route"], copied["route"], "the test copy changed a route beyond its timings");
    assert_eq!(copy.receivers(), ["pager", "chat", "email", "deadmans-switch", "webhook"]);
    for receiver in copied["receivers"].as_sequence().expect("receivers") {
        let name = receiver["name"].as_str().expect("name");
        assert_eq!(receiver["webhook_configs"][0]["url"].as_str(), Some(format!("http://127.0.0.1:9/{name}").as_str()));
    }

    // And amtool agrees: the copy resolves every case like the original.
    let dir = tempfile::tempdir().expect("temporary directory");
    let copy_path = copy.write_to(dir.path()).expect("copy written");
    let check = amtool_check_config(&copy_path).expect("amtool runs");
    assert!(check.success, "the test copy is invalid:\n{}", check.combined());
    for severity in ["critical", "warning", "info", "none"] {
        for alertname in ["Watchdog", "TaskwatchHighLatency"] {
            let labels =
                ["service=backend".to_owned(), format!("alertname={alertname}"), format!("severity={severity}")];
            let labels = as_strs(&labels);
            assert_eq!(
                amtool_routes(&copy_path, &labels).expect("copy routes"),
                amtool_routes(&alertmanager_config_path(), &labels).expect("original routes"),
                "{labels:?}"
            );
        }
    }
}

/// The alert names the shipped inhibition must quiet when their service is down.
fn silenced_by_a_down_service(rule: &AlertRule) -> bool {
    matches!(rule.name.as_str(), "TaskwatchHighErrorRatio" | "TaskwatchHighLatency")
        || rule.name.ends_with("ErrorBudgetBurn")
}

type Labels = BTreeMap<String, String>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

/// How `states` differ from `expected`: each posted alert (by its exact labels) either active and not
/// inhibited (`None`), or suppressed by exactly the alert with the given labels.
fn differences(states: &[AlertState], expected: &[(Labels, Option<Labels>)]) -> Vec<String> {
    let find = |labels: &Labels| states.iter().find(|state| state.labels == *labels);
    let mut differences = Vec::new();
    if states.len() != expected.len() {
        differences.push(format!("{} alerts known, {} posted", states.len(), expected.len()));
    }
    for (labels, inhibitor) in expected {
        let promise = match inhibitor {
            None => Some(("active", Vec::new())),
            Some(source) => find(source).map(|source| ("suppressed", vec![source.fingerprint.clone()])),
        };
        let actual = find(labels).map(|state| (state.state.as_str(), state.inhibited_by.clone()));
        if actual != promise {
            differences.push(format!("{labels:?}: expected {promise:?}, got {actual:?}"));
        }
    }
    differences
}

/// Waits until Alertmanager reports exactly the `expected` states (see [`differences`]) and returns them.
/// The inhibitor learns of new alerts asynchronously, so a right configuration converges within moments; a
/// wrong one never does and fails at the deadline with the differences.
async fn wait_for_states(alertmanager: &Alertmanager, expected: &[(Labels, Option<Labels>)]) -> Vec<AlertState> {
    let last = std::cell::RefCell::new(Vec::new());
    let converged = testkit::wait::until_some(DEADLINE, || async {
        let states = alertmanager.alerts().await.ok()?;
        let now = differences(&states, expected);
        let done = now.is_empty();
        *last.borrow_mut() = now;
        done.then_some(states)
    })
    .await;
    converged.unwrap_or_else(|_| {
        panic!(
            "Alertmanager's alert states differ from the promise:\n{}\nit said:\n{}",
            last.borrow().join("\n"),
            alertmanager.output()
        )
    })
}

/// Posts one alert per expected label set, then waits for the expected states ([`wait_for_states`]).
async fn post_and_wait_for_states(alertmanager: &Alertmanager, expected: &[(Labels, Option<Labels>)]) {
    let posted: Vec<Alert> = expected
        .iter()
        .map(|(labels, _)| Alert::new(&labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>()))
        .collect();
    alertmanager.post_alerts(&posted).await.expect("alerts posted");
    wait_for_states(alertmanager, expected).await;
}

/// The first notification (already received or still to come) telling `receiver` that `alertname` fires.
async fn firing_notification(sink: &WebhookReceiver, receiver: &str, alertname: &str) -> Option<ReceivedRequest> {
    sink.wait_for(
        |request| {
            Notification::parse(request).is_some_and(|n| n.reports(receiver, "firing", &[("alertname", alertname)]))
        },
        DEADLINE,
    )
    .await
}

async fn start_alertmanager() -> (WebhookReceiver, Alertmanager) {
    let sink = WebhookReceiver::start().await.expect("webhook receiver");
    let config = TestConfig::from_repo(&format!("http://{}", sink.address()), Timings::FAST).expect("test copy");
    let alertmanager = Alertmanager::start(&config).await.expect("alertmanager starts");
    (sink, alertmanager)
}

#[tokio::test]
async fn a_page_silences_the_ticket_of_the_same_alert_service_and_slo_only() {
    let (_sink, alertmanager) = start_alertmanager().await;
    let burn = "BackendApiAvailabilityErrorBudgetBurn";
    let page = labels(&[
        ("alertname", burn),
        ("service", "backend"),
        ("slo", "backend-api-availability"),
        ("severity", "critical"),
    ]);
    let ticket = labels(&[
        ("alertname", burn),
        ("service", "backend"),
        ("slo", "backend-api-availability"),
        ("severity", "warning"),
    ]);
    let other_slo =
        labels(&[("alertname", burn), ("service", "backend"), ("slo", "backend-api-latency"), ("severity", "warning")]);
    let other_service = labels(&[
        ("alertname", burn),
        ("service", "reminder"),
        ("slo", "backend-api-availability"),
        ("severity", "warning"),
    ]);
    let cause_page =
        labels(&[("alertname", "TaskwatchReminderLate"), ("service", "reminder"), ("severity", "critical")]);
    let cause_ticket =
        labels(&[("alertname", "TaskwatchReminderLate"), ("service", "reminder"), ("severity", "warning")]);
    let other_alert =
        labels(&[("alertname", "TaskwatchRemindersMissed"), ("service", "reminder"), ("severity", "warning")]);
    let expected = vec![
        (page.clone(), None),
        (ticket, Some(page)),
        (other_slo, None),
        (other_service, None),
        (cause_page.clone(), None),
        (cause_ticket, Some(cause_page)),
        (other_alert, None),
    ];
    post_and_wait_for_states(&alertmanager, &expected).await;
}

#[tokio::test]
async fn a_down_service_inhibits_only_its_own_latency_error_and_burn_alerts() {
    let (sink, alertmanager) = start_alertmanager().await;

    // Every alert the rules can raise (one instance per name, at its first severity), for the backend and
    // for the reminder, alongside the backend's down alert. The latency alerts are the example; the
    // rest prove the inhibition is no wider than it says.
    let mut rules: Vec<AlertRule> = Vec::new();
    for rule in alert_rules().expect("rule files readable") {
        // The dependency alerts inhibit in their own right (tested below); here only the down service does.
        if !["TaskwatchServiceDown", "Watchdog", "TaskwatchPostgresDown", "TaskwatchBrokerDown"]
            .contains(&rule.name.as_str())
            && !rules.iter().any(|r| r.name == rule.name)
        {
            rules.push(rule);
        }
    }
    assert!(rules.iter().any(|rule| rule.name == "TaskwatchHighLatency"), "no latency alert in the rules");
    let down = Alert::new(&[("alertname", "TaskwatchServiceDown"), ("service", "backend"), ("severity", "critical")])
        .annotation("summary", "backend is down")
        .annotation("runbook_url", RUNBOOK);
    // Alerts whose rule names a fixed service (the SLO alerts) exist for that service only.
    let mut cases: Vec<(&AlertRule, BTreeMap<String, String>)> = Vec::new();
    for rule in &rules {
        for service in ["backend", "reminder"] {
            let labels = rule.labels_for(service);
            if !cases.iter().any(|(_, seen)| *seen == labels) {
                cases.push((rule, labels));
            }
        }
    }
    let mut posted = vec![down];
    for (rule, labels) in &cases {
        let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        posted.push(Alert::new(&pairs).annotation("summary", &format!("{} on {}", rule.name, labels["service"])));
    }
    alertmanager.post_alerts(&posted).await.expect("alerts posted");

    // The inhibitor learns of the down alert asynchronously, so wait until every state is the promised one
    // (a wrong inhibition never converges and fails at the deadline with the differences).
    let down_labels =
        labels(&[("alertname", "TaskwatchServiceDown"), ("service", "backend"), ("severity", "critical")]);
    let mut expected: Vec<(Labels, Option<Labels>)> = vec![(down_labels.clone(), None)];
    for (rule, labels) in &cases {
        let inhibited = labels["service"] == "backend" && silenced_by_a_down_service(rule);
        expected.push((labels.clone(), inhibited.then(|| down_labels.clone())));
    }
    let states = wait_for_states(&alertmanager, &expected).await;
    let inhibited_count = states.iter().filter(|state| state.state == "suppressed").count();
    assert!(inhibited_count >= 2, "at least the backend's latency and error alerts are inhibited: {states:#?}");

    // The reminder's latency alert reaches its receivers (chat, as a warning, and the webhook feed) and the
    // page reaches the pager.
    let reminder_latency = [("alertname", "TaskwatchHighLatency"), ("service", "reminder")];
    for receiver in ["chat", "webhook"] {
        let arrived = sink
            .wait_for(
                |request| {
                    Notification::parse(request).is_some_and(|n| n.reports(receiver, "firing", &reminder_latency))
                },
                DEADLINE,
            )
            .await;
        assert!(arrived.is_some(), "the reminder's latency alert never reached {receiver}:\n{}", alertmanager.output());
    }
    let paged = firing_notification(&sink, "pager", "TaskwatchServiceDown").await;
    assert!(paged.is_some(), "the down alert was not paged:\n{}", alertmanager.output());

    // Every active alert is its own group (alertname × service), all posted at once with the same group_wait:
    // once each has reached the webhook feed, an inhibited one would have too.
    let active: Vec<&AlertState> = states.iter().filter(|state| state.state == "active").collect();
    for state in &active {
        let labels: Vec<(&str, &str)> = state.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let arrived = sink
            .wait_for(
                |request| Notification::parse(request).is_some_and(|n| n.receiver == "webhook" && n.mentions(&labels)),
                DEADLINE,
            )
            .await;
        assert!(arrived.is_some(), "active alert {labels:?} never reached the webhook feed");
    }
    let notifications: Vec<Notification> = sink.requests().iter().filter_map(Notification::parse).collect();
    for state in states.iter().filter(|state| state.state == "suppressed") {
        let labels: Vec<(&str, &str)> = state.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert!(
            !notifications.iter().any(|n| n.mentions(&labels)),
            "inhibited {labels:?} was notified: {notifications:#?}"
        );
    }
}

/// The compose demo's copy (`demo.yml`) may differ in `global` and `receivers` only: its routes, grouping,
/// inhibitions and templates are the shipped ones, receiver for receiver.
#[test]
fn the_demo_config_routes_and_inhibits_exactly_like_the_shipped_config() {
    let read = |path: &Path| -> Value {
        let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        serde_norway::from_str(&text).unwrap_or_else(|error| panic!("{} is not YAML: {error}", path.display()))
    };
    let shipped = read(&alertmanager_config_path());
    let demo = read(&demo_config_path());
    for key in ["route", "inhibit_rules", "templates", "time_intervals"] {
        assert_eq!(shipped[key], demo[key], "demo.yml's `{key}` differs from alertmanager.yml's");
    }
    let names = |config: &Value| -> Vec<String> {
        config["receivers"]
            .as_sequence()
            .expect("receivers is a list")
            .iter()
            .map(|receiver| receiver["name"].as_str().expect("a receiver has a name").to_owned())
            .collect()
    };
    assert_eq!(names(&shipped), names(&demo), "the demo must offer the same receivers");

    let check = amtool_check_config(&demo_config_path()).expect("amtool runs");
    assert!(check.success, "demo.yml is invalid:\n{}", check.combined());

    // The Watchdog pings once a minute: in the demo it must reach only receivers that deliver nowhere.
    let watchdog = ["alertname=Watchdog", "severity=none"];
    let routed = amtool_routes(&demo_config_path(), &watchdog).expect("amtool routes the Watchdog");
    assert_eq!(routed, ["deadmans-switch"], "the demo routes the Watchdog elsewhere");
    for name in &routed {
        let receiver = demo["receivers"]
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|receiver| receiver["name"].as_str() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("the Watchdog routes to an unknown receiver {name}"));
        let integrations: Vec<_> = receiver
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(key, _)| key.as_str())
            .filter(|key| key.ends_with("_configs"))
            .collect();
        assert!(integrations.is_empty(), "the Watchdog reaches {name}, which delivers via {integrations:?}");
    }
    assert!(check.stdout.contains(" - 1 templates"), "the templates were not loaded:\n{}", check.combined());
}

/// Alertmanager sends its text part quoted-printable (RFC 2045 §6.7): joins soft line breaks and decodes
/// `=XX` escapes, enough to search the text for a link.
fn unfold_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "");
    let mut bytes = Vec::with_capacity(joined.len());
    let mut rest = joined.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        let escaped = (byte == b'=')
            .then(|| tail.get(..2))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) => {
                bytes.push(decoded);
                rest = &tail[2..];
            }
            None => {
                bytes.push(byte);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The first mail to `recipient` whose subject names `alertname`.
async fn wait_for_mail(
    smtp: &SmtpSink,
    alertmanager: &Alertmanager,
    recipient: &str,
    alertname: &str,
) -> testkit::smtp::ReceivedMail {
    let about = |mail: &testkit::smtp::ReceivedMail| {
        mail.recipients == [recipient] && mail.subject.as_deref().is_some_and(|subject| subject.contains(alertname))
    };
    smtp.wait_for(about, DEADLINE).await.unwrap_or_else(|| {
        panic!(
            "no mail to {recipient} about {alertname}; got {:?}\nAlertmanager said:\n{}",
            smtp.messages().iter().map(|mail| (&mail.recipients, &mail.subject)).collect::<Vec<_>>(),
            alertmanager.output()
        )
    })
}

/// In the demo every alert a person should see arrives in the mail catcher, addressed by severity: a real
/// Alertmanager on `demo.yml` mailing a real SMTP server.
#[tokio::test]
async fn the_demo_config_mails_pages_and_tickets_to_the_mail_catcher() {
    let smtp = SmtpSink::start().await.expect("SMTP sink");
    let config = TestConfig::demo(&smtp.address().to_string(), Timings::FAST).expect("demo copy");
    let alertmanager = Alertmanager::start(&config).await.expect("alertmanager starts");

    let page = Alert::new(&[("alertname", "TaskwatchServiceDown"), ("service", "reminder"), ("severity", "critical")])
        .annotation("summary", "reminder is down")
        .annotation("runbook_url", RUNBOOK);
    let ticket =
        Alert::new(&[("alertname", "TaskwatchConsumerLagGrowing"), ("service", "reminder"), ("severity", "warning")])
            .annotation("summary", "reminder falls behind");
    alertmanager.post_alerts(&[page, ticket]).await.expect("alerts posted");

    let paged = wait_for_mail(&smtp, &alertmanager, "pager@taskwatch.localhost", "TaskwatchServiceDown").await;
    // The subject carries a non-ASCII "·", so it arrives as an RFC 2047 encoded word; the tag survives as is.
    assert!(paged.subject.as_deref().is_some_and(|subject| subject.contains("[page]")), "{:?}", paged.subject);
    let text = unfold_quoted_printable(paged.body());
    assert!(text.contains(RUNBOOK), "the page lacks its runbook link:\n{text}");
    let ticketed = wait_for_mail(&smtp, &alertmanager, "chat@taskwatch.localhost", "TaskwatchConsumerLagGrowing").await;
    assert!(ticketed.subject.as_deref().is_some_and(|subject| subject.contains("[chat]")), "{:?}", ticketed.subject);
}

#[tokio::test]
async fn a_dependency_down_inhibits_what_follows_from_it_in_its_own_namespace_only() {
    let (_sink, alertmanager) = start_alertmanager().await;
    let alert = |name: &str, service: &str, namespace: &str, extra: &[(&str, &str)]| {
        let mut pairs =
            vec![("alertname", name), ("service", service), ("severity", "critical"), ("namespace", namespace)];
        pairs.extend_from_slice(extra);
        labels(&pairs)
    };
    let postgres_down = alert("TaskwatchPostgresDown", "postgres", "prod", &[]);
    let broker_down = alert("TaskwatchBrokerDown", "kafka", "prod", &[]);
    let expected = vec![
        (postgres_down.clone(), None),
        (broker_down.clone(), None),
        // Postgres down: the per-service readiness alert about Postgres and the symptoms that follow.
        (
            alert("TaskwatchReadinessCheckFailing", "reminder", "prod", &[("check", "postgres")]),
            Some(postgres_down.clone()),
        ),
        (alert("TaskwatchCircuitBreakerOpen", "recurring-task", "prod", &[]), Some(postgres_down.clone())),
        (alert("TaskwatchConsumerStalled", "reminder", "prod", &[]), Some(postgres_down.clone())),
        // The broker down: its readiness alerts and the pipeline symptoms.
        (
            alert("TaskwatchReadinessCheckFailing", "notification", "prod", &[("check", "kafka")]),
            Some(broker_down.clone()),
        ),
        (alert("TaskwatchOutboxBacklog", "backend", "prod", &[]), Some(broker_down.clone())),
        (alert("TaskwatchConsumerPartitionsUnowned", "notification", "prod", &[]), Some(broker_down.clone())),
        // What users feel stays: the SLO burn alerts are never inhibited by a cause.
        (alert("ReminderTimelinessErrorBudgetBurn", "reminder", "prod", &[("slo", "reminder-timeliness")]), None),
        // Another environment's alerts stay active.
        (alert("TaskwatchReadinessCheckFailing", "reminder", "staging", &[("check", "postgres")]), None),
        (alert("TaskwatchConsumerPartitionsUnowned", "notification", "staging", &[]), None),
    ];
    post_and_wait_for_states(&alertmanager, &expected).await;
}

/// The maintenance window (`time_intervals` + `mute_time_intervals` in alertmanager.yml): while it is current, a
/// warning is held back (Alertmanager logs the muted flush) and a page still goes out. The window is made
/// current by the test copy; every other test runs with a window that never comes.
#[tokio::test]
async fn in_the_maintenance_window_warnings_wait_and_pages_go_out() {
    let sink = WebhookReceiver::start().await.expect("webhook receiver");
    let config = TestConfig::from_repo(&format!("http://{}", sink.address()), Timings::FAST)
        .and_then(TestConfig::in_maintenance_window)
        .expect("test copy in its maintenance window");
    let alertmanager = Alertmanager::start(&config).await.expect("alertmanager starts");
    let warning = [
        ("alertname", "TaskwatchHighLatency"),
        ("namespace", "taskwatch"),
        ("service", "backend"),
        ("severity", "warning"),
    ];
    let page = [
        ("alertname", "TaskwatchServiceDown"),
        ("namespace", "taskwatch"),
        ("service", "reminder"),
        ("severity", "critical"),
    ];
    alertmanager.post_alerts(&[Alert::new(&warning), Alert::new(&page)]).await.expect("alerts posted");

    let paged = firing_notification(&sink, "pager", "TaskwatchServiceDown").await;
    assert!(paged.is_some(), "the page did not go out in the maintenance window:\n{}", alertmanager.output());
    let muted = testkit::wait::until_some(DEADLINE, || async {
        alertmanager.output().contains("Notifications not sent, route is within mute time").then_some(())
    })
    .await;
    assert!(muted.is_ok(), "Alertmanager never held a notification back:\n{}", alertmanager.output());
    // The muted flush has happened: had it sent, the chat receiver would have the warning now.
    let chatted = sink
        .requests()
        .iter()
        .filter_map(Notification::parse)
        .any(|n| n.receiver == "chat" && n.mentions(&[("alertname", "TaskwatchHighLatency")]));
    assert!(!chatted, "the warning reached chat inside the maintenance window");
}
