//! Grafana as code (issue 4 §4), tested without Grafana (which cannot run here):
//!
//! - `every_dashboard_validates_against_grafanas_published_dashboard_schema`: each dashboard in
//!   `monitoring/grafana/dashboards/` validates against a JSON Schema generated from Grafana's own published
//!   `Dashboard` type (npm `@grafana/schema`, `ts-json-schema-generator`, checked by `check-jsonschema`; see
//!   `e2e::grafana`), every panel's `options` validate against the `Options` type its panel plugin publishes
//!   in the same package, each uses the current `schemaVersion` of that release, and a deliberately broken
//!   copy is rejected (the check can fail).
//! - `dashboards_and_provisioning_follow_the_conventions`: the five dashboards with stable uids (= file
//!   names), a description and a unit on every panel, `$__rate_interval` (or `$__range`) for every range, only
//!   provisioned data source uids; the provisioning files give Prometheus, Tempo, Loki and Alertmanager their
//!   fixed uids and wire exemplars → Tempo, trace → logs → Loki, log trace ids → Tempo, and load the dashboards.
//! - `every_panel_query_returns_data_from_prometheus_scraping_the_real_services`: the whole system as real
//!   processes under traffic, scraped by a real Prometheus evaluating the shipped rules; every PromQL query of
//!   every panel and variable, with each value of the dashboard's variables, must be accepted and return data.
//!   Panels that can only show data under a fault are listed in [`NEEDS_A_FAULT`]; the test first checks that
//!   nothing outside that list is empty on healthy traffic, then produces those faults and requires data
//!   everywhere.
//!
//! Needs Node.js/npm and Python 3 (the schema toolchain, installed on first use into
//! `~/.cache/taskwatch/grafana-schema-…`), the service binaries, tansu (`TASKWATCH_TANSU_BIN`) and Debian's
//! `prometheus` package.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use e2e::grafana::{Dashboard, SchemaToolchain, grafana_dir, substitute};
use e2e::kafka::RawMessage;
use e2e::monitoring::{Prometheus, PrometheusConfig, Sample};
use e2e::sse::TaskStreamClient;
use e2e::time::{rfc3339, seconds_from_now};
use e2e::{DEADLINE, INTERNAL_SERVICE_TOKEN, PIPELINE_DEADLINE, Service, Stack};
use serde_json::{Value, json};

/// The dashboards issue 4 asks for, by uid (each in `<uid>.json`).
const DASHBOARDS: &[&str] = &[
    "taskwatch-overview",
    "taskwatch-service",
    "taskwatch-pipeline",
    "taskwatch-reminders-notifications",
    "taskwatch-slo",
];

/// The provisioned data sources: uid and plugin type.
const DATASOURCES: &[(&str, &str)] =
    &[("prometheus", "prometheus"), ("tempo", "tempo"), ("loki", "loki"), ("alertmanager", "alertmanager")];

/// Panels (dashboard uid, panel title, ref id) whose query is legitimately empty while everything is healthy,
/// and the fault the live test produces to fill them. A `*` ref id means every query of the panel.
const NEEDS_A_FAULT: &[(&str, &str, &str, &str)] = &[
    ("taskwatch-slo", "Time to budget exhaustion", "*", "backend API errors (error_ratio fault): something burns"),
    ("taskwatch-slo", "Burn-rate alerts", "*", "backend API errors: the availability burn-rate alerts go pending"),
    ("taskwatch-service", "Breaker transitions and rejections", "*", "recurring-task → backend outage fault"),
    ("taskwatch-service", "Fallback cache answers", "*", "notification → backend outage during a reminder"),
];

const SCRAPE: &str = "1s";

fn dashboards() -> Vec<Dashboard> {
    let dashboards = Dashboard::load_all().expect("dashboards load");
    assert!(!dashboards.is_empty(), "no dashboards in monitoring/grafana/dashboards/");
    dashboards
}

#[test]
fn every_dashboard_validates_against_grafanas_published_dashboard_schema() {
    let toolchain = SchemaToolchain::ensure().unwrap_or_else(|error| panic!("{error}"));
    let files: Vec<_> = dashboards().into_iter().map(|dashboard| dashboard.path).collect();
    if let Err(error) = toolchain.validate(&files) {
        panic!("dashboards do not match Grafana's Dashboard schema:\n{error}");
    }

    // Panel `options` are free-form in the Dashboard type; each panel plugin publishes its own `Options`.
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut by_type: BTreeMap<String, Vec<std::path::PathBuf>> = BTreeMap::new();
    for dashboard in dashboards() {
        for panel in dashboard.panels() {
            let kind = panel["type"].as_str().unwrap_or_default().to_owned();
            let path = dir.path().join(format!("{}--panel-{}.json", dashboard.uid(), panel["id"]));
            std::fs::write(&path, panel["options"].to_string()).expect("panel options written");
            by_type.entry(kind).or_default().push(path);
        }
    }
    let mut invalid = Vec::new();
    for (kind, files) in &by_type {
        let checked =
            toolchain.panel_options_schema(kind).and_then(|schema| toolchain.validate_against(&schema, files));
        if let Err(error) = checked {
            invalid.push(format!("`{kind}` panels:\n{error}"));
        }
    }
    assert!(invalid.is_empty(), "panel options do not match their plugin's published Options:\n{}", invalid.join("\n"));

    let current = toolchain.current_schema_version().expect("the package's current schemaVersion");
    for dashboard in dashboards() {
        assert_eq!(
            dashboard.json["schemaVersion"].as_u64(),
            Some(current),
            "{}: schemaVersion is not the current one of @grafana/schema ({current})",
            dashboard.path.display()
        );
    }

    // The check can fail: a copy with a misspelt top-level field and a panel without its required `type` is
    // rejected, each violation named.
    let mut broken = dashboards().remove(0).json;
    broken["schemaversion"] = json!(42);
    if let Some(panels) = broken["panels"].as_array_mut() {
        panels.push(json!({ "title": "no type", "gridPos": { "h": 1, "w": 1, "x": 0, "y": 0 } }));
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("broken.json");
    std::fs::write(&path, broken.to_string()).expect("broken copy written");
    let rejected = toolchain.validate(&[path]).expect_err("a broken dashboard must not validate");
    let message = rejected.to_string();
    assert!(message.contains("schemaversion"), "the misspelt field is not reported:\n{message}");
}

#[test]
fn dashboards_and_provisioning_follow_the_conventions() {
    let dashboards = dashboards();
    let uids: BTreeSet<&str> = dashboards.iter().map(Dashboard::uid).collect();
    assert_eq!(uids, DASHBOARDS.iter().copied().collect(), "the dashboards (by uid) are not the expected five");
    let provisioned: BTreeSet<&str> = DATASOURCES.iter().map(|(uid, _)| *uid).collect();

    let mut problems = Vec::new();
    for dashboard in &dashboards {
        let name = dashboard.file_stem();
        if dashboard.uid() != name {
            problems.push(format!("{name}: uid {:?} differs from the file name", dashboard.uid()));
        }
        for field in ["title", "description"] {
            if dashboard.json[field].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{name}: no {field}"));
            }
        }
        if !dashboard.json["tags"].as_array().is_some_and(|tags| tags.contains(&json!("taskwatch"))) {
            problems.push(format!("{name}: not tagged `taskwatch` (the dashboards' links menu lists that tag)"));
        }
        let mut ids = BTreeSet::new();
        for panel in dashboard.json["panels"].as_array().into_iter().flatten() {
            if !ids.insert(panel["id"].as_u64()) {
                problems.push(format!("{name}: panel id {} used twice", panel["id"]));
            }
            let grid = &panel["gridPos"];
            let right = grid["x"].as_u64().unwrap_or(99) + grid["w"].as_u64().unwrap_or(99);
            if right > 24 {
                problems.push(format!("{name}: panel {} reaches past the 24-column grid", panel["title"]));
            }
        }
        for panel in dashboard.panels() {
            let title = panel["title"].as_str().unwrap_or("(untitled)");
            if panel["description"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{name}: panel `{title}` has no description"));
            }
            if panel["fieldConfig"]["defaults"]["unit"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{name}: panel `{title}` has no unit"));
            }
            let uid = panel["datasource"]["uid"].as_str().unwrap_or_default();
            if panel["type"] != "text" && !provisioned.contains(uid) {
                problems.push(format!("{name}: panel `{title}` uses data source {uid:?}, which is not provisioned"));
            }
        }
        for query in dashboard.queries() {
            if !provisioned.contains(query.datasource.as_str()) {
                problems.push(format!(
                    "{name}: `{}` queries unprovisioned data source {:?}",
                    query.panel, query.datasource
                ));
            }
            if query.is_prometheus() {
                for range in ranges(&query.expr) {
                    if range != "$__rate_interval" && range != "$__range" {
                        problems.push(format!(
                            "{name}: `{}` takes a range of [{range}]: use $__rate_interval (or $__range for totals \
                             over the time picked), or a recording rule",
                            query.panel
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "dashboard conventions broken:\n{}", problems.join("\n"));

    // Provisioning: fixed uids and types, and the links between signals.
    let datasources = yaml(&grafana_dir().join("provisioning/datasources/taskwatch.yaml"));
    let by_uid: BTreeMap<&str, &serde_norway::Value> = datasources["datasources"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|source| Some((source["uid"].as_str()?, source)))
        .collect();
    for (uid, kind) in DATASOURCES {
        let source = by_uid.get(uid).unwrap_or_else(|| panic!("data source uid {uid} is not provisioned"));
        assert_eq!(source["type"].as_str(), Some(*kind), "data source {uid}");
        assert!(source["url"].as_str().is_some_and(|url| url.starts_with("http://")), "data source {uid} has no URL");
    }
    let prometheus = &by_uid["prometheus"]["jsonData"];
    let exemplars = &prometheus["exemplarTraceIdDestinations"][0];
    assert_eq!(exemplars["name"].as_str(), Some("trace_id"), "exemplars are not read from `trace_id`");
    assert_eq!(exemplars["datasourceUid"].as_str(), Some("tempo"), "exemplars do not open Tempo");
    let tempo = &by_uid["tempo"]["jsonData"];
    assert_eq!(tempo["tracesToLogsV2"]["datasourceUid"].as_str(), Some("loki"), "traces do not link to Loki");
    assert_eq!(tempo["serviceMap"]["datasourceUid"].as_str(), Some("prometheus"), "no service map from Prometheus");
    let derived = &by_uid["loki"]["jsonData"]["derivedFields"][0];
    assert_eq!(derived["datasourceUid"].as_str(), Some("tempo"), "log trace ids do not link to Tempo");
    let pattern = derived["matcherRegex"].as_str().expect("a matcher regex");
    // The JSON log line's field (shared/observability/src/json_log.rs), a 32-hex-digit OpenTelemetry trace id.
    assert!(pattern.contains(r#""trace_id":""#) && pattern.contains("[0-9a-f]{32}"), "unexpected matcher {pattern}");
    assert_eq!(
        by_uid["alertmanager"]["jsonData"]["implementation"].as_str(),
        Some("prometheus"),
        "Alertmanager is not Prometheus' implementation"
    );
    let providers = yaml(&grafana_dir().join("provisioning/dashboards/taskwatch.yaml"));
    let provider = &providers["providers"][0];
    assert_eq!(provider["folder"].as_str(), Some("Taskwatch"));
    assert_eq!(provider["type"].as_str(), Some("file"));
    assert!(provider["options"]["path"].as_str().is_some(), "the dashboards provider has no path");
}

/// Series recorded without a `namespace`: constants, the same in every namespace.
const NAMESPACE_FREE: &[&str] = &["taskwatch_slo:objective:ratio", "taskwatch_slo:error_budget:ratio"];

/// One Prometheus may watch several releases: every dashboard picks one namespace, every selector of every panel
/// keeps to it, and the service lists come from the `part_of="taskwatch"` target label, never from names
/// written into a query (a generated service would be missing).
#[test]
fn every_panel_keeps_to_the_chosen_namespace_and_no_query_lists_the_services() {
    let mut problems = Vec::new();
    for dashboard in dashboards() {
        let name = dashboard.uid().to_owned();
        let variables = dashboard.variables();
        match variables.first() {
            Some(first) if first.name == "namespace" => {
                let query = first.query.as_deref().unwrap_or_default();
                if !query.contains(r#"up{part_of="taskwatch"}"#) {
                    problems
                        .push(format!("{name}: $namespace does not list the namespaces Taskwatch runs in: {query}"));
                }
            }
            _ => problems.push(format!("{name}: the first variable is not $namespace")),
        }
        for variable in variables.iter().skip(1) {
            let query = variable.query.as_deref().unwrap_or_default();
            if query.contains("up{") && !query.contains("part_of=\"taskwatch\"") {
                problems.push(format!("{name}: ${} lists targets by name: {query}", variable.name));
            }
        }
        for query in dashboard.queries().into_iter().filter(|query| query.is_prometheus()) {
            if query.expr.contains("backend|") || query.expr.contains("|notification") {
                problems.push(format!("{name}: `{}` names the services: {}", query.panel, query.expr));
            }
            for selector in e2e::monitoring::promql::selectors(&query.expr) {
                let constant = selector.name.as_deref().is_some_and(|metric| NAMESPACE_FREE.contains(&metric));
                // ALERTS may add the monitoring's own alerts, which have no namespace (`$namespace|`).
                let alerts = selector.name.as_deref() == Some("ALERTS")
                    && selector.matchers.contains(r#"namespace=~"$namespace|""#);
                if !constant && !alerts && !selector.matchers.contains(r#"namespace=~"$namespace""#) {
                    problems.push(format!(
                        "{name}: `{}` reads {:?} from every namespace: {}",
                        query.panel, selector.name, query.expr
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "dashboards that mix namespaces or list services:\n{}", problems.join("\n"));
}

/// The logs panels say what they select: every label of a Loki stream selector is named in the panel's
/// description, and the service dashboard links to its service's traces in Tempo's Explore view.
#[test]
fn logs_panels_describe_their_selector_and_the_service_dashboard_links_to_its_traces() {
    let mut problems = Vec::new();
    for dashboard in dashboards() {
        let panels = dashboard.panels();
        for query in dashboard.queries().into_iter().filter(|query| query.datasource == "loki") {
            let description = panels
                .iter()
                .find(|panel| panel["title"].as_str() == Some(query.panel.as_str()))
                .and_then(|panel| panel["description"].as_str())
                .unwrap_or_default();
            let selector = query.expr.split_once('{').and_then(|(_, rest)| rest.split_once('}')).map(|(s, _)| s);
            for label in selector.unwrap_or_default().split(',').filter_map(|m| m.split(['=', '!']).next()) {
                let label = label.trim();
                if !label.is_empty() && !description.contains(&format!("`{label}`")) {
                    problems.push(format!(
                        "{} / {}: the description does not name `{label}`",
                        dashboard.uid(),
                        query.panel
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let service = dashboards().into_iter().find(|d| d.uid() == "taskwatch-service").expect("the service dashboard");
    let explore: Vec<Value> = service.json["links"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|link| link["url"].as_str())
        .filter(|url| url.starts_with("/explore?"))
        .filter_map(|url| {
            let parsed = reqwest::Url::parse(&format!("http://grafana{url}")).ok()?;
            let panes = parsed.query_pairs().find(|(key, _)| key == "panes")?.1.into_owned();
            serde_json::from_str(&panes).ok()
        })
        .collect();
    let to_tempo = explore.iter().any(|panes| {
        let pane = &panes["a"];
        pane["datasource"] == "tempo"
            && pane["queries"][0]["query"]
                .as_str()
                .is_some_and(|q| q.contains("resource.service.name") && q.contains("${service}"))
    });
    assert!(to_tempo, "no Explore link to the service's traces in Tempo: {explore:?}");
}

/// Every data link into a Taskwatch dashboard (`/d/<uid>/…?var-<name>=…`) names a dashboard that exists and
/// variables it has, so a drill-down never lands on "dashboard not found" or an ignored filter.
#[test]
fn drill_down_links_lead_to_existing_dashboards_and_variables() {
    let dashboards = dashboards();
    let variables = |uid: &str| -> Option<Vec<String>> {
        let dashboard = dashboards.iter().find(|dashboard| dashboard.json["uid"] == uid)?;
        let list = dashboard.json["templating"]["list"].as_array().cloned().unwrap_or_default();
        Some(list.iter().filter_map(|variable| variable["name"].as_str().map(str::to_owned)).collect())
    };
    let mut links = 0;
    let mut problems = Vec::new();
    for dashboard in &dashboards {
        for panel in dashboard.json["panels"].as_array().into_iter().flatten() {
            for link in panel["fieldConfig"]["defaults"]["links"].as_array().into_iter().flatten() {
                let url = link["url"].as_str().unwrap_or_default();
                let Some(rest) = url.strip_prefix("/d/") else { continue };
                links += 1;
                let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
                let uid = path.split('/').next().unwrap_or_default();
                let Some(known) = variables(uid) else {
                    problems.push(format!("{}: {url} names no dashboard", panel["title"]));
                    continue;
                };
                for name in query.split('&').filter_map(|pair| pair.strip_prefix("var-")?.split('=').next()) {
                    if !known.iter().any(|variable| variable == name) {
                        problems.push(format!("{}: {url} sets `{name}`, which {uid} does not have", panel["title"]));
                    }
                }
            }
        }
    }
    assert!(links > 0, "no drill-down links at all");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn yaml(path: &std::path::Path) -> serde_norway::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The contents of every `[...]` range or subquery bracket in `expr` (outside strings).
fn ranges(expr: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_string: Option<char> = None;
    let mut current: Option<String> = None;
    for c in expr.chars() {
        match (in_string, c) {
            (Some(quote), c) if c == quote => in_string = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => in_string = Some(c),
            (None, '[') => current = Some(String::new()),
            (None, ']') => found.extend(current.take()),
            (None, c) => {
                if let Some(range) = current.as_mut() {
                    range.push(c);
                }
            }
        }
    }
    found
}

// --------------------------------------------------------------------------------------------------------
// The live test.

/// A query as sent, for messages.
struct Sent {
    place: String,
    expr: String,
}

/// Every Prometheus query of every dashboard (panels, then variables), once per value of the dashboard's
/// variables, with the values each variable's own query yields on `prometheus`.
async fn every_query(prometheus: &Prometheus, dashboards: &[Dashboard]) -> Vec<(Sent, Result<Vec<Sample>, String>)> {
    let mut results = Vec::new();
    for dashboard in dashboards {
        let mut choices: Vec<BTreeMap<String, String>> = vec![BTreeMap::new()];
        for variable in dashboard.variables() {
            let query = variable.query.clone().unwrap_or_default();
            let inner = query
                .strip_prefix("query_result(")
                .and_then(|rest| rest.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{}: variable {} is not a query_result(…)", dashboard.uid(), variable.name));
            let label = variable_label(variable.regex.as_deref().unwrap_or_default());
            // A variable may read the ones before it (the service list of the chosen namespace).
            let mut next = Vec::new();
            for choice in &choices {
                let expr = substitute(inner, choice);
                let answer = prometheus.query(&expr).await;
                let mut options: Vec<String> = answer
                    .as_ref()
                    .map(|samples| {
                        samples.iter().filter_map(|sample| sample.label(&label).map(str::to_owned)).collect()
                    })
                    .unwrap_or_default();
                options.sort();
                options.dedup();
                results.push((
                    Sent { place: format!("{} variable ${} {choice:?}", dashboard.uid(), variable.name), expr },
                    answer.map_err(|error| error.to_string()),
                ));
                if let Some(all) = &variable.all_value {
                    options.push(all.clone());
                }
                for value in options {
                    let mut choice = choice.clone();
                    choice.insert(variable.name.clone(), value);
                    next.push(choice);
                }
            }
            choices = next;
        }
        for query in dashboard.queries().into_iter().filter(|query| query.is_prometheus()) {
            for choice in &choices {
                let expr = substitute(&query.expr, choice);
                let answer = prometheus.query(&expr).await.map_err(|error| error.to_string());
                let place = format!("{} / {} / {} {choice:?}", dashboard.uid(), query.panel, query.ref_id);
                results.push((Sent { place, expr }, answer));
            }
        }
    }
    results
}

/// The label a variable's regex extracts, e.g. `job` from `/job="([^"]+)"/`.
fn variable_label(regex: &str) -> String {
    regex.trim_start_matches('/').split("=\"").next().unwrap_or_default().to_owned()
}

fn needs_a_fault(place: &str) -> bool {
    NEEDS_A_FAULT.iter().any(|(uid, panel, ref_id, _)| {
        let prefix =
            if *ref_id == "*" { format!("{uid} / {panel} / ") } else { format!("{uid} / {panel} / {ref_id} ") };
        place.starts_with(&prefix)
    })
}

/// Every query Prometheus refused, and every query (among those `must_have_data` selects) that came back empty.
/// Templated panels need data for at least one value of their variables (a service without an API has no
/// API routes, a service without a database no pool).
fn problems(results: &[(Sent, Result<Vec<Sample>, String>)], must_have_data: impl Fn(&str) -> bool) -> Vec<String> {
    let mut problems = Vec::new();
    let mut data_by_query: BTreeMap<String, bool> = BTreeMap::new();
    for (sent, answer) in results {
        let query = sent.place.split(" {").next().unwrap_or(&sent.place).to_owned();
        match answer {
            Err(error) => problems.push(format!("{}: refused: {error}\n    {}", sent.place, sent.expr)),
            Ok(samples) => *data_by_query.entry(query).or_default() |= !samples.is_empty(),
        }
    }
    for (query, has_data) in data_by_query {
        if !has_data && must_have_data(&query) {
            let exprs: Vec<&str> = results
                .iter()
                .filter(|(sent, _)| sent.place.starts_with(&query))
                .map(|(sent, _)| sent.expr.as_str())
                .collect();
            problems.push(format!("{query}: no data\n    {}", exprs.join("\n    ")));
        }
    }
    problems
}

/// [`problems`] once there are none, or after [`PIPELINE_DEADLINE`] the last ones. A histogram or counter
/// series appears with its first observation, and a rate needs two scrapes of it: the last effects of the
/// driven traffic may take a few scrapes (and rule evaluations) to show.
async fn settled_problems(
    prometheus: &Prometheus,
    dashboards: &[Dashboard],
    must_have_data: impl Fn(&str) -> bool + Copy,
) -> (Vec<String>, Vec<(Sent, Result<Vec<Sample>, String>)>) {
    let deadline = tokio::time::Instant::now() + PIPELINE_DEADLINE;
    loop {
        let results = every_query(prometheus, dashboards).await;
        let found = problems(&results, must_have_data);
        if found.is_empty() || tokio::time::Instant::now() >= deadline {
            return (found, results);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn set_fault(stack: &Stack, service: Service, plan: Value) {
    let response = reqwest::Client::new()
        .put(format!("{}/admin/faults", stack.url(service)))
        .bearer_auth(INTERNAL_SERVICE_TOKEN)
        .json(&plan)
        .send()
        .await
        .expect("the fault switch answers");
    let status = response.status();
    assert_eq!(
        status,
        200,
        "fault {plan} refused by {}: {}",
        service.name(),
        response.text().await.unwrap_or_default()
    );
}

#[tokio::test]
async fn every_panel_query_returns_data_from_prometheus_scraping_the_real_services() {
    let dashboards = dashboards();
    let stack = Stack::builder()
        .env(Service::Backend, "FAULT_INJECTION_ENABLED", "true")
        .env(Service::RecurringTask, "FAULT_INJECTION_ENABLED", "true")
        .env(Service::Notification, "FAULT_INJECTION_ENABLED", "true")
        // The settings looked up for the first reminder answer the one during notification's backend outage.
        .env(Service::Notification, "BACKEND_SETTINGS_CACHE_TTL", "10m")
        // A failing webhook is given up on at once: a dead letter without waiting out the retries.
        .env(Service::Notification, "NOTIFY_MAX_ATTEMPTS", "1")
        .start()
        .await
        .expect("stack starts");

    let jobs = stack.scrape_jobs(Service::ALL);
    let config = PrometheusConfig::from_repo()
        .and_then(|config| config.intervals(SCRAPE, SCRAPE))
        .and_then(|config| config.alertmanager(None))
        .and_then(|config| config.only_jobs(&jobs))
        .expect("prometheus test config");
    let prometheus = Prometheus::start(&config).await.expect("prometheus starts");
    for &service in Service::ALL {
        prometheus.wait_until_scraped(service.name(), DEADLINE).await.expect("service scraped");
    }

    // Steady API traffic for the whole test: lists, creations, reads of a missing task (404s).
    let alice = stack.api("grafana").expect("client");
    alice.save_notification_settings(Some("grafana@example.com"), Some(&stack.webhook.url())).await.expect("settings");
    let traffic_user = stack.api("grafana-traffic").expect("client");
    // The traffic user's task stream stays open, so its creations are streamed (the live task stream panels).
    let _traffic_stream =
        TaskStreamClient::open(&stack.url(Service::Backend), traffic_user.token(), None).await.expect("stream opens");
    let traffic = {
        let user = traffic_user;
        tokio::spawn(async move {
            for round in 0u64.. {
                let _ = user.tasks_with_status("open").await;
                if round % 10 == 0 {
                    let _ = user.create_task(&json!({ "title": format!("traffic {round}") })).await;
                    let _ = user.task("0190b2c1-0000-7000-8000-000000000000").await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // A recurring task whose reminder falls due within seconds (e-mail and webhook), then completed: the
    // reminder, notification and recurrence paths all run.
    let first = alice
        .create_task(&json!({
            "title": "Grafana: first reminder",
            "due_at": rfc3339(seconds_from_now(65)),
            "time_zone": "UTC",
            "recurrence": { "rrule": "FREQ=DAILY", "anchor": "due" },
            "reminders": [{ "kind": "before_due", "minutes": 1 }],
        }))
        .await
        .expect("task created");
    let webhook = stack.wait_for_webhook(|_| true, PIPELINE_DEADLINE).await;
    assert!(webhook.is_some(), "no webhook call:\n{}", stack.output(Service::Notification));
    alice.complete(first["id"].as_str().expect("id")).await.expect("completed");
    let series = first["series_id"].as_str().expect("series id");
    let next = alice.wait_for_open_in_series(series, PIPELINE_DEADLINE).await;
    assert!(next.is_some(), "no next occurrence:\n{}", stack.output(Service::RecurringTask));

    // Healthy: wait until the 5-minute recording rules see the traffic and the reminder, then only the
    // listed panels may be empty.
    for ready in [
        r#"job:http_server_requests:rate5m{job="backend"} > 0"#,
        "job:taskwatch_reminders_fired:rate5m > 0",
        "rate(taskwatch_task_stream_lag_seconds_count[1m]) > 0",
        r#"taskwatch_notification_deliveries_total{outcome="sent"} > 0"#,
        r#"taskwatch_slo:sli_error:ratio_rate5m{slo="notification-delivery"}"#,
    ] {
        prometheus.wait_for(ready, PIPELINE_DEADLINE, |samples| !samples.is_empty()).await.expect("healthy data");
    }
    let (unexpected, healthy) = settled_problems(&prometheus, &dashboards, |query| !needs_a_fault(query)).await;
    assert!(unexpected.is_empty(), "on healthy traffic (outside NEEDS_A_FAULT):\n{}", unexpected.join("\n"));
    // The list is exact: a listed panel that shows data without its fault does not belong in it.
    let stale: Vec<&str> = healthy
        .iter()
        .filter(|(sent, answer)| needs_a_fault(&sent.place) && answer.as_ref().is_ok_and(|samples| !samples.is_empty()))
        .map(|(sent, _)| sent.place.as_str())
        .collect();
    assert!(stale.is_empty(), "listed in NEEDS_A_FAULT, yet showing data on healthy traffic:\n{}", stale.join("\n"));

    // The faults the listed panels need.
    // Consumer dead letters: not a CloudEvent, on each consumed topic.
    for topic in ["task-events", "reminders"] {
        let garbage = RawMessage::not_a_cloud_event(topic, "grafana");
        stack.republish(&garbage).await.expect("garbage published");
    }
    // Dead-lettered before the backend outage below: a consumer retries a transient failure in place, so a
    // completion stuck behind the outage on the same partition would hold the garbage back.
    let dead_letters = "sum(taskwatch_messages_dead_lettered_total) >= 3";
    if let Err(error) = prometheus.wait_for(dead_letters, PIPELINE_DEADLINE, |samples| !samples.is_empty()).await {
        panic!(
            "the undecodable messages were not dead-lettered: {error}\nrecurring-task:\n{}\nreminder:\n{}",
            stack.output(Service::RecurringTask),
            stack.output(Service::Reminder)
        );
    }
    // recurring-task cannot reach the backend: a completion opens its breaker and fails by reason.
    set_fault(&stack, Service::RecurringTask, json!({ "outages": ["backend"] })).await;
    let recurring = alice
        .create_task(&json!({
            "title": "Grafana: completed during an outage",
            "due_at": "2030-06-03T07:00:00Z",
            "time_zone": "UTC",
            "recurrence": { "rrule": "FREQ=DAILY", "anchor": "due" },
        }))
        .await
        .expect("task created");
    alice.complete(recurring["id"].as_str().expect("id")).await.expect("completed");
    // notification cannot reach the backend and the webhook fails: a reminder now is sent with the cached
    // settings (fallback cache) and its webhook delivery is dead-lettered.
    set_fault(&stack, Service::Notification, json!({ "outages": ["backend"] })).await;
    stack.webhook.respond_with(500);
    alice
        .create_task(&json!({
            "title": "Grafana: reminder during an outage",
            "due_at": rfc3339(seconds_from_now(65)),
            "time_zone": "UTC",
            "reminders": [{ "kind": "before_due", "minutes": 1 }],
        }))
        .await
        .expect("task created");
    // API errors last (the calls above must not fail): the availability SLO burns, its page goes pending.
    set_fault(&stack, Service::Backend, json!({ "http": { "error_ratio": 0.3 } })).await;

    for (expr, what) in [
        (dead_letters, "consumer dead letters"),
        (r#"taskwatch_circuit_breaker_transitions_total{job="recurring-task", to_state="open"}"#, "breaker opened"),
        ("taskwatch_recurring_failures_total", "recurrence failures"),
        ("taskwatch_client_fallback_cache_hits_total > 0", "fallback cache answers"),
        ("taskwatch_notification_dead_letters_total > 0", "dead delivery"),
        (r#"ALERTS{alertname="BackendApiAvailabilityErrorBudgetBurn"}"#, "burn-rate alert"),
    ] {
        if let Err(error) = prometheus.wait_for(expr, PIPELINE_DEADLINE, |samples| !samples.is_empty()).await {
            panic!(
                "the fault for `{what}` showed no effect: {error}\nrecurring-task:\n{}\nnotification:\n{}",
                stack.output(Service::RecurringTask),
                stack.output(Service::Notification)
            );
        }
    }

    let (empty, _) = settled_problems(&prometheus, &dashboards, |_| true).await;
    traffic.abort();
    assert!(empty.is_empty(), "with the faults on:\n{}", empty.join("\n"));
}
