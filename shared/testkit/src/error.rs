use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

/// Everything that can go wrong while starting or cleaning up test infrastructure.
///
/// Each variant names what was being done, so a failing test says which step broke and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Postgres server binaries are not where we look for them.
    #[error(
        "Postgres server binaries not found in {dir} (install the `postgresql-15` package, \
         run `cargo xtask test` which installs it, or point {env_var} at another bin directory)"
    )]
    PostgresNotInstalled { dir: PathBuf, env_var: &'static str },

    /// The tansu broker binary was not found.
    #[error(
        "the tansu Kafka broker is not installed (looked at {searched}); run `cargo xtask test`, which \
         builds it into $HOME/.cache/taskwatch, or set TASKWATCH_TANSU_BIN to a build with the `libsql` feature"
    )]
    TansuNotInstalled { searched: String },

    /// The pinned Python tools (see [`crate::python`]) are not installed, or with other versions.
    #[error(
        "the pinned Python tools are not installed in {dir} (run `cargo xtask test`, which installs them, or \
         point TASKWATCH_PYTHON_TOOLS at a virtualenv holding testkit::python::REQUIREMENTS and its requirements.txt)"
    )]
    PythonToolsMissing { dir: PathBuf },

    /// Another package's binary, which a workspace test run builds, is not in the target directory.
    #[error(
        "binary {path} not found: build it with `cargo build --workspace --bins` (a workspace test run, \
         `cargo xtask test`, builds every service first)"
    )]
    MissingBinary { path: PathBuf },

    /// A program could not be started at all.
    #[error("could not start `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },

    /// A program ran and reported failure.
    #[error("`{command}` failed ({status}):\n{output}")]
    CommandFailed {
        command: String,
        status: ExitStatus,
        /// Its stderr (and stdout), or the relevant part of a server log.
        output: String,
    },

    /// A file-system or socket operation failed.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    /// Sending a signal to a child process failed.
    #[error("could not send {signal} to `{name}` (pid {pid})")]
    Signal {
        name: String,
        pid: u32,
        signal: nix::sys::signal::Signal,
        #[source]
        source: nix::Error,
    },

    /// A database statement or connection failed.
    #[cfg(feature = "database")]
    #[error("{context}")]
    Database {
        context: String,
        #[source]
        source: sqlx::Error,
    },

    /// `DATABASE_URL` (or another server URL) could not be used.
    #[cfg(feature = "database")]
    #[error("invalid Postgres URL in {origin}: {reason}")]
    InvalidDatabaseUrl { origin: String, reason: String },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
