//! `monitoring/telemetry/registry.yaml`: every metric the services emit, the only names rules and dashboards
//! may use.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Deserialize;

use super::{MonitoringError, monitoring_dir};
use crate::Service;

/// The registry file.
pub fn registry_path() -> PathBuf {
    monitoring_dir().join("telemetry/registry.yaml")
}

/// The whole registry file; unknown keys are an error, so a typo in a field name cannot pass unnoticed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// Every registered metric, in file order; [`Registry::load`] guarantees unique names.
    pub metrics: Vec<MetricEntry>,
    /// The monitoring stack's own metrics (Prometheus, Alertmanager, the collector) that the alerts on the
    /// monitoring read; `emitted_by` names their scrape jobs, never a Taskwatch service.
    #[serde(default)]
    pub monitoring_metrics: Vec<MetricEntry>,
}

/// One metric.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricEntry {
    /// The family name as exposed (a histogram's, without `_bucket`, `_sum` or `_count`).
    pub name: String,
    /// The registry's `type`, which must match the exposition's `# TYPE`.
    #[serde(rename = "type")]
    pub kind: MetricType,
    /// What one unit of the value is (`seconds`, `requests`, …); a histogram's, of its observations.
    pub unit: String,
    /// What the metric measures, in a sentence.
    pub help: String,
    /// Every label the service sets; `job` and `instance` (added at scrape time) and `le` are not listed.
    pub labels: Vec<LabelSpec>,
    /// Scrape jobs (services) that expose it; [`TEMPLATE_SERVICES`] stands for every service generated from the
    /// service template.
    pub emitted_by: Vec<String>,
    /// `at_start`, or what has to happen before the first series exists.
    pub appears: String,
    /// The code that names it.
    pub source: String,
}

/// The metric types the services emit (no summaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    /// Only ever goes up (until the process restarts); its name ends in `_total`.
    Counter,
    /// A value sampled as it is, which may go up and down.
    Gauge,
    /// Observations counted into buckets, exposed as `_bucket`, `_sum` and `_count` series.
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
    /// The label's name.
    pub name: String,
    /// Every value the label may take, when it is a bounded enum; `None` when the values are not enumerated.
    #[serde(default)]
    pub values: Option<Vec<String>>,
    /// What the values are or mean (their format, where they come from); `None` when the name says enough.
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

    /// The registered label called `name`; `None` when the metric does not list it.
    pub fn label(&self, name: &str) -> Option<&LabelSpec> {
        self.labels.iter().find(|label| label.name == name)
    }

    /// Whether `service` may set `label` to `value`: any value when the label's values are not listed, else
    /// one of them, where [`TEMPLATE_NAME`] is `service`'s own name if it was generated from the template.
    pub fn allows(&self, service: &str, label: &str, value: &str) -> bool {
        let Some(allowed) = self.label(label).and_then(|spec| spec.values.as_ref()) else {
            return true;
        };
        allowed.iter().any(|allowed| {
            allowed == value
                || (allowed.contains(TEMPLATE_NAME)
                    && is_generated(service)
                    && allowed.replace(TEMPLATE_NAME, service) == value)
        })
    }

    /// Whether `service` (a scrape job) is among those that expose it: named, or generated from the template
    /// when [`TEMPLATE_SERVICES`] is listed.
    pub fn is_emitted_by(&self, service: &str) -> bool {
        let generated = is_generated(service);
        self.emitted_by.iter().any(|job| job == service || (generated && job == TEMPLATE_SERVICES))
    }
}

/// Whether the service named `service` was generated from the template.
fn is_generated(service: &str) -> bool {
    Service::ALL.iter().any(|known| known.name() == service && known.is_generated())
}

/// In a label's `values`: the name of the service generated from the template that sets it.
pub const TEMPLATE_NAME: &str = "{template}";

/// In `emitted_by`: every service generated from the service template (`cargo xtask new-service`), so a new
/// service's shared metrics are registered before it exists.
pub const TEMPLATE_SERVICES: &str = "template";

impl Registry {
    /// Reads and checks the repo's registry: unique names, no label listed twice.
    pub fn load() -> Result<Self, MonitoringError> {
        let path = registry_path();
        let text =
            std::fs::read_to_string(&path).map_err(MonitoringError::io(format!("reading {}", path.display())))?;
        let registry: Registry =
            serde_norway::from_str(&text).map_err(|source| MonitoringError::Yaml { path: path.clone(), source })?;
        let mut seen = BTreeSet::new();
        for metric in registry.metrics.iter().chain(&registry.monitoring_metrics) {
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

    /// The metric registered as `name` (a family name, not a histogram's `_bucket`/`_sum`/`_count`); `None` when
    /// it is not registered.
    pub fn get(&self, name: &str) -> Option<&MetricEntry> {
        self.metrics.iter().find(|metric| metric.name == name)
    }

    /// Every name a rule or dashboard may reference (histogram series included): the services' and the
    /// monitoring stack's.
    pub fn series_names(&self) -> BTreeSet<String> {
        self.metrics.iter().chain(&self.monitoring_metrics).flat_map(MetricEntry::series_names).collect()
    }

    /// The metrics `service` should expose.
    pub fn emitted_by<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a MetricEntry> + 'a {
        self.metrics.iter().filter(move |metric| metric.is_emitted_by(service))
    }
}
