//! The test copy of the repo's Alertmanager configuration.
//!
//! What changes, and only this:
//! - every receiver keeps its name but delivers through one `webhook_configs` entry to
//!   `{sink}/{receiver name}` (PagerDuty, Slack, e-mail and the dead man's switch cannot be reached from a
//!   test; the path tells the test which receiver Alertmanager chose). `send_resolved` keeps the shipped
//!   receiver's choice.
//! - `group_wait`, `group_interval` and `repeat_interval` become [`Timings`], wherever a route sets them, so
//!   a notification arrives in seconds instead of minutes.
//! - `templates` globs become absolute paths into the repo, so the copy can live in a temporary directory
//!   and still loads (and so validates) the shipped templates.
//!
//! Routes, matchers, `continue`, `group_by` and `inhibit_rules` are left exactly as written.
//!
//! [`TestConfig::demo`] loads the compose demo's copy instead and keeps its e-mail receivers: only the mail
//! server's address changes (plus the same timings and template paths).

use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use super::{AlertingError, alertmanager_config_path, demo_config_path};

/// Notification timings of the test copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// How long a new group waits for more alerts before its first notification (an Alertmanager duration).
    pub group_wait: &'static str,
    /// How long a group that changed (an alert added or resolved) waits before it is notified again.
    pub group_interval: &'static str,
    /// After how long an unchanged group, still firing, is notified again.
    pub repeat_interval: &'static str,
}

impl Timings {
    /// A new group is notified after 1 s, a change (a resolution) within a further second; a group that
    /// stays the same is not repeated during a test.
    pub const FAST: Timings = Timings { group_wait: "1s", group_interval: "1s", repeat_interval: "1h" };
}

const TIMING_KEYS: [&str; 3] = ["group_wait", "group_interval", "repeat_interval"];

/// The repo's Alertmanager configuration, rewritten for a test (see the module docs).
#[derive(Debug, Clone)]
pub struct TestConfig {
    document: Value,
}

impl TestConfig {
    /// The shipped `monitoring/alertmanager/alertmanager.yml`, its receivers delivering to
    /// `{sink_base_url}/{receiver}` (e.g. `http://127.0.0.1:PORT`, no trailing slash).
    pub fn from_repo(sink_base_url: &str, timings: Timings) -> Result<Self, AlertingError> {
        Self::from_file(&alertmanager_config_path(), sink_base_url, timings)
    }

    /// [`TestConfig::from_repo`] for the Alertmanager configuration at `path` instead of the shipped one.
    pub fn from_file(path: &Path, sink_base_url: &str, timings: Timings) -> Result<Self, AlertingError> {
        Self::load(path, timings, |root| redirect_receivers(root, sink_base_url))
    }

    /// The compose demo's `monitoring/alertmanager/demo.yml` with its receivers kept (they send e-mail), only
    /// the mail server replaced by `smarthost` (`host:port`, plain SMTP) and the timings shortened.
    pub fn demo(smarthost: &str, timings: Timings) -> Result<Self, AlertingError> {
        Self::load(&demo_config_path(), timings, |root| {
            let global = root
                .get_mut("global")
                .and_then(Value::as_mapping_mut)
                .ok_or_else(|| shape("there is no `global` mapping"))?;
            global.insert("smtp_smarthost".into(), smarthost.into());
            Ok(())
        })
    }

    /// Reads `path`, applies `rewrite` to its top-level mapping, then shortens the timings and makes the
    /// template globs absolute.
    fn load(
        path: &Path,
        timings: Timings,
        rewrite: impl FnOnce(&mut Mapping) -> Result<(), AlertingError>,
    ) -> Result<Self, AlertingError> {
        let text = std::fs::read_to_string(path).map_err(AlertingError::io(format!("reading {}", path.display())))?;
        let mut document: Value =
            serde_norway::from_str(&text).map_err(|source| AlertingError::Yaml { path: path.to_owned(), source })?;
        let config_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let root = document.as_mapping_mut().ok_or_else(|| shape("the document is not a mapping"))?;
        rewrite(root)?;
        set_time_intervals(root, Window::Never)?;
        let route = root.get_mut("route").ok_or_else(|| shape("there is no `route`"))?;
        shorten_timings(route, timings, true)?;
        absolute_templates(root, &config_dir)?;
        Ok(Self { document })
    }

    /// Every time interval (the maintenance window) rewritten to span all of time, so the routes that mute
    /// during it are muted now. By default the test copies replace them with one that never comes, so no test
    /// depends on the day it runs.
    pub fn in_maintenance_window(mut self) -> Result<Self, AlertingError> {
        let root = self.document.as_mapping_mut().ok_or_else(|| shape("the document is not a mapping"))?;
        set_time_intervals(root, Window::Always)?;
        Ok(self)
    }

    /// The receivers' names, in file order.
    pub fn receivers(&self) -> Vec<String> {
        self.document
            .get("receivers")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|receiver| receiver.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect()
    }

    /// The copy as YAML.
    pub fn to_yaml(&self) -> Result<String, AlertingError> {
        serde_norway::to_string(&self.document)
            .map_err(|source| AlertingError::Yaml { path: PathBuf::from("<test copy>"), source })
    }

    /// Writes the copy to `dir/alertmanager.yml` and returns that path.
    pub fn write_to(&self, dir: &Path) -> Result<PathBuf, AlertingError> {
        let path = dir.join("alertmanager.yml");
        std::fs::write(&path, self.to_yaml()?).map_err(AlertingError::io(format!("writing {}", path.display())))?;
        Ok(path)
    }
}

fn shape(what: &str) -> AlertingError {
    AlertingError::Shape(what.to_owned())
}

/// Replaces each receiver's integrations with one webhook to `{sink}/{name}`.
fn redirect_receivers(root: &mut Mapping, sink_base_url: &str) -> Result<(), AlertingError> {
    let receivers = root
        .get_mut("receivers")
        .and_then(Value::as_sequence_mut)
        .ok_or_else(|| shape("`receivers` is missing or not a list"))?;
    for receiver in receivers {
        let receiver = receiver.as_mapping_mut().ok_or_else(|| shape("a receiver is not a mapping"))?;
        let name =
            receiver.get("name").and_then(Value::as_str).ok_or_else(|| shape("a receiver has no name"))?.to_owned();
        let integrations: Vec<Value> =
            receiver.keys().filter(|key| key.as_str().is_some_and(|key| key.ends_with("_configs"))).cloned().collect();
        // A receiver without integrations (a "blackhole") stays one.
        if integrations.is_empty() {
            continue;
        }
        let send_resolved = integrations
            .iter()
            .filter_map(|key| receiver.get(key))
            .filter_map(Value::as_sequence)
            .flatten()
            .find_map(|config| config.get("send_resolved").and_then(Value::as_bool))
            .unwrap_or(true);
        for key in &integrations {
            receiver.remove(key);
        }
        let mut webhook = Mapping::new();
        webhook.insert("url".into(), format!("{sink_base_url}/{name}").into());
        webhook.insert("send_resolved".into(), send_resolved.into());
        webhook.insert("max_alerts".into(), 0.into());
        receiver.insert("webhook_configs".into(), Value::Sequence(vec![Value::Mapping(webhook)]));
    }
    Ok(())
}

/// What a rewritten time interval covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    /// A year long past: the interval is never current.
    Never,
    /// Every minute of every day.
    Always,
}

/// Replaces what every named interval under `time_intervals` covers, keeping the names the routes refer to.
fn set_time_intervals(root: &mut Mapping, window: Window) -> Result<(), AlertingError> {
    let Some(intervals) = root.get_mut("time_intervals") else { return Ok(()) };
    let intervals = intervals.as_sequence_mut().ok_or_else(|| shape("`time_intervals` is not a list"))?;
    let covered: Value = match window {
        Window::Never => serde_norway::from_str("[{years: ['1970']}]"),
        Window::Always => serde_norway::from_str("[{times: [{start_time: '00:00', end_time: '24:00'}]}]"),
    }
    .map_err(|source| AlertingError::Yaml { path: "<time interval>".into(), source })?;
    for interval in intervals {
        let interval = interval.as_mapping_mut().ok_or_else(|| shape("a time interval is not a mapping"))?;
        interval.insert("time_intervals".into(), covered.clone());
    }
    Ok(())
}

/// Sets every timing a route (or one of its children) sets; the root always gets all three.
fn shorten_timings(route: &mut Value, timings: Timings, is_root: bool) -> Result<(), AlertingError> {
    let route = route.as_mapping_mut().ok_or_else(|| shape("a route is not a mapping"))?;
    let values = [timings.group_wait, timings.group_interval, timings.repeat_interval];
    for (key, value) in TIMING_KEYS.into_iter().zip(values) {
        if is_root || route.contains_key(key) {
            route.insert(key.into(), value.into());
        }
    }
    if let Some(children) = route.get_mut("routes") {
        let children = children.as_sequence_mut().ok_or_else(|| shape("`routes` is not a list"))?;
        for child in children {
            shorten_timings(child, timings, false)?;
        }
    }
    Ok(())
}

/// Makes relative `templates` globs absolute against the shipped config's directory.
fn absolute_templates(root: &mut Mapping, config_dir: &Path) -> Result<(), AlertingError> {
    let Some(templates) = root.get_mut("templates") else { return Ok(()) };
    let templates = templates.as_sequence_mut().ok_or_else(|| shape("`templates` is not a list"))?;
    for template in templates {
        let glob = template.as_str().ok_or_else(|| shape("a `templates` entry is not a string"))?;
        if Path::new(glob).is_relative() {
            *template = config_dir.join(glob).to_string_lossy().into_owned().into();
        }
    }
    Ok(())
}
