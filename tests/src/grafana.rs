//! Grafana as code, made testable without Grafana (which cannot run here):
//!
//! - [`SchemaToolchain`]: a JSON Schema of Grafana's own `Dashboard` type, generated from the published npm
//!   package `@grafana/schema` with `ts-json-schema-generator`, and PyPI's `check-jsonschema` to validate
//!   dashboards against it. Installed on first use into a cache directory named after the pinned versions
//!   (`~/.cache/taskwatch/grafana-schema-…`), so later runs and other tests reuse it.
//! - [`Dashboard`]: a dashboard file read into its panels, their queries and its template variables, with
//!   [`substitute`] turning Grafana's variables into what a PromQL query sent straight to Prometheus needs.
//!
//! Why `check-jsonschema` rather than a Rust validator crate: Grafana itself cannot be installed on these machines
//! (no package is reachable), and a schema generated from `@grafana/schema` checked by PyPI's `check-jsonschema`
//! is the closest independent reference; it needs no new workspace dependency (and no compile time on two shared cores), and it reports every violation
//! with its JSON path in one run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// `@grafana/schema`: the TypeScript types Grafana publishes for its dashboard JSON model.
pub const GRAFANA_SCHEMA_VERSION: &str = "13.2.3";
/// The generator turning a TypeScript type into a JSON Schema. 2.4.0 is the newest that runs on Node 18/20
/// (2.5 and later require Node 22).
pub const TS_JSON_SCHEMA_GENERATOR_VERSION: &str = "2.4.0";
/// The validator.
pub const CHECK_JSONSCHEMA_VERSION: &str = "0.39.0";

/// The file of `@grafana/schema` that declares the classic dashboard JSON model (`Dashboard`, `Panel`,
/// `RowPanel`, `VariableModel`, …) that file-provisioned dashboards use.
const DASHBOARD_TYPES: &str = "node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.d.ts";
/// Its compiled defaults, where `defaultDashboard.schemaVersion` says which schema version is current.
const DASHBOARD_DEFAULTS: &str = "node_modules/@grafana/schema/dist/esm/raw/dashboard/x/types.gen.mjs";
const SCHEMA_FILE: &str = "dashboard.schema.json";
/// Written last: a cache directory without it is incomplete and is rebuilt.
const COMPLETE_MARKER: &str = ".complete";

/// Why the schema toolchain could not be installed or run, or a dashboard could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GrafanaError {
    /// The toolchain must be installed, but `npm` or `python3` is not on `PATH`.
    #[error(
        "`{tool}` was not found; {install}. It builds the Grafana dashboard JSON Schema \
         (@grafana/schema {GRAFANA_SCHEMA_VERSION}) and its validator (check-jsonschema {CHECK_JSONSCHEMA_VERSION})"
    )]
    ToolMissing {
        /// The program looked for.
        tool: &'static str,
        /// How to install it, as the message tells the reader.
        install: &'static str,
    },
    /// A program exited with failure: npm, pip, the schema generator, or the validator, which reports schema
    /// violations this way.
    #[error("`{command}` failed:\n{output}")]
    CommandFailed {
        /// The program and its arguments, as `Command`'s `Debug` prints them.
        command: String,
        /// Its stdout, then its stderr.
        output: String,
    },
    /// Reading, writing, creating or moving a file or directory failed, or a program could not be started.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path or the command.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A dashboard file does not parse as JSON.
    #[error("{path} is not valid JSON")]
    Json {
        /// The dashboard file.
        path: PathBuf,
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// Something is not there or not as expected: no cache directory, no `schemaVersion` in the package's
    /// defaults, no options type for a panel type, or no listing of the dashboards directory; the message says which.
    #[error("{0}")]
    Shape(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> GrafanaError {
    let context = context.into();
    move |source| GrafanaError::Io { context, source }
}

/// The generated dashboard schema and the validator, in their cache directory.
#[derive(Debug, Clone)]
pub struct SchemaToolchain {
    dir: PathBuf,
}

impl SchemaToolchain {
    /// The cached toolchain, installed and generated first when missing (npm and PyPI must be reachable then).
    pub fn ensure() -> Result<Self, GrafanaError> {
        let dir = cache_root()?.join(format!(
            "grafana-schema-{GRAFANA_SCHEMA_VERSION}-tsjsg-{TS_JSON_SCHEMA_GENERATOR_VERSION}-cjs-{CHECK_JSONSCHEMA_VERSION}"
        ));
        if !dir.join(COMPLETE_MARKER).is_file() {
            install(&dir)?;
        }
        Ok(Self { dir })
    }

    /// The JSON Schema of Grafana's `Dashboard` type.
    pub fn dashboard_schema(&self) -> PathBuf {
        self.dir.join(SCHEMA_FILE)
    }

    /// The `schemaVersion` a new dashboard gets in this Grafana release (`defaultDashboard.schemaVersion`).
    pub fn current_schema_version(&self) -> Result<u64, GrafanaError> {
        let path = self.dir.join(DASHBOARD_DEFAULTS);
        let text = std::fs::read_to_string(&path).map_err(io(format!("reading {}", path.display())))?;
        let after = text
            .split("const defaultDashboard = {")
            .nth(1)
            .and_then(|rest| rest.split("schemaVersion:").nth(1))
            .ok_or_else(|| GrafanaError::Shape(format!("no defaultDashboard.schemaVersion in {}", path.display())))?;
        let digits: String = after.trim_start().chars().take_while(char::is_ascii_digit).collect();
        digits.parse().map_err(|_| GrafanaError::Shape(format!("unreadable schemaVersion in {}", path.display())))
    }

    /// Validates `files` against the dashboard schema: `Ok` with the validator's report, or every violation.
    pub fn validate(&self, files: &[PathBuf]) -> Result<String, GrafanaError> {
        self.validate_against(&self.dashboard_schema(), files)
    }

    /// The JSON Schema of the `Options` type a panel plugin publishes in `@grafana/schema` (what goes into a
    /// panel's `options`), generated on first use. An error for a panel type the package has no types for.
    pub fn panel_options_schema(&self, panel_type: &str) -> Result<PathBuf, GrafanaError> {
        // Panel type ids as dashboards spell them → their directory under raw/composable/.
        let directory = panel_type.replace('-', "");
        let types = self.dir.join(format!(
            "node_modules/@grafana/schema/dist/types/raw/composable/{directory}/panelcfg/x/types.gen.d.ts"
        ));
        if !types.is_file() {
            return Err(GrafanaError::Shape(format!(
                "@grafana/schema {GRAFANA_SCHEMA_VERSION} publishes no options type for panel type `{panel_type}`"
            )));
        }
        let schema = self.dir.join(format!("panel-{directory}.options.schema.json"));
        if !schema.is_file() {
            // Generated beside its final name and renamed: a concurrent test never reads half a file.
            let partial = self.dir.join(format!(".panel-{directory}.{}.partial", std::process::id()));
            run(Command::new(self.dir.join("node_modules/.bin/ts-json-schema-generator"))
                .current_dir(&self.dir)
                .arg("--path")
                .arg(&types)
                .args(["--type", "Options", "--no-type-check", "--out"])
                .arg(&partial))?;
            std::fs::rename(&partial, &schema).map_err(io(format!("moving {} into place", schema.display())))?;
        }
        Ok(schema)
    }

    /// Validates `files` against `schema`: `Ok` with the validator's report, or every violation.
    pub fn validate_against(&self, schema: &Path, files: &[PathBuf]) -> Result<String, GrafanaError> {
        // Through the venv's interpreter, not its `check-jsonschema` script: the script's shebang names the
        // staging directory the venv was built in, the interpreter finds its venv from where it is.
        let mut command = Command::new(self.dir.join("venv/bin/python"));
        command.args(["-m", "check_jsonschema", "--schemafile"]).arg(schema).args(files);
        run(&mut command).map(|output| output.trim().to_owned())
    }
}

/// The workspace's cache directory, where the repo's other cached tools live.
fn cache_root() -> Result<PathBuf, GrafanaError> {
    testkit::workspace::cache_dir()
        .ok_or_else(|| GrafanaError::Shape("neither XDG_CACHE_HOME nor HOME is set: no cache directory".into()))
}

/// Installs into a staging directory beside `dir` and renames it into place, so a concurrent test (nextest
/// runs tests as separate processes) never sees a half-built toolchain; whichever finishes second keeps the
/// first one's result.
fn install(dir: &Path) -> Result<(), GrafanaError> {
    let npm = find("npm", "install Node.js 18 or later with npm (Debian: `apt-get install nodejs npm`)")?;
    let python = find("python3", "install Python 3 with venv (Debian: `apt-get install python3 python3-venv`)")?;
    let parent = dir.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
    let staging = tempfile::Builder::new()
        .prefix(".grafana-schema-staging-")
        .tempdir_in(parent)
        .map_err(io(format!("creating a staging directory in {}", parent.display())))?;
    let at = staging.path();

    std::fs::write(at.join("package.json"), "{\"private\": true}\n").map_err(io("writing package.json"))?;
    run(Command::new(&npm)
        .current_dir(at)
        .args(["install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact"])
        .arg(format!("@grafana/schema@{GRAFANA_SCHEMA_VERSION}"))
        .arg(format!("ts-json-schema-generator@{TS_JSON_SCHEMA_GENERATOR_VERSION}")))?;
    // The declaration file is Grafana's published API; type-checking all of it against every TypeScript
    // lib is not what is tested here, so the generator reads the types without a full type check.
    run(Command::new(at.join("node_modules/.bin/ts-json-schema-generator")).current_dir(at).args([
        "--path",
        DASHBOARD_TYPES,
        "--type",
        "Dashboard",
        "--no-type-check",
        "--out",
        SCHEMA_FILE,
    ]))?;

    run(Command::new(&python).arg("-m").arg("venv").arg(at.join("venv")))?;
    run(Command::new(at.join("venv/bin/python"))
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("check-jsonschema=={CHECK_JSONSCHEMA_VERSION}")))?;
    std::fs::write(at.join(COMPLETE_MARKER), "").map_err(io("marking the toolchain complete"))?;

    let staged = staging.keep();
    match std::fs::rename(&staged, dir) {
        Ok(()) => Ok(()),
        // Another process installed it meanwhile (the target is a non-empty directory): use theirs.
        Err(_) if dir.join(COMPLETE_MARKER).is_file() => {
            let _ = std::fs::remove_dir_all(&staged);
            Ok(())
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staged);
            Err(io(format!("moving the toolchain to {}", dir.display()))(error))
        }
    }
}

fn find(tool: &'static str, install: &'static str) -> Result<PathBuf, GrafanaError> {
    testkit::workspace::on_path(tool).ok_or(GrafanaError::ToolMissing { tool, install })
}

/// Runs `command` to completion: its stdout, or an error with everything it printed.
fn run(command: &mut Command) -> Result<String, GrafanaError> {
    let description = format!("{command:?}");
    let output = command.output().map_err(io(format!("running {description}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(GrafanaError::CommandFailed { command: description, output: format!("{stdout}\n{stderr}") })
    }
}

/// `monitoring/grafana/`.
pub fn grafana_dir() -> PathBuf {
    crate::monitoring::monitoring_dir().join("grafana")
}

/// One query of a panel.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    /// The panel's title, `(untitled)` when it has none; with `ref_id` it names the query in a failure.
    pub panel: String,
    /// The panel plugin's id (`timeseries`, `stat`, …), empty when the panel has no `type`.
    pub panel_type: String,
    /// The target's `refId` (`A`, `B`, …), which tells a panel's queries apart.
    pub ref_id: String,
    /// The query text (PromQL for Prometheus, LogQL for Loki).
    pub expr: String,
    /// The uid of the data source the query runs on (the target's, else the panel's).
    pub datasource: String,
}

impl PanelQuery {
    /// Whether the query runs on the data source with uid `prometheus`, so a test can send it to its Prometheus.
    pub fn is_prometheus(&self) -> bool {
        self.datasource == "prometheus"
    }
}

/// A template variable: its name, type, query (if any) and the regex applied to the query's results.
#[derive(Debug, Clone)]
pub struct Variable {
    /// What queries refer to as `$name` or `${name}`.
    pub name: String,
    /// Grafana's variable `type` (`query`, `custom`, `interval`, …).
    pub kind: String,
    /// The query yielding the variable's values (`query.query`, or `query` when a plain string); `None` without one.
    pub query: Option<String>,
    /// The regex that extracts each value from the query's results; `None` when the results are used as they are.
    pub regex: Option<String>,
    /// `allValue`: what the *All* option substitutes; `None` when unset (Grafana then joins every value).
    pub all_value: Option<String>,
}

/// A dashboard file.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// The file it was read from.
    pub path: PathBuf,
    /// The whole dashboard JSON model, as parsed.
    pub json: Value,
}

impl Dashboard {
    /// Reads and parses one dashboard file; an error when it cannot be read or is not JSON.
    pub fn load(path: &Path) -> Result<Self, GrafanaError> {
        let text = std::fs::read_to_string(path).map_err(io(format!("reading {}", path.display())))?;
        let json =
            serde_json::from_str(&text).map_err(|source| GrafanaError::Json { path: path.to_owned(), source })?;
        Ok(Self { path: path.to_owned(), json })
    }

    /// Every dashboard in `monitoring/grafana/dashboards/`.
    pub fn load_all() -> Result<Vec<Self>, GrafanaError> {
        let files = crate::monitoring::dashboard_files().map_err(|error| GrafanaError::Shape(error.to_string()))?;
        files.iter().map(|path| Self::load(path)).collect()
    }

    /// The dashboard's `uid`, its stable id in Grafana's URLs and links; empty when it has none.
    pub fn uid(&self) -> &str {
        self.json["uid"].as_str().unwrap_or_default()
    }

    /// The file name without `.json`, which the dashboard tests require to equal [`Dashboard::uid`].
    pub fn file_stem(&self) -> String {
        self.path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// Every panel that is not a row, rows' nested panels included, in order.
    pub fn panels(&self) -> Vec<&Value> {
        let mut panels = Vec::new();
        for panel in self.json["panels"].as_array().into_iter().flatten() {
            if panel["type"] == "row" {
                panels.extend(panel["panels"].as_array().into_iter().flatten());
            } else {
                panels.push(panel);
            }
        }
        panels
    }

    /// Every query of every panel.
    pub fn queries(&self) -> Vec<PanelQuery> {
        let mut queries = Vec::new();
        for panel in self.panels() {
            let panel_datasource = panel["datasource"]["uid"].as_str().unwrap_or_default();
            for target in panel["targets"].as_array().into_iter().flatten() {
                let Some(expr) = target["expr"].as_str() else { continue };
                queries.push(PanelQuery {
                    panel: panel["title"].as_str().unwrap_or("(untitled)").to_owned(),
                    panel_type: panel["type"].as_str().unwrap_or_default().to_owned(),
                    ref_id: target["refId"].as_str().unwrap_or_default().to_owned(),
                    expr: expr.to_owned(),
                    datasource: target["datasource"]["uid"].as_str().unwrap_or(panel_datasource).to_owned(),
                });
            }
        }
        queries
    }

    /// The template variables.
    pub fn variables(&self) -> Vec<Variable> {
        self.json["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|variable| Variable {
                name: variable["name"].as_str().unwrap_or_default().to_owned(),
                kind: variable["type"].as_str().unwrap_or_default().to_owned(),
                query: variable["query"]["query"].as_str().or(variable["query"].as_str()).map(str::to_owned),
                regex: variable["regex"].as_str().map(str::to_owned),
                all_value: variable["allValue"].as_str().map(str::to_owned),
            })
            .collect()
    }
}

/// Grafana's built-in interval variables as a test sends a query straight to Prometheus: `$__rate_interval`
/// (Grafana makes it at least four scrape intervals; the test scrapes every second), `$__interval`, and
/// `$__range` (the dashboard's default hour would reach back before the test's Prometheus existed, which
/// changes nothing but reads oddly; five minutes covers the whole test).
pub const BUILTIN_INTERVALS: &[(&str, &str)] =
    &[("$__rate_interval", "1m"), ("$__interval", "15s"), ("$__range", "5m"), ("${__range}", "5m")];

/// `expr` with every `$name`/`${name}` of `values` and of [`BUILTIN_INTERVALS`] replaced. Longer names go
/// first, so `$__range` is not mistaken for a prefix of another variable.
pub fn substitute(expr: &str, values: &BTreeMap<String, String>) -> String {
    let mut pairs: Vec<(String, String)> =
        BUILTIN_INTERVALS.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
    for (name, value) in values {
        pairs.push((format!("${{{name}}}"), value.clone()));
        pairs.push((format!("${name}"), value.clone()));
    }
    pairs.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    let mut out = expr.to_owned();
    for (name, value) in pairs {
        out = out.replace(&name, &value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_variables_and_builtin_intervals() {
        let values = BTreeMap::from([("service".to_owned(), "backend".to_owned())]);
        let expr = r#"sum(rate(x{job="$service"}[$__rate_interval])) + increase(y{job="${service}"}[$__range])"#;
        assert_eq!(substitute(expr, &values), r#"sum(rate(x{job="backend"}[1m])) + increase(y{job="backend"}[5m])"#);
    }
}
