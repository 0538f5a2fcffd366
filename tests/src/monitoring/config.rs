//! The test copy of the repo's Prometheus configuration.
//!
//! Only addresses and timings change, so a test evaluates the shipped jobs and rules:
//! - [`PrometheusConfig::targets`] points a job at the test's processes (its name, and so `job`, stays);
//! - [`PrometheusConfig::without_job`] drops a job with nothing to scrape in the test (e.g. `alertmanager`);
//! - [`PrometheusConfig::intervals`] shortens the global scrape and evaluation intervals;
//! - [`PrometheusConfig::alertmanager`] sets (or removes) the Alertmanager to notify;
//! - `rule_files` become absolute paths into the repo (the copy lives in a temporary directory), or the files a
//!   test chooses with [`PrometheusConfig::rule_files`] (e.g. copies with shorter `for:` durations).

use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use super::{MonitoringError, prometheus_config_path, read_yaml};

/// The repo's `prometheus.yml`, rewritten for a test (see the module docs).
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    document: Value,
}

impl PrometheusConfig {
    /// The shipped `monitoring/prometheus/prometheus.yml`, rule files made absolute.
    pub fn from_repo() -> Result<Self, MonitoringError> {
        Self::from_file(&prometheus_config_path())
    }

    /// [`PrometheusConfig::from_repo`] for the configuration at `path`: relative `rule_files` are resolved
    /// against its directory. An error when it cannot be read or is not a YAML mapping.
    pub fn from_file(path: &Path) -> Result<Self, MonitoringError> {
        let mut document = read_yaml(path)?;
        let config_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let root = mapping(&mut document, "the document")?;
        if let Some(Value::Sequence(files)) = root.get_mut("rule_files") {
            for file in files.iter_mut() {
                if let Value::String(pattern) = file
                    && Path::new(pattern.as_str()).is_relative()
                {
                    *pattern = config_dir.join(&*pattern).to_string_lossy().into_owned();
                }
            }
        }
        Ok(Self { document })
    }

    /// The scrape jobs, in file order.
    pub fn jobs(&self) -> Vec<String> {
        self.document["scrape_configs"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|job| job["job_name"].as_str().map(str::to_owned))
            .collect()
    }

    /// Scrapes `job` at `targets` (`host:port` each) instead of its shipped addresses, with the shipped target
    /// labels (`namespace`, `part_of`) the rules and dashboards select on.
    pub fn targets(mut self, job: &str, targets: &[String]) -> Result<Self, MonitoringError> {
        let scrape = self.job_mut(job)?;
        let labels =
            scrape.get("static_configs").and_then(|groups| groups.get(0)).and_then(|group| group.get("labels"));
        let mut group = Mapping::new();
        group.insert("targets".into(), Value::Sequence(targets.iter().map(|t| Value::from(t.as_str())).collect()));
        if let Some(labels) = labels.cloned() {
            group.insert("labels".into(), labels);
        }
        scrape.remove("kubernetes_sd_configs");
        scrape.insert("static_configs".into(), Value::Sequence(vec![Value::Mapping(group)]));
        Ok(self)
    }

    /// Scrapes exactly `jobs` (each a shipped job and its `host:port` targets, shipped labels kept) and drops every
    /// other shipped job, so a test scrapes only what it started, whatever jobs the shipped file gains later.
    pub fn only_jobs(mut self, jobs: &[(&str, Vec<String>)]) -> Result<Self, MonitoringError> {
        for (job, targets) in jobs {
            self = self.targets(job, targets)?;
        }
        for shipped in self.jobs() {
            if !jobs.iter().any(|(job, _)| *job == shipped) {
                self = self.without_job(&shipped)?;
            }
        }
        Ok(self)
    }

    /// Removes `job` (a test with nothing to scrape there).
    pub fn without_job(mut self, job: &str) -> Result<Self, MonitoringError> {
        let jobs = self.scrape_configs_mut()?;
        let before = jobs.len();
        jobs.retain(|scrape| scrape["job_name"].as_str() != Some(job));
        if jobs.len() == before {
            return Err(MonitoringError::Shape(format!("prometheus.yml has no scrape job `{job}`")));
        }
        Ok(self)
    }

    /// Global scrape and rule-evaluation intervals (Prometheus durations such as `1s`); the scrape timeout
    /// becomes the scrape interval, which Prometheus requires it not to exceed.
    pub fn intervals(mut self, scrape: &str, evaluation: &str) -> Result<Self, MonitoringError> {
        let root = mapping(&mut self.document, "the document")?;
        let global = root.entry("global".into()).or_insert_with(|| Value::Mapping(Mapping::new()));
        let global = mapping(global, "`global`")?;
        global.insert("scrape_interval".into(), scrape.into());
        global.insert("scrape_timeout".into(), scrape.into());
        global.insert("evaluation_interval".into(), evaluation.into());
        Ok(self)
    }

    /// Notifies the Alertmanager at `address` (`host:port`), or none.
    pub fn alertmanager(mut self, address: Option<&str>) -> Result<Self, MonitoringError> {
        let root = mapping(&mut self.document, "the document")?;
        match address {
            None => {
                root.remove("alerting");
            }
            Some(address) => {
                let mut group = Mapping::new();
                group.insert("targets".into(), Value::Sequence(vec![address.into()]));
                let mut alertmanager = Mapping::new();
                alertmanager.insert("static_configs".into(), Value::Sequence(vec![Value::Mapping(group)]));
                let mut alerting = Mapping::new();
                alerting.insert("alertmanagers".into(), Value::Sequence(vec![Value::Mapping(alertmanager)]));
                root.insert("alerting".into(), Value::Mapping(alerting));
            }
        }
        Ok(self)
    }

    /// Loads exactly `files` (absolute paths or globs) as rule files.
    pub fn rule_files(mut self, files: &[PathBuf]) -> Result<Self, MonitoringError> {
        let root = mapping(&mut self.document, "the document")?;
        let files = files.iter().map(|file| Value::from(file.to_string_lossy().into_owned())).collect();
        root.insert("rule_files".into(), Value::Sequence(files));
        Ok(self)
    }

    /// The configuration as YAML.
    pub fn to_yaml(&self) -> Result<String, MonitoringError> {
        serde_norway::to_string(&self.document)
            .map_err(|source| MonitoringError::Yaml { path: PathBuf::from("<test prometheus.yml>"), source })
    }

    /// Writes the configuration to `dir/prometheus.yml` and returns that path.
    pub fn write_to(&self, dir: &Path) -> Result<PathBuf, MonitoringError> {
        let path = dir.join("prometheus.yml");
        std::fs::write(&path, self.to_yaml()?).map_err(MonitoringError::io(format!("writing {}", path.display())))?;
        Ok(path)
    }

    fn scrape_configs_mut(&mut self) -> Result<&mut Vec<Value>, MonitoringError> {
        self.document
            .get_mut("scrape_configs")
            .and_then(Value::as_sequence_mut)
            .ok_or_else(|| MonitoringError::Shape("prometheus.yml has no `scrape_configs` list".into()))
    }

    fn job_mut(&mut self, job: &str) -> Result<&mut Mapping, MonitoringError> {
        self.scrape_configs_mut()?
            .iter_mut()
            .filter_map(Value::as_mapping_mut)
            .find(|scrape| scrape.get("job_name").and_then(Value::as_str) == Some(job))
            .ok_or_else(|| MonitoringError::Shape(format!("prometheus.yml has no scrape job `{job}`")))
    }
}

fn mapping<'a>(value: &'a mut Value, what: &str) -> Result<&'a mut Mapping, MonitoringError> {
    value.as_mapping_mut().ok_or_else(|| MonitoringError::Shape(format!("{what} in prometheus.yml is not a mapping")))
}
