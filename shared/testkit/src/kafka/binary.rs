//! Where the tansu broker binary is.

use std::path::PathBuf;

use crate::Error;

/// Points at the tansu binary to use; `cargo xtask test` sets it.
pub const TANSU_BIN_ENV: &str = "TASKWATCH_TANSU_BIN";

/// The tansu release tests and the native stack run against; pinned so every machine runs the same broker.
pub const TANSU_VERSION: &str = "0.6.0";

/// The cargo features tansu is built with: `libsql` brings the SQLite storage engine [`Broker`]
/// runs on (data survives a restart); `dynostore` the in-memory one. Both together are the
/// combination known to compile with `--locked`.
///
/// [`Broker`]: super::Broker
pub const TANSU_FEATURES: &str = "dynostore,libsql";

/// Where `cargo xtask` installs tansu (`cargo install --root` this directory), under `$HOME`. The
/// version and storage feature are part of the name, so a cached build without them is never reused.
pub const INSTALL_ROOT_NAME: &str = "tansu-0.6.0-libsql";

const PROGRAM: &str = "tansu";

/// The `cargo install --root` directory xtask uses: [`INSTALL_ROOT_NAME`] in the workspace's cache directory.
pub fn install_root() -> Option<PathBuf> {
    crate::workspace::cache_dir().map(|cache| cache.join(INSTALL_ROOT_NAME))
}

/// The tansu binary: `$TASKWATCH_TANSU_BIN`, else `bin/tansu` under [`install_root`], else `tansu`
/// on `PATH`. It must have been built with [`TANSU_FEATURES`].
pub fn tansu_binary() -> Result<PathBuf, Error> {
    if let Some(explicit) = std::env::var_os(TANSU_BIN_ENV).filter(|value| !value.is_empty()) {
        let explicit = PathBuf::from(explicit);
        return if explicit.is_file() {
            Ok(explicit)
        } else {
            Err(Error::TansuNotInstalled { searched: format!("{} (from {TANSU_BIN_ENV})", explicit.display()) })
        };
    }
    let cached = install_root().map(|root| root.join("bin").join(PROGRAM));
    if let Some(cached) = cached.as_ref().filter(|path| path.is_file()) {
        return Ok(cached.clone());
    }
    if let Some(on_path) = find_on_path() {
        return Ok(on_path);
    }
    let cached =
        cached.map_or_else(|| format!("~/.cache/taskwatch/{INSTALL_ROOT_NAME}/bin/tansu"), |p| p.display().to_string());
    Err(Error::TansuNotInstalled { searched: format!("${TANSU_BIN_ENV} (unset), {cached}, PATH") })
}

/// Whether [`tansu_binary`] finds a binary.
pub fn is_installed() -> bool {
    tansu_binary().is_ok()
}

fn find_on_path() -> Option<PathBuf> {
    crate::workspace::on_path(PROGRAM)
}
