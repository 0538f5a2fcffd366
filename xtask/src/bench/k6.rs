//! Drives the backend with k6 (bench/k6/tasks.js) from a separate process and reads back its figures.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::children::{self, Ended};
use crate::interrupt::Interrupt;

/// k6 finishes in-flight requests for up to 5 s after a scenario ends (`gracefulStop` in the script).
const STOP_GRACE: Duration = Duration::from_secs(15);

/// The endpoints measured one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    Create,
    Get,
    List,
    Complete,
}

impl Endpoint {
    /// In the order they run: `get` and `list` read what `create` wrote, `complete` then uses those tasks up.
    pub const ALL: [Endpoint; 4] = [Endpoint::Create, Endpoint::Get, Endpoint::List, Endpoint::Complete];

    /// The scenario and tag name in the k6 script.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Create => "create",
            Endpoint::Get => "get",
            Endpoint::List => "list",
            Endpoint::Complete => "complete",
        }
    }

    pub fn route(self) -> &'static str {
        match self {
            Endpoint::Create => "POST /v1/tasks",
            Endpoint::Get => "GET /v1/tasks/{id}",
            Endpoint::List => "GET /v1/tasks?status=open",
            Endpoint::Complete => "POST /v1/tasks/{id}/complete",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// One k6 run of the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Unreported: fills connection pools and caches before the first measured run.
    Warmup,
    /// Constant arrival rate over a mix of all endpoints.
    Mixed,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Warmup => "warmup",
            Scenario::Mixed => "mixed",
        }
    }
}

/// Latency and volume of a set of requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latencies {
    pub requests: u64,
    /// Requests answered with a status the generator does not expect (>= 400) or not answered.
    pub failed: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// What one load run measured, in the same shape from k6 (bench/k6/tasks.js) and wrk (bench/wrk/tasks.lua).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSummary {
    pub by_endpoint: BTreeMap<Endpoint, Latencies>,
    /// Every measured request together.
    pub all: Option<Latencies>,
    /// Every request of the run, setup and unmeasured ones included.
    pub total_requests: u64,
    /// From the first measured request's start to the last one's end.
    pub active_window: Duration,
    /// Arrivals k6 could not start because every virtual user was busy (open loop only; 0 from wrk).
    pub dropped_iterations: u64,
    /// Virtual users k6 had to allocate (open loop only; 0 from wrk).
    pub max_vus: u64,
}

impl LoadSummary {
    /// Requests per second of `endpoint` over the active window.
    pub fn throughput(&self, endpoint: Endpoint) -> Option<f64> {
        let requests = self.by_endpoint.get(&endpoint)?.requests;
        let seconds = self.active_window.as_secs_f64();
        (seconds > 0.0).then(|| requests as f64 / seconds)
    }

    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text).context("the load summary is not JSON")?;
        let mut by_endpoint = BTreeMap::new();
        for endpoint in Endpoint::ALL {
            let figures = &value["endpoints"][endpoint.name()];
            if !figures.is_null() {
                by_endpoint.insert(endpoint, latencies(figures).with_context(|| format!("endpoint {endpoint}"))?);
            }
        }
        let all = match &value["all"] {
            serde_json::Value::Null => None,
            figures => Some(latencies(figures).context("all requests")?),
        };
        let window_ms = number(&value, "active_window_ms")?;
        Ok(Self {
            by_endpoint,
            all,
            total_requests: number(&value, "total_requests")? as u64,
            active_window: Duration::from_secs_f64(window_ms.max(0.0) / 1000.0),
            dropped_iterations: number(&value, "dropped_iterations")? as u64,
            max_vus: number(&value, "max_vus")? as u64,
        })
    }
}

fn latencies(value: &serde_json::Value) -> anyhow::Result<Latencies> {
    Ok(Latencies {
        requests: number(value, "requests")? as u64,
        failed: number(value, "failed")? as u64,
        p50_ms: number(value, "p50_ms")?,
        p90_ms: number(value, "p90_ms")?,
        p99_ms: number(value, "p99_ms")?,
        max_ms: number(value, "max_ms")?,
    })
}

fn number(value: &serde_json::Value, name: &str) -> anyhow::Result<f64> {
    value[name].as_f64().with_context(|| format!("the load summary lacks the number `{name}`"))
}

/// How to run k6 against one backend.
#[derive(Debug, Clone)]
pub struct K6Runner<'a> {
    pub k6: &'a Path,
    pub script: &'a Path,
    pub base_url: String,
    /// Comma-separated bearer tokens, one API user each.
    pub tokens: &'a str,
    /// Virtual users of the closed-loop scenarios.
    pub vus: u32,
    /// Arrival rate of the mixed scenario, per second.
    pub rate: u32,
    /// Where summaries go, named `k6-{label}-{scenario}.json`.
    pub results_dir: &'a Path,
    pub label: &'static str,
}

impl K6Runner<'_> {
    pub async fn run(
        &self,
        scenario: Scenario,
        duration: Duration,
        interrupt: &mut Interrupt,
    ) -> anyhow::Result<LoadSummary> {
        let summary_path = self.results_dir.join(format!("k6-{}-{}.json", self.label, scenario.name()));
        let mut command = tokio::process::Command::new(self.k6);
        command
            .args(["run", "--quiet", "--no-usage-report", "--no-color"])
            .arg(self.script)
            // Passed through the environment, not the command line, where every process could read the tokens.
            .env("BENCH_SCENARIO", scenario.name())
            .env("BENCH_BASE_URL", &self.base_url)
            .env("BENCH_TOKENS", self.tokens)
            .env("BENCH_VUS", self.vus.to_string())
            .env("BENCH_RATE", self.rate.to_string())
            .env("BENCH_DURATION", format!("{}ms", duration.as_millis()))
            .env("BENCH_SUMMARY_PATH", &summary_path);
        let run = format!("k6 {} scenario", scenario.name());
        run_to_summary("k6", &run, &mut command, &summary_path, STOP_GRACE, interrupt).await
    }
}

/// Runs a load generator (`program`, doing `run`) that writes its figures to `summary_path`, and reads them back.
/// A summary an earlier run left there is removed first, so it can never pass for this run's.
pub async fn run_to_summary(
    program: &str,
    run: &str,
    command: &mut tokio::process::Command,
    summary_path: &Path,
    stop_grace: Duration,
    interrupt: &mut Interrupt,
) -> anyhow::Result<LoadSummary> {
    if summary_path.exists() {
        std::fs::remove_file(summary_path).with_context(|| format!("removing {}", summary_path.display()))?;
    }
    let mut child = children::spawn_group_leader(program, command)?;
    match children::wait_or_stop(&mut child, interrupt, stop_grace)
        .await
        .with_context(|| format!("waiting for {program}"))?
    {
        Ended::Interrupted => bail!("interrupted during the {run}"),
        Ended::Exited(status) if !status.success() => bail!("{run} failed ({status}); its output is above"),
        Ended::Exited(_) => {}
    }
    let text = std::fs::read_to_string(summary_path)
        .with_context(|| format!("reading {program}'s summary {}", summary_path.display()))?;
    LoadSummary::from_json(&text).with_context(|| format!("in {}", summary_path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMMARY: &str = r#"{
      "scenario": "create",
      "endpoints": {"create": {"requests": 15000, "failed": 2, "avg_ms": 20.9, "p50_ms": 18.6, "p90_ms": 35.2,
                               "p99_ms": 54.5, "max_ms": 112.4}},
      "all": {"requests": 15000, "failed": 2, "avg_ms": 20.9, "p50_ms": 18.6, "p90_ms": 35.2, "p99_ms": 54.5,
              "max_ms": 112.4},
      "total_requests": 15020,
      "active_window_ms": 10000,
      "dropped_iterations": 0,
      "max_vus": 32
    }"#;

    #[test]
    fn summary_gives_throughput_over_the_active_window() {
        let summary = LoadSummary::from_json(SUMMARY).expect("parses");
        assert_eq!(summary.throughput(Endpoint::Create), Some(1500.0));
        assert_eq!(summary.throughput(Endpoint::Get), None);
        let create = summary.by_endpoint[&Endpoint::Create];
        assert_eq!((create.requests, create.failed, create.p99_ms), (15000, 2, 54.5));
    }

    #[test]
    fn summary_without_figures_is_an_error() {
        assert!(LoadSummary::from_json(r#"{"endpoints": {}, "all": null}"#).is_err());
    }
}
