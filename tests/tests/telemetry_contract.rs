//! The telemetry contract between the code and `monitoring/`: `monitoring/telemetry/registry.yaml` lists exactly
//! what the running services emit, and rules and dashboards use only registered names.
//!
//! - `the_running_services_emit_exactly_the_registered_metrics`: the whole system as real processes, driven
//!   through every path that creates a series — API calls and their errors, a reminder delivered by e-mail and
//!   webhook, a recurring task's completion, a non-CloudEvent on each consumed topic (consumer dead letters), a
//!   audit-log outage (the backend's breaker to it opens and rejects a history read), a
//!   backend outage (breaker transitions and rejected calls in recurring-task and notification, a settings
//!   lookup answered from notification's fallback cache) and a failing webhook (a delivery dead-lettered to
//!   `notifications.dlq`). Every service's `/metrics`, scraped before and after the restarts, is then compared
//!   with the registry: each registered metric is there with its type, each emitted metric is registered for
//!   that service, labels and bounded label values are the registered ones; and `promtool check metrics` is
//!   clean apart from the documented, deliberate exceptions in `ACCEPTED_LINT`.
//! - `rules_and_dashboards_reference_only_registered_names`: every metric name in every rule file (and
//!   dashboard, once there are any) is registered, a recording rule, or Prometheus' own (`up`, `ALERTS`).
//!
//! Needs the service binaries, tansu (`TASKWATCH_TANSU_BIN`) and Debian's `prometheus` package (`promtool`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;
use std::process::{Command, Stdio};

use e2e::kafka::RawMessage;
use e2e::monitoring::exposition::{self, Family};
use e2e::monitoring::registry::Registry;
use e2e::monitoring::{PROMTOOL, dashboard_files, promql, read_yaml, rule_files};
use e2e::sse::TaskStreamClient;
use e2e::time::{rfc3339, seconds_from_now};
use e2e::{PIPELINE_DEADLINE, Service, Stack, metric_samples, metric_sum};
use serde_json::json;

const EMAIL: &str = "contract@example.com";

/// `promtool check metrics` findings we accept, each for a reason. Matched on the metric and the finding's text.
const ACCEPTED_LINT: &[(&str, &str, &str)] = &[(
    "db_client_connection_count",
    "non-histogram and non-summary metrics should not have \"_count\" suffix",
    "the OpenTelemetry semantic-convention name db.client.connection.count, rendered the Prometheus way; \
         it is a gauge of connections, and the registry says so",
)];

fn lint_is_accepted(line: &str) -> bool {
    ACCEPTED_LINT.iter().any(|(metric, finding, _)| line.starts_with(metric) && line.contains(finding))
}

/// The non-empty lines `promtool check metrics` prints for `exposition`.
fn promtool_check_metrics(exposition: &str) -> Vec<String> {
    let binary = e2e::alerting::tools::find(PROMTOOL).unwrap_or_else(|error| panic!("{error}"));
    let mut child = Command::new(binary)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child.stdin.take().expect("stdin").write_all(exposition.as_bytes()).expect("exposition written to promtool");
    let output = child.wait_with_output().expect("promtool finishes");
    [output.stdout, output.stderr]
        .iter()
        .flat_map(|stream| String::from_utf8_lossy(stream).lines().map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| !line.trim().is_empty())
        .collect()
}

/// Every way `service`'s exposition disagrees with the registry.
fn contract_problems(registry: &Registry, service: &str, families: &BTreeMap<String, Family>) -> Vec<String> {
    let mut problems = Vec::new();
    for metric in registry.emitted_by(service) {
        match families.get(&metric.name) {
            None => problems.push(format!("{service}: registered metric {} is not emitted", metric.name)),
            Some(family) if family.kind != metric.kind.as_str() => problems.push(format!(
                "{service}: {} is a {}, registered as a {}",
                metric.name,
                family.kind,
                metric.kind.as_str()
            )),
            Some(_) => {}
        }
    }
    for (name, family) in families {
        let Some(metric) = registry.get(name) else {
            problems.push(format!("{service}: emits {name} ({}), which is not registered", family.kind));
            continue;
        };
        if !metric.is_emitted_by(service) {
            problems.push(format!("{service}: emits {name}, registered as emitted only by {:?}", metric.emitted_by));
        }
        for label in family.label_names().into_iter().filter(|label| label != "le") {
            let Some(spec) = metric.label(&label) else {
                problems.push(format!("{service}: {name} has label {label}, which is not registered"));
                continue;
            };
            for value in family.label_values(&label).into_iter().filter(|value| !metric.allows(service, &label, value))
            {
                let allowed = spec.values.as_deref().unwrap_or_default();
                problems.push(format!("{service}: {name}{{{label}=\"{value}\"}} is not among {allowed:?}"));
            }
        }
    }
    problems
}

/// Adds every service's current `/metrics` to `into`.
async fn scrape_all(stack: &Stack, into: &mut HashMap<Service, Vec<String>>) {
    for &service in Service::ALL {
        let exposition = stack.metrics(service).await.unwrap_or_else(|| panic!("{} has no /metrics", service.name()));
        into.entry(service).or_default().push(exposition);
    }
}

/// Adds `more`'s samples to `families` (a family keeps the type it was first seen with).
fn merge(families: &mut BTreeMap<String, Family>, more: BTreeMap<String, Family>) {
    for (name, family) in more {
        let entry = families.entry(name).or_insert_with(|| Family { kind: family.kind.clone(), ..Family::default() });
        for (series, labels) in family.samples {
            entry.samples.entry(series).or_default().extend(labels);
        }
    }
}

/// Waits until `service`'s exposition has a sample of `metric` (with `labels`) of at least `at_least`.
async fn wait_for_sample(stack: &Stack, service: Service, metric: &str, labels: &[(&str, &str)], at_least: f64) {
    let seen = stack
        .wait_for_metrics(service, PIPELINE_DEADLINE, |exposition| {
            metric_sum(exposition, metric, labels).is_some_and(|sum| sum >= at_least)
        })
        .await;
    assert!(
        seen.is_some(),
        "{} never showed {metric}{labels:?} >= {at_least}; it said:\n{}",
        service.name(),
        stack.output(service)
    );
}

/// API calls that succeed and fail in the ways a client can make them fail: 401, 404 (known and unmatched
/// routes), 422.
async fn drive_api_errors(stack: &Stack) {
    let client = reqwest::Client::new();
    let base = stack.url(Service::Backend);
    let token = e2e::mint_token("contract").expect("token");
    let unauthenticated = client.get(format!("{base}/v1/tasks")).send().await.expect("GET without a token");
    assert_eq!(unauthenticated.status(), 401);
    let missing = client
        .get(format!("{base}/v1/tasks/0190b2c1-0000-7000-8000-000000000000"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET of a missing task");
    assert_eq!(missing.status(), 404);
    let invalid =
        client.post(format!("{base}/v1/tasks")).bearer_auth(&token).json(&json!({ "title": "" })).send().await;
    assert_eq!(invalid.expect("POST of an invalid task").status(), 422);
    let unmatched = client.get(format!("{base}/no/such/route")).send().await.expect("GET of an unknown route");
    assert_eq!(unmatched.status(), 404);
    let listed = client.get(format!("{base}/v1/tasks")).bearer_auth(&token).send().await.expect("list");
    assert_eq!(listed.status(), 200);
}

#[tokio::test]
async fn the_running_services_emit_exactly_the_registered_metrics() {
    let registry = Registry::load().expect("the registry loads");
    // A long fallback TTL, so the outage's lookup is surely answered from the cache filled by the first one.
    let mut stack = Stack::builder()
        .env(Service::Notification, "BACKEND_SETTINGS_CACHE_TTL", "10m")
        // One settings read (3 attempts) during the outage opens the breaker and has its last attempt rejected.
        .env(Service::Notification, "BACKEND_BREAKER_FAILURE_THRESHOLD", "2")
        // Two failed history reads open the backend's circuit to audit-log.
        .env(Service::Backend, "AUDIT_LOG_BREAKER_FAILURE_THRESHOLD", "2")
        .env(Service::Backend, "AUDIT_LOG_BREAKER_OPEN_FOR", "1m")
        .start()
        .await
        .expect("stack starts");
    let task_events = stack.tap("task-events").expect("task-events reader");
    let alice = stack.api("contract").expect("client");
    // A task stream open through the changes below, so the stream's lag histogram has its series.
    let stream = TaskStreamClient::open(&stack.url(Service::Backend), alice.token(), None).await.expect("stream opens");
    alice.save_notification_settings(Some(EMAIL), Some(&stack.webhook.url())).await.expect("settings saved");
    drive_api_errors(&stack).await;

    // A recurring task whose reminder falls due within seconds: e-mail and webhook; completing it makes the next
    // occurrence through recurring-task's call to the backend.
    let first = alice
        .create_task(&json!({
            "title": "Contract: first reminder",
            "due_at": rfc3339(seconds_from_now(65)),
            "time_zone": "Europe/Berlin",
            "recurrence": { "rrule": "FREQ=DAILY", "anchor": "due" },
            "reminders": [{ "kind": "before_due", "minutes": 1 }],
        }))
        .await
        .expect("task created");
    let mail = stack.wait_for_mail(|mail| mail.recipients == [EMAIL], PIPELINE_DEADLINE).await;
    assert!(mail.is_some(), "no reminder e-mail:\n{}", stack.output(Service::Notification));
    let call = stack.wait_for_webhook(|_| true, PIPELINE_DEADLINE).await;
    assert!(call.is_some(), "no webhook call:\n{}", stack.output(Service::Notification));
    alice.complete(first["id"].as_str().expect("id")).await.expect("completed");
    let series = first["series_id"].as_str().expect("series id");
    let next = alice.wait_for_open_in_series(series, PIPELINE_DEADLINE).await;
    assert!(next.is_some(), "no next occurrence:\n{}", stack.output(Service::RecurringTask));
    assert!(!stream.wait_for_count(1, PIPELINE_DEADLINE).await.is_empty(), "the task stream sent nothing");

    // Not a CloudEvent, on each consumed topic: every consumer dead-letters it.
    for topic in ["task-events", "reminders"] {
        let garbage = RawMessage::not_a_cloud_event(topic, "contract");
        stack.republish(&garbage).await.expect("garbage published");
    }
    for service in [Service::Reminder, Service::RecurringTask, Service::Notification] {
        wait_for_sample(&stack, service, "taskwatch_messages_dead_lettered_total", &[], 1.0).await;
    }

    // A task history read through audit-log, then an audit-log outage: the backend's calls fail until its circuit
    // opens, and the next read is refused without a call.
    let task_id = first["id"].as_str().expect("id");
    let history = testkit::wait::until_some(PIPELINE_DEADLINE, || async {
        alice.history(task_id).await.ok().filter(|history| history["entries"].as_array().is_some_and(|e| !e.is_empty()))
    })
    .await;
    assert!(history.is_ok(), "no task history:\n{}", stack.output(Service::AuditLog));
    stack.stop_service(Service::AuditLog).await.expect("audit-log stops");
    for _ in 0..3 {
        let refused = alice.history(task_id).await.expect_err("audit-log is down");
        assert!(matches!(refused, e2e::ApiError::Status { status: 503, .. }), "{refused}");
    }
    wait_for_sample(&stack, Service::Backend, "taskwatch_circuit_breaker_rejected_calls_total", &[], 1.0).await;
    stack.start_service(Service::AuditLog).await.expect("audit-log restarts");

    // The outage restarts backend and recurring-task, whose restarted processes start their series afresh: keep
    // what every service has emitted so far.
    let mut expositions: HashMap<Service, Vec<String>> = HashMap::new();
    scrape_all(&stack, &mut expositions).await;

    // A backend outage. Before it: a task whose reminder falls due during it (notification answers the settings
    // lookup from its cache; the webhook fails, so that delivery is dead-lettered to notifications.dlq),
    // and a completion that recurring-task meets only once the backend is down (its breaker opens).
    let during_outage = alice
        .create_task(&json!({
            "title": "Contract: reminder during a backend outage",
            // Fires a minute from now: time enough to stop recurring-task and the backend first, on a busy machine.
            "due_at": rfc3339(seconds_from_now(120)),
            "time_zone": "UTC",
            "reminders": [{ "kind": "before_due", "minutes": 1 }],
        }))
        .await
        .expect("task created");
    let recurring = alice
        .create_task(&json!({
            "title": "Contract: completed during a backend outage",
            "due_at": "2030-06-03T07:00:00Z",
            "time_zone": "Europe/Berlin",
            "recurrence": { "rrule": "FREQ=DAILY", "anchor": "due" },
        }))
        .await
        .expect("task created");
    let recurring_id = recurring["id"].as_str().expect("id").to_owned();
    stack.webhook.respond_with(500);
    stack.stop_service(Service::RecurringTask).await.expect("recurring-task stops");
    alice.complete(&recurring_id).await.expect("completed");
    let published = task_events
        .wait_for(
            |message| {
                message
                    .json()
                    .is_some_and(|event| event["type"] == "task.completed.v1" && event["subject"] == recurring_id)
            },
            PIPELINE_DEADLINE,
        )
        .await;
    assert!(published.is_some(), "the completion never reached task-events");
    stack.stop_service(Service::Backend).await.expect("backend stops");
    let reminder_title = during_outage["title"].as_str().expect("title").to_owned();
    assert!(
        stack.mails_mentioning(&reminder_title).is_empty(),
        "the outage reminder fired before the backend stopped; the machine is too slow for this test's margin"
    );
    stack.start_service(Service::RecurringTask).await.expect("recurring-task starts");

    wait_for_sample(
        &stack,
        Service::RecurringTask,
        "taskwatch_circuit_breaker_transitions_total",
        &[("to_state", "open")],
        1.0,
    )
    .await;
    wait_for_sample(&stack, Service::RecurringTask, "taskwatch_circuit_breaker_rejected_calls_total", &[], 1.0).await;
    let mail = stack
        .wait_for_mail(|mail| mail.subject.as_deref().is_some_and(|s| s.contains(&reminder_title)), PIPELINE_DEADLINE)
        .await;
    assert!(mail.is_some(), "the outage reminder was not mailed:\n{}", stack.output(Service::Notification));
    wait_for_sample(&stack, Service::Notification, "taskwatch_client_fallback_cache_hits_total", &[], 1.0).await;
    wait_for_sample(
        &stack,
        Service::Notification,
        "taskwatch_notification_dead_letters_total",
        &[("channel", "webhook")],
        1.0,
    )
    .await;
    stack.webhook.respond_with(200);
    stack.start_service(Service::Backend).await.expect("backend restarts");
    // The restarted recurring-task counts from zero: the completion it met during the outage is its first.
    wait_for_sample(&stack, Service::RecurringTask, "taskwatch_recurring_occurrences_created_total", &[], 1.0).await;

    // Every service's expositions (before and after the restarts) against the registry, each through promtool.
    scrape_all(&stack, &mut expositions).await;
    let mut problems = Vec::new();
    for &service in Service::ALL {
        let scraped = expositions.get(&service).map(Vec::as_slice).unwrap_or_default();
        let mut families = BTreeMap::new();
        for exposition in scraped {
            let parsed = exposition::parse(exposition).unwrap_or_else(|error| panic!("{}: {error}", service.name()));
            merge(&mut families, parsed);
            problems.extend(
                promtool_check_metrics(exposition)
                    .into_iter()
                    .filter(|line| !lint_is_accepted(line))
                    .map(|line| format!("{}: promtool check metrics: {line}", service.name())),
            );
        }
        problems.extend(contract_problems(&registry, service.name(), &families));
    }
    problems.dedup();
    assert!(problems.is_empty(), "the services and the registry disagree:\n{}", problems.join("\n"));
    // The breaker closed again once the backend was back: the outage left no open circuit behind.
    let recurring = stack.metrics(Service::RecurringTask).await.unwrap_or_default();
    assert!(
        metric_samples(&recurring, "taskwatch_circuit_breaker_state", &[("downstream", "backend")]).contains(&0.0),
        "recurring-task's breaker did not close after the outage"
    );
}

#[test]
fn rules_and_dashboards_reference_only_registered_names() {
    let registry = Registry::load().expect("the registry loads");
    let registered = registry.series_names();
    // `up`, `ALERTS` and `ALERTS_FOR_STATE` are Prometheus' own series, present for every target and alert.
    let builtin: BTreeSet<String> = ["up", "ALERTS", "ALERTS_FOR_STATE"].into_iter().map(str::to_owned).collect();

    let mut expressions: Vec<(String, String)> = Vec::new();
    let mut recorded = BTreeSet::new();
    for file in rule_files().expect("rule files listed") {
        let document = read_yaml(&file).expect("rule file parses");
        let file = file.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        for group in document["groups"].as_sequence().into_iter().flatten() {
            for rule in group["rules"].as_sequence().into_iter().flatten() {
                if let Some(record) = rule["record"].as_str() {
                    recorded.insert(record.to_owned());
                }
                if let Some(expr) = rule["expr"].as_str() {
                    let name = rule["record"].as_str().or(rule["alert"].as_str()).unwrap_or("?");
                    expressions.push((format!("{file}: {name}"), expr.to_owned()));
                }
            }
        }
    }
    for file in dashboard_files().expect("dashboards listed") {
        let text = std::fs::read_to_string(&file).expect("dashboard readable");
        let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
        let name = file.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        collect_dashboard_queries(&dashboard, &name, &mut expressions);
    }
    assert!(expressions.len() > 20, "too few expressions found to be a meaningful check: {}", expressions.len());

    let mut unknown = Vec::new();
    for (place, expr) in &expressions {
        for name in promql::metric_names(expr) {
            if !registered.contains(&name) && !recorded.contains(&name) && !builtin.contains(&name) {
                unknown.push(format!("{place}: `{name}` is neither registered nor a recording rule"));
            }
        }
    }
    assert!(unknown.is_empty(), "unregistered metric names:\n{}", unknown.join("\n"));
}

/// Every PromQL string in a dashboard: `expr` of targets and `query`/`definition` of template variables, except
/// under a non-Prometheus datasource (Loki's LogQL and trace queries are not PromQL). A datasource set on a panel
/// applies to its targets unless a target sets its own.
fn collect_dashboard_queries(value: &serde_json::Value, place: &str, into: &mut Vec<(String, String)>) {
    collect_queries(value, place, false, into);
}

fn is_other_datasource(datasource: &serde_json::Value) -> bool {
    let text = datasource.to_string().to_ascii_lowercase();
    ["loki", "tempo", "jaeger", "alertmanager"].iter().any(|kind| text.contains(kind))
}

fn collect_queries(value: &serde_json::Value, place: &str, inherited_skip: bool, into: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(object) => {
            let skip = object.get("datasource").map_or(inherited_skip, is_other_datasource);
            for (key, item) in object {
                match (key.as_str(), item) {
                    ("expr" | "query" | "definition", serde_json::Value::String(expr)) if !skip => {
                        into.push((place.to_owned(), expr.clone()));
                    }
                    _ => collect_queries(item, place, skip, into),
                }
            }
        }
        serde_json::Value::Array(items) => {
            items.iter().for_each(|item| collect_queries(item, place, inherited_skip, into));
        }
        _ => {}
    }
}
