//! The pinned Python tools some tests check against: independent references and contract checkers from PyPI.
//!
//! `cargo xtask test` installs them into one cached virtualenv ([`tools_dir`]); a test finds its program there.

use std::path::PathBuf;

use crate::Error;

/// What the virtualenv holds, pinned. `tzdata` is the IANA release `chrono-tz` is built from, so a reference
/// computed in Python sees the same zone rules as the services.
pub const REQUIREMENTS: &[&str] = &["python-dateutil==2.9.0.post0", "tzdata==2025.2", "schemathesis==4.32.5"];

/// Where `cargo xtask` builds the virtualenv, under `$HOME`; [`REQUIREMENTS`] are written into it as
/// `requirements.txt`, so a changed pin is noticed and the virtualenv rebuilt.
pub const TOOLS_NAME: &str = "python-tools";

/// The environment variable that points at another virtualenv with [`REQUIREMENTS`] installed.
pub const TOOLS_ENV: &str = "TASKWATCH_PYTHON_TOOLS";

/// The virtualenv: `$TASKWATCH_PYTHON_TOOLS`, else [`TOOLS_NAME`] in the workspace's cache directory.
pub fn tools_dir() -> Option<PathBuf> {
    std::env::var_os(TOOLS_ENV)
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| crate::workspace::cache_dir().map(|cache| cache.join(TOOLS_NAME)))
}

/// A program of the virtualenv (`python`, `st`), if it is installed with the current [`REQUIREMENTS`].
pub fn program(name: &str) -> Result<PathBuf, Error> {
    let dir = tools_dir()
        .ok_or_else(|| Error::PythonToolsMissing { dir: PathBuf::from(format!("~/.cache/taskwatch/{TOOLS_NAME}")) })?;
    let installed = std::fs::read_to_string(dir.join("requirements.txt")).unwrap_or_default();
    let path = dir.join("bin").join(name);
    if installed == requirements_txt() && path.is_file() { Ok(path) } else { Err(Error::PythonToolsMissing { dir }) }
}

/// [`REQUIREMENTS`] as a pip requirements file.
pub fn requirements_txt() -> String {
    REQUIREMENTS.iter().map(|line| format!("{line}\n")).collect()
}
