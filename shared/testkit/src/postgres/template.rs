//! A freshly `initdb`'d data directory, created once per machine and copied for every server.
//!
//! `initdb` costs seconds; copying its result costs a fraction of one. The template lives under
//! `$XDG_CACHE_HOME/taskwatch` (or `$HOME/.cache/taskwatch`) and is keyed by the server version.

use std::io;
use std::path::{Path, PathBuf};

use tokio::process::Command;
use uuid::Uuid;

use super::binaries::Binaries;
use crate::Error;
use crate::command::run_checked;

/// A file every complete data directory has; its presence marks a usable template.
const COMPLETE_MARKER: &str = "PG_VERSION";

/// Returns the cached template data directory for this server version, creating it if needed.
///
/// Safe to call from many processes at once: each creator builds a private copy and publishes it
/// with an atomic rename; the losers of that race discard theirs.
pub(crate) async fn ensure(binaries: &Binaries) -> Result<PathBuf, Error> {
    let cache = cache_dir();
    let template = cache.join(format!("pg-template-{}", binaries.version().await?));
    if is_complete(&template) {
        return Ok(template);
    }
    std::fs::create_dir_all(&cache).map_err(Error::io(format!("creating cache directory {}", cache.display())))?;

    // initdb runs as the server account, which may not be able to enter $HOME, so it works in the
    // system temp dir; the result is then copied (ownership preserved) next to its final place so
    // the publishing rename stays on one file system.
    let scratch = tempfile::Builder::new()
        .prefix("testkit-initdb-")
        .tempdir()
        .map_err(Error::io("creating a scratch directory for initdb"))?;
    binaries.hand_over(scratch.path())?;
    let fresh = scratch.path().join("data");
    run_checked(
        binaries
            .run("initdb", ["-U", "postgres", "-A", "trust", "-E", "UTF8"])
            .args(["--locale=C", "--no-sync", "-D"])
            .arg(&fresh),
    )
    .await?;

    let staging = cache.join(format!(".pg-template-staging-{}", Uuid::now_v7().simple()));
    copy_tree(&fresh, &staging).await?;
    match std::fs::rename(&staging, &template) {
        Ok(()) => Ok(template),
        Err(_) if is_complete(&template) => {
            // Another process published first; its template is as good as ours.
            remove_quietly(&staging);
            Ok(template)
        }
        Err(source) => {
            remove_quietly(&staging);
            Err(Error::Io { context: format!("publishing Postgres template {}", template.display()), source })
        }
    }
}

/// Copies a directory tree with `cp -a`, which keeps ownership and the 0700 mode Postgres insists on.
pub(crate) async fn copy_tree(from: &Path, to: &Path) -> Result<(), Error> {
    run_checked(Command::new("cp").arg("-a").arg(from).arg(to)).await.map(drop)
}

fn is_complete(data_dir: &Path) -> bool {
    data_dir.join(COMPLETE_MARKER).is_file()
}

/// The workspace's cache directory, else one under the temporary directory (a template is only a speed-up).
fn cache_dir() -> PathBuf {
    crate::workspace::cache_dir().unwrap_or_else(|| std::env::temp_dir().join("taskwatch"))
}

fn remove_quietly(dir: &Path) {
    if let Err(error) = std::fs::remove_dir_all(dir)
        && error.kind() != io::ErrorKind::NotFound
    {
        eprintln!("testkit: could not remove {}: {error}", dir.display());
    }
}
