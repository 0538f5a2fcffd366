//! Monitoring for tests: the repo's Prometheus configuration, rules and telemetry registry made testable, and a
//! real Prometheus to evaluate them.
//!
//! - [`PrometheusConfig`]: `monitoring/prometheus/prometheus.yml` rewritten for a test — scrape targets, intervals,
//!   the Alertmanager address and the rule files may change; jobs, relabelling and rules stay as shipped.
//! - [`Prometheus`]: the `prometheus` server as a foreground process on 127.0.0.1 (killed when dropped), with
//!   the HTTP API calls a test needs ([`Prometheus::query`], [`Prometheus::wait_for`], alerts, rules, targets).
//! - [`promtool`]: runs Debian's `promtool`; a missing tool fails naming the package that installs it.
//! - [`registry`]: `monitoring/telemetry/registry.yaml`, the list of every metric the services emit.
//! - [`exposition`]: a Prometheus text exposition read into metric families.
//! - [`promql`]: the metric names a PromQL expression references.

mod config;
mod error;
pub mod exposition;
pub mod promql;
pub mod registry;
mod server;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

pub use config::PrometheusConfig;
pub use error::MonitoringError;
pub use server::{Prometheus, Sample};

use crate::alerting::tools::{self, ToolOutput};

/// `promtool`, from Debian's `prometheus` package.
pub const PROMTOOL: (&str, &str) = ("promtool", "prometheus");
/// The Prometheus server, from Debian's `prometheus` package.
pub const PROMETHEUS: (&str, &str) = ("prometheus", "prometheus");

/// The repository's `monitoring/` directory.
pub fn monitoring_dir() -> PathBuf {
    crate::repo_root().join("monitoring")
}

/// `monitoring/prometheus/`: `prometheus.yml`, `rules/`, `tests/`.
pub fn prometheus_dir() -> PathBuf {
    monitoring_dir().join("prometheus")
}

/// The shipped Prometheus configuration.
pub fn prometheus_config_path() -> PathBuf {
    prometheus_dir().join("prometheus.yml")
}

/// Every rule file (`*.yml`, `*.yaml`) in `monitoring/prometheus/rules/`, sorted.
pub fn rule_files() -> Result<Vec<PathBuf>, MonitoringError> {
    files_with_extension(&prometheus_dir().join("rules"), &["yml", "yaml"])
}

/// Every promtool unit-test file in `monitoring/prometheus/tests/`, sorted.
pub fn rule_test_files() -> Result<Vec<PathBuf>, MonitoringError> {
    files_with_extension(&prometheus_dir().join("tests"), &["yml", "yaml"])
}

/// `monitoring/runbooks/`.
pub fn runbooks_dir() -> PathBuf {
    monitoring_dir().join("runbooks")
}

/// Every Grafana dashboard (`*.json`) under `monitoring/grafana/dashboards/`, sorted; none while the directory
/// does not exist.
pub fn dashboard_files() -> Result<Vec<PathBuf>, MonitoringError> {
    let dir = monitoring_dir().join("grafana/dashboards");
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    collect_recursively(&dir, &mut files)?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "json"));
    files.sort();
    Ok(files)
}

/// The files in `dir` (not recursive) whose extension is one of `extensions`, sorted; an error when `dir`
/// cannot be read.
pub fn files_with_extension(dir: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>, MonitoringError> {
    let entries = std::fs::read_dir(dir).map_err(MonitoringError::io(format!("listing {}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .filter(|path| path.extension().and_then(OsStr::to_str).is_some_and(|ext| extensions.contains(&ext)))
        .collect();
    files.sort();
    Ok(files)
}

fn collect_recursively(dir: &Path, into: &mut Vec<PathBuf>) -> Result<(), MonitoringError> {
    let entries = std::fs::read_dir(dir).map_err(MonitoringError::io(format!("listing {}", dir.display())))?;
    for path in entries.filter_map(Result::ok).map(|entry| entry.path()) {
        if path.is_dir() {
            collect_recursively(&path, into)?;
        } else {
            into.push(path);
        }
    }
    Ok(())
}

/// Runs `promtool ARGS…` and returns what it printed, whatever its exit status (see [`ToolOutput::checked`]).
pub fn promtool<I, S>(args: I) -> Result<ToolOutput, MonitoringError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Ok(tools::run(PROMTOOL, args)?)
}

/// Reads and parses a YAML file.
pub fn read_yaml(path: &Path) -> Result<serde_norway::Value, MonitoringError> {
    let text = std::fs::read_to_string(path).map_err(MonitoringError::io(format!("reading {}", path.display())))?;
    serde_norway::from_str(&text).map_err(|source| MonitoringError::Yaml { path: path.to_owned(), source })
}
