//! This workspace's build output, for tests and tools that run another package's binary: cargo hands a test
//! only its own package's binaries (`CARGO_BIN_EXE_*`), and a workspace test run builds every service first.

use std::path::{Path, PathBuf};

use crate::Error;

/// Cargo's target directory: `CARGO_TARGET_DIR`, else `target/` at the workspace root.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Names a directory of workspace binaries to run instead of the current profile's: the bench's driver, built
/// for debugging, runs release-built services this way.
pub const BIN_DIR_ENV: &str = "TASKWATCH_BIN_DIR";

/// A workspace binary built for the current profile (or in [`BIN_DIR_ENV`] when that is set), if it is there.
pub fn binary(name: &str) -> Result<PathBuf, Error> {
    let dir = match std::env::var_os(BIN_DIR_ENV).filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => target_dir().join(if cfg!(debug_assertions) { "debug" } else { "release" }),
    };
    let path = dir.join(name);
    if path.is_file() { Ok(path) } else { Err(Error::MissingBinary { path }) }
}

/// Where slow-to-make things (the broker build, tool virtualenvs, the Postgres template) are kept between runs:
/// `$XDG_CACHE_HOME/taskwatch`, else `$HOME/.cache/taskwatch`; `None` when neither variable is set.
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()).map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").filter(|home| !home.is_empty()).map(|home| PathBuf::from(home).join(".cache"))
    })?;
    Some(base.join("taskwatch"))
}

/// Where `program` is on `PATH`: the first executable file of that name; `None` when there is none.
pub fn on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| {
        candidate.metadata().is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    })
}

/// The workspace root (this crate lives in `shared/testkit`).
fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.ancestors().nth(2).unwrap_or(manifest_dir).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_directory_is_at_the_workspace_root_unless_overridden() {
        let target = target_dir();
        if std::env::var_os("CARGO_TARGET_DIR").is_none() {
            assert_eq!(target, root().join("target"));
        }
        assert!(root().join("Cargo.lock").is_file(), "{} is not the workspace root", root().display());
    }

    #[test]
    fn a_missing_binary_names_its_path_and_how_to_build_it() {
        let error = binary("no-such-service").expect_err("not built");
        let message = error.to_string();
        assert!(
            message.contains(&target_dir().join("debug").join("no-such-service").display().to_string()),
            "{message}"
        );
        assert!(message.contains("cargo build --workspace --bins"), "{message}");
    }
}
