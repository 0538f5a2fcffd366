//! `monitoring/telemetry/registry.yaml`: every metric the services emit, the only names rules and dashboards
//! may use.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Deserialize;

use super::{MonitoringError, monitoring_dir};

/// The registry file.
pub fn registry_path() -> PathBuf {
    monitoring_dir().join("telemetry/registry.yaml")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub metrics: Vec<MetricEntry>,
}

/// One metric.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: MetricType,
    pub unit: String,
    pub help: String,
    pub labels: Vec<LabelSpec>,
    /// Scrape jobs (services) that expose it.
    pub emitted_by: Vec<String>,
    /// `at_start`, or what has to happen before the first series exists.
    pub appears: String,
    /// The code that names it.
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

impl MetricType {
    /// The exposition's `# TYPE` keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

/// A label and, for a bounded enum, its complete set of values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSpec {
    pub name: String,
    #[serde(default)]
    pub values: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
}

impl MetricEntry {
    /// The series names a query may use: the name itself, and a histogram's `_bucket`, `_sum`, `_count`.
    pub fn series_names(&self) -> Vec<String> {
        match self.kind {
            MetricType::Histogram => {
                ["", "_bucket", "_sum", "_count"].iter().map(|suffix| format!("{}{suffix}", self.name)).collect()
            }
            MetricType::Counter | MetricType::Gauge => vec![self.name.clone()],
        }
    }

    pub fn label(&self, name: &str) -> Option<&LabelSpec> {
        self.labels.iter().find(|label| label.name == name)
    }
}

impl Registry {
    /// Reads and checks the repo's registry: unique names, no label listed twice.
    pub fn load() -> Result<Self, MonitoringError> {
        let path = registry_path();
        let text =
            std::fs::read_to_string(&path).map_err(MonitoringError::io(format!("reading {}", path.display())))?;
        let registry: Registry =
            serde_norway::from_str(&text).map_err(|source| MonitoringError::Yaml { path: path.clone(), source })?;
        let mut seen = BTreeSet::new();
        for metric in &registry.metrics {
            if !seen.insert(metric.name.as_str()) {
                return Err(MonitoringError::Shape(format!("{} is listed twice in {}", metric.name, path.display())));
            }
            let labels: BTreeSet<&str> = metric.labels.iter().map(|label| label.name.as_str()).collect();
            if labels.len() != metric.labels.len() {
                return Err(MonitoringError::Shape(format!("{} lists a label twice", metric.name)));
            }
        }
        Ok(registry)
    }

    pub fn get(&self, name: &str) -> Option<&MetricEntry> {
        self.metrics.iter().find(|metric| metric.name == name)
    }

    /// Every name a rule or dashboard may reference (histogram series included).
    pub fn series_names(&self) -> BTreeSet<String> {
        self.metrics.iter().flat_map(MetricEntry::series_names).collect()
    }

    /// The metrics `service` should expose.
    pub fn emitted_by<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a MetricEntry> + 'a {
        self.metrics.iter().filter(move |metric| metric.emitted_by.iter().any(|job| job == service))
    }
}
