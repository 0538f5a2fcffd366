//! Where the Postgres server binaries are and which account they must run as.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, User};
use tokio::process::Command;

use crate::Error;
use crate::command::run_checked;

/// Overrides the directory holding `initdb`, `pg_ctl` and `postgres`.
pub const BIN_DIR_ENV: &str = "TASKWATCH_PG_BIN_DIR";

/// Where Debian's `postgresql-15` package installs the server binaries.
pub const DEFAULT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

const REQUIRED_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];
const SERVICE_ACCOUNT: &str = "postgres";
const RUNUSER: &str = "/usr/sbin/runuser";

/// The directory the server binaries are taken from: `$TASKWATCH_PG_BIN_DIR`, else [`DEFAULT_BIN_DIR`].
pub fn bin_dir() -> PathBuf {
    std::env::var_os(BIN_DIR_ENV)
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_BIN_DIR), PathBuf::from)
}

/// Whether `initdb`, `pg_ctl` and `postgres` are present in [`bin_dir`].
pub fn is_installed() -> bool {
    let dir = bin_dir();
    REQUIRED_PROGRAMS.iter().all(|program| dir.join(program).is_file())
}

/// The server binaries, and the account to run them as.
#[derive(Debug, Clone)]
pub(crate) struct Binaries {
    dir: PathBuf,
    /// Postgres refuses to run as root, so as root we hand its files to the `postgres` account and run
    /// every server program through `runuser`.
    run_as: Option<ServiceAccount>,
}

#[derive(Debug, Clone, Copy)]
struct ServiceAccount {
    uid: Uid,
    gid: Gid,
}

impl Binaries {
    pub(crate) fn locate() -> Result<Self, Error> {
        let dir = bin_dir();
        if !is_installed() {
            return Err(Error::PostgresNotInstalled { dir, env_var: BIN_DIR_ENV });
        }
        let run_as = if Uid::effective().is_root() {
            let account = User::from_name(SERVICE_ACCOUNT)
                .ok()
                .flatten()
                .ok_or_else(|| Error::PostgresNotInstalled { dir: dir.clone(), env_var: BIN_DIR_ENV })?;
            Some(ServiceAccount { uid: account.uid, gid: account.gid })
        } else {
            None
        };
        Ok(Self { dir, run_as })
    }

    /// A command running `program` from the bin directory as the right account.
    pub(crate) fn command(&self, program: &str) -> std::process::Command {
        let program = self.dir.join(program);
        match self.run_as {
            Some(_) => {
                let mut command = std::process::Command::new(RUNUSER);
                command.args(["-u", SERVICE_ACCOUNT, "--"]).arg(program);
                command
            }
            None => std::process::Command::new(program),
        }
    }

    /// Async flavour of [`Binaries::command`] with `args` appended.
    pub(crate) fn run<I, S>(&self, program: &str, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.command(program);
        command.args(args);
        Command::from(command)
    }

    /// Gives `path` to the account the server runs as, so it can create files inside.
    pub(crate) fn hand_over(&self, path: &Path) -> Result<(), Error> {
        match self.run_as {
            Some(account) => std::os::unix::fs::chown(path, Some(account.uid.as_raw()), Some(account.gid.as_raw()))
                .map_err(Error::io(format!("handing {} to the `{SERVICE_ACCOUNT}` account", path.display()))),
            None => Ok(()),
        }
    }

    /// The server's version, e.g. `15.18`; part of the template cache key so an upgrade re-initialises.
    pub(crate) async fn version(&self) -> Result<String, Error> {
        let output = run_checked(Command::new(self.dir.join("postgres")).arg("--version")).await?;
        // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        let version = output
            .split_once("(PostgreSQL)")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .filter(|version| version.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'))
            .unwrap_or("unknown");
        Ok(version.to_owned())
    }
}
