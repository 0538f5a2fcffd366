//! A real Alertmanager (`prometheus-alertmanager`) in the foreground on 127.0.0.1, and its `/api/v2`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use testkit::process::ChildGuard;

use super::tools::{self, ALERTMANAGER};
use super::{AlertingError, TestConfig};
use crate::{free_port, wait_until_ok};

/// How long a posted alert stays firing unless posted again: longer than any test.
const POSTED_ALERT_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// An alert to post, as Prometheus would send it.
#[derive(Debug, Clone, Default)]
pub struct Alert {
    /// The alert's identity: what routes, grouping, inhibitions and silences match on (`alertname`, `severity`, …).
    pub labels: BTreeMap<String, String>,
    /// Extra text for notification templates (`summary`, `runbook_url`, …); not matched on.
    pub annotations: BTreeMap<String, String>,
}

impl Alert {
    /// An alert with these `name=value` labels and no annotations.
    pub fn new(labels: &[(&str, &str)]) -> Self {
        Self { labels: to_map(labels), annotations: BTreeMap::new() }
    }

    /// Adds (or replaces) the annotation `name`.
    pub fn annotation(mut self, name: &str, value: &str) -> Self {
        self.annotations.insert(name.to_owned(), value.to_owned());
        self
    }

    /// A `postableAlert`: firing from now for [`POSTED_ALERT_LIFETIME`].
    fn to_json(&self) -> Value {
        let now = Utc::now();
        json!({
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "endsAt": (now + POSTED_ALERT_LIFETIME).to_rfc3339_opts(SecondsFormat::Millis, true),
            "generatorURL": "http://e2e.invalid/posted-by-test",
        })
    }
}

fn to_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

/// One alert as `GET /api/v2/alerts` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertState {
    /// Alertmanager's hash of the label set, by which `inhibited_by` refers to other alerts.
    pub fingerprint: String,
    /// The labels as Alertmanager holds them.
    pub labels: BTreeMap<String, String>,
    /// `active`, `suppressed` (silenced or inhibited) or `unprocessed`.
    pub state: String,
    /// Fingerprints of the alerts inhibiting this one.
    pub inhibited_by: Vec<String>,
    /// Ids of the silences muting this one.
    pub silenced_by: Vec<String>,
    /// The receivers its route resolves to.
    pub receivers: Vec<String>,
}

impl AlertState {
    fn from_json(alert: &Value) -> Option<Self> {
        let strings = |value: Option<&Value>| -> Vec<String> {
            value
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|item| {
                    item.as_str().map(str::to_owned).or_else(|| item["name"].as_str().map(str::to_owned))
                })
                .collect()
        };
        let status = alert.get("status")?;
        Some(Self {
            fingerprint: alert.get("fingerprint")?.as_str()?.to_owned(),
            labels: labels_of(alert.get("labels")?),
            state: status.get("state")?.as_str()?.to_owned(),
            inhibited_by: strings(status.get("inhibitedBy")),
            silenced_by: strings(status.get("silencedBy")),
            receivers: strings(alert.get("receivers")),
        })
    }

    /// Whether every `name=value` pair is among its labels.
    pub fn has_labels(&self, labels: &[(&str, &str)]) -> bool {
        labels.iter().all(|(name, value)| self.labels.get(*name).is_some_and(|actual| actual == value))
    }
}

pub(crate) fn labels_of(labels: &Value) -> BTreeMap<String, String> {
    labels
        .as_object()
        .map(Map::iter)
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| value.as_str().map(|value| (name.clone(), value.to_owned())))
        .collect()
}

/// A running Alertmanager, killed when dropped; its data directory is removed after it.
#[derive(Debug)]
pub struct Alertmanager {
    // Declared first: the process dies before its directory is removed.
    process: ChildGuard,
    base_url: String,
    port: u16,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Writes `config` to a fresh directory, checks it with `amtool check-config`, starts Alertmanager on
    /// a free port with clustering off, and waits until it is ready.
    pub async fn start(config: &TestConfig) -> Result<Self, AlertingError> {
        let dir = tempfile::Builder::new()
            .prefix("taskwatch-alertmanager-")
            .tempdir()
            .map_err(AlertingError::io("creating Alertmanager's directory"))?;
        let config_path = config.write_to(dir.path())?;
        tools::amtool_check_config(&config_path)?.checked()?;
        Self::start_in(dir, &config_path).await
    }

    async fn start_in(dir: tempfile::TempDir, config_path: &Path) -> Result<Self, AlertingError> {
        let port = free_port()?;
        let mut command = Command::new(tools::find(ALERTMANAGER)?);
        command.args([
            format!("--config.file={}", config_path.display()),
            format!("--storage.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            // A single instance: no gossip port to collide with other tests.
            "--cluster.listen-address=".to_owned(),
            "--log.level=debug".to_owned(),
        ]);
        let process = ChildGuard::spawn("alertmanager", command)?;
        let base_url = format!("http://127.0.0.1:{port}");
        wait_until_ok(&process, &base_url, "/-/ready").await?;
        Ok(Self { process, base_url, port, client: reqwest::Client::new(), _dir: dir })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.base_url
    }

    /// The port of [`Alertmanager::url`], for a Prometheus configuration that names Alertmanager as `host:port`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything Alertmanager logged so far, for failure messages.
    pub fn output(&self) -> String {
        [self.process.stdout_lines(), self.process.stderr_lines()].concat().join("\n")
    }

    /// `POST /api/v2/alerts`: the alerts fire from now on, as if Prometheus had sent them.
    pub async fn post_alerts(&self, alerts: &[Alert]) -> Result<(), AlertingError> {
        let body: Vec<Value> = alerts.iter().map(Alert::to_json).collect();
        self.client
            .post(format!("{}/api/v2/alerts", self.base_url))
            .json(&body)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(AlertingError::api("posting alerts"))?;
        Ok(())
    }

    /// `GET /api/v2/alerts`: every alert it holds, active, silenced, inhibited or not yet processed.
    pub async fn alerts(&self) -> Result<Vec<AlertState>, AlertingError> {
        let alerts: Value = self
            .client
            .get(format!("{}/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true", self.base_url))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(AlertingError::api("listing alerts"))?
            .json()
            .await
            .map_err(AlertingError::api("reading the alert list"))?;
        Ok(alerts.as_array().into_iter().flatten().filter_map(AlertState::from_json).collect())
    }

    /// Waits for an alert matching `predicate`; `None` at the deadline.
    pub async fn wait_for_alert(
        &self,
        predicate: impl Fn(&AlertState) -> bool,
        timeout: Duration,
    ) -> Option<AlertState> {
        testkit::wait::until_some(timeout, || async {
            self.alerts().await.ok()?.into_iter().find(|alert| predicate(alert))
        })
        .await
        .ok()
    }
}
