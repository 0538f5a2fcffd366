//! A real Prometheus in the foreground on 127.0.0.1, and the parts of its HTTP API tests use.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use testkit::process::ChildGuard;

use super::{MonitoringError, PROMETHEUS, PrometheusConfig};
use crate::alerting::tools;
use crate::{free_port, wait_until_ok};

/// One element of an instant query's result: its labels (`__name__` included when kept) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels; empty for a scalar result.
    pub labels: BTreeMap<String, String>,
    /// The value at the evaluation instant.
    pub value: f64,
}

impl Sample {
    /// The value of label `name`; `None` when the series has no such label.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// A Prometheus server with its own temporary storage; killed (and the storage removed) when dropped.
#[derive(Debug)]
pub struct Prometheus {
    // Declared first: the process dies before its directory is removed.
    process: ChildGuard,
    port: u16,
    _dir: TempDir,
    client: reqwest::Client,
}

impl Prometheus {
    /// Writes `config` to a temporary directory, starts `prometheus` on a free port with `--web.enable-lifecycle`
    /// (so [`Prometheus::reload`] works) and waits until it reports ready. Firing alerts are re-sent to
    /// Alertmanager every second instead of every minute: a send that precedes Prometheus' discovery of
    /// Alertmanager is then repeated at once (this is the server's own flag, not a change to any rule).
    pub async fn start(config: &PrometheusConfig) -> Result<Self, MonitoringError> {
        let binary = tools::find(PROMETHEUS)?;
        let dir = tempfile::tempdir().map_err(MonitoringError::io("creating Prometheus' directory"))?;
        let config_path = config.write_to(dir.path())?;
        let port = free_port()?;
        let mut command = Command::new(binary);
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg("--web.enable-lifecycle")
            .arg("--rules.alert.resend-delay=1s")
            // As compose runs it: exemplars scraped from the services are kept and queryable.
            .arg("--enable-feature=exemplar-storage")
            .arg("--log.level=warn");
        let process = ChildGuard::spawn("prometheus", command)?;
        let base_url = format!("http://127.0.0.1:{port}");
        wait_until_ok(&process, &base_url, "/-/ready").await?;
        Ok(Self { process, port, _dir: dir, client: reqwest::Client::new() })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`, for a scrape target.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the server printed so far, for failure messages.
    pub fn output(&self) -> String {
        [self.process.stdout_lines(), self.process.stderr_lines()].concat().join("\n")
    }

    /// An instant query evaluated now. Vector results give one sample per series, a scalar one unlabelled sample.
    pub async fn query(&self, expr: &str) -> Result<Vec<Sample>, MonitoringError> {
        let data = self.get("/api/v1/query", &[("query", expr)]).await?;
        samples(&data).ok_or_else(|| MonitoringError::Refused {
            request: expr.to_owned(),
            message: format!("unexpected result shape: {data}"),
        })
    }

    /// Re-runs `expr` until `condition` holds for its result, and returns that result.
    pub async fn wait_for(
        &self,
        expr: &str,
        timeout: Duration,
        condition: impl Fn(&[Sample]) -> bool,
    ) -> Result<Vec<Sample>, MonitoringError> {
        let last = std::sync::Mutex::new(String::from("(no answer)"));
        let outcome = testkit::wait::until_some(timeout, || async {
            match self.query(expr).await {
                Ok(samples) if condition(&samples) => Some(Ok(samples)),
                Ok(samples) => {
                    *last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = format!("{samples:?}");
                    None
                }
                // A query Prometheus rejects will never succeed: stop waiting.
                Err(error @ MonitoringError::Refused { .. }) => Some(Err(error)),
                Err(error) => {
                    *last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = error.to_string();
                    None
                }
            }
        })
        .await;
        match outcome {
            Ok(result) => result,
            Err(_) => Err(MonitoringError::WaitTimedOut {
                expr: expr.to_owned(),
                timeout,
                last: last.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner),
            }),
        }
    }

    /// `GET /api/v1/alerts`: every pending or firing alert, as Prometheus reports it.
    pub async fn alerts(&self) -> Result<Vec<Value>, MonitoringError> {
        let data = self.get("/api/v1/alerts", &[]).await?;
        Ok(data["alerts"].as_array().cloned().unwrap_or_default())
    }

    /// `GET /api/v1/rules`: the loaded rule groups, with each rule's health and last error.
    pub async fn rule_groups(&self) -> Result<Vec<Value>, MonitoringError> {
        let data = self.get("/api/v1/rules", &[]).await?;
        Ok(data["groups"].as_array().cloned().unwrap_or_default())
    }

    /// `GET /api/v1/query_exemplars` over the last hour: the trace ids (exemplar label `trace_id`) Prometheus holds
    /// for the series `expr` selects, newest last.
    pub async fn exemplar_trace_ids(&self, expr: &str) -> Result<Vec<String>, MonitoringError> {
        let end = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|error| MonitoringError::Refused { request: expr.to_owned(), message: error.to_string() })?
            .as_secs();
        let (start, end) = ((end - 3600).to_string(), (end + 60).to_string());
        let data = self.get("/api/v1/query_exemplars", &[("query", expr), ("start", &start), ("end", &end)]).await?;
        let mut exemplars: Vec<(f64, String)> = data
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
            .filter_map(|exemplar| {
                let trace_id = exemplar["labels"]["trace_id"].as_str()?.to_owned();
                Some((exemplar["timestamp"].as_f64().unwrap_or_default(), trace_id))
            })
            .collect();
        exemplars.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(exemplars.into_iter().map(|(_, trace_id)| trace_id).collect())
    }

    /// `GET /api/v1/targets`: the active scrape targets with their health and last error.
    pub async fn targets(&self) -> Result<Vec<Value>, MonitoringError> {
        let data = self.get("/api/v1/targets", &[]).await?;
        Ok(data["activeTargets"].as_array().cloned().unwrap_or_default())
    }

    /// Waits until every active target of `job` has been scraped successfully at least once.
    pub async fn wait_until_scraped(&self, job: &str, timeout: Duration) -> Result<(), MonitoringError> {
        self.wait_for(&format!("up{{job=\"{job}\"}}"), timeout, |samples| {
            !samples.is_empty() && samples.iter().all(|sample| sample.value == 1.0)
        })
        .await
        .map(|_| ())
    }

    /// `POST /-/reload`: re-reads the configuration file and rule files.
    pub async fn reload(&self) -> Result<(), MonitoringError> {
        let url = format!("{}/-/reload", self.url());
        let response = self.client.post(&url).send().await.map_err(MonitoringError::api("POST /-/reload"))?;
        if !response.status().is_success() {
            let message = response.text().await.unwrap_or_default();
            return Err(MonitoringError::Refused { request: "POST /-/reload".into(), message });
        }
        Ok(())
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, MonitoringError> {
        let request = format!("GET {path}");
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.url()), query).map_err(|error| {
            MonitoringError::Refused { request: request.clone(), message: format!("not a valid URL: {error}") }
        })?;
        let response = self.client.get(url).send().await.map_err(MonitoringError::api(request.clone()))?;
        let body: Value = response.json().await.map_err(MonitoringError::api(request.clone()))?;
        if body["status"] != "success" {
            let message = format!("{}: {}", body["errorType"], body["error"]);
            let request = query.first().map_or(request, |(_, value)| (*value).to_owned());
            return Err(MonitoringError::Refused { request, message });
        }
        Ok(body["data"].clone())
    }
}

/// The samples of a `/api/v1/query` result (`vector` or `scalar`).
fn samples(data: &Value) -> Option<Vec<Sample>> {
    let value_of = |pair: &Value| pair.get(1)?.as_str()?.parse::<f64>().ok();
    match data["resultType"].as_str()? {
        "vector" => data["result"]
            .as_array()?
            .iter()
            .map(|series| {
                let labels = series["metric"]
                    .as_object()?
                    .iter()
                    .map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())))
                    .collect::<Option<BTreeMap<_, _>>>()?;
                Some(Sample { labels, value: value_of(&series["value"])? })
            })
            .collect(),
        "scalar" => Some(vec![Sample { labels: BTreeMap::new(), value: value_of(&data["result"])? }]),
        _ => None,
    }
}
