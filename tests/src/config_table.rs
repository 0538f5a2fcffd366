//! A service README's `## Configuration` table: the environment variables the service documents.
//!
//! Deployment files (compose, the Helm chart) are checked against it, so they cannot set a variable the
//! service does not know or leave out one it requires.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Why a README yields no configuration table.
#[derive(Debug, thiserror::Error)]
pub enum ConfigTableError {
    /// The README could not be read (most often: no such service directory).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The README's path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The README has no `## Configuration` heading.
    #[error("{0} has no `## Configuration` section")]
    NoSection(PathBuf),
    /// The section has no row starting with a backticked variable name (a changed table layout, for instance).
    #[error("{0}: no configuration rows found")]
    NoRows(PathBuf),
}

/// Documented names, `PREFIX_*` wildcards, and the names marked *required*.
#[derive(Debug, Default)]
pub struct ConfigTable {
    names: BTreeSet<String>,
    prefixes: Vec<String>,
    required: BTreeSet<String>,
}

impl ConfigTable {
    /// The table of `services/<service>/README.md` under `repo_root`.
    pub fn for_service(repo_root: &Path, service: &str) -> Result<Self, ConfigTableError> {
        Self::read(&repo_root.join("services").join(service).join("README.md"))
    }

    /// Rows start with a backticked name; the names are every backticked word of the first cell (a row may
    /// document several), and a second cell saying *required* marks them required.
    pub fn read(path: &Path) -> Result<Self, ConfigTableError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigTableError::Read { path: path.to_owned(), source })?;
        let section =
            text.split("\n## Configuration").nth(1).ok_or_else(|| ConfigTableError::NoSection(path.to_owned()))?;
        let section = section.split("\n## ").next().unwrap_or(section);
        let mut table = Self::default();
        for row in section.lines().filter(|line| line.starts_with("| `")) {
            let cells: Vec<&str> = row.split(" | ").collect();
            let required = cells.get(1).is_some_and(|cell| cell.contains("*required*"));
            for name in cells[0].split('`').skip(1).step_by(2) {
                if let Some(prefix) = name.strip_suffix('*') {
                    table.prefixes.push(prefix.to_owned());
                } else {
                    table.names.insert(name.to_owned());
                    if required {
                        table.required.insert(name.to_owned());
                    }
                }
            }
        }
        if table.names.is_empty() {
            return Err(ConfigTableError::NoRows(path.to_owned()));
        }
        Ok(table)
    }

    /// Whether `variable` is a documented name or matches a documented `PREFIX_*`.
    pub fn documents(&self, variable: &str) -> bool {
        self.names.contains(variable) || self.prefixes.iter().any(|prefix| variable.starts_with(prefix.as_str()))
    }

    /// The variables the service cannot start without.
    pub fn required(&self) -> impl Iterator<Item = &str> {
        self.required.iter().map(String::as_str)
    }
}
