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
    PostgresNotInstalled {
        /// The directory looked in.
        dir: PathBuf,
        /// The variable that points elsewhere (`TASKWATCH_PG_BIN_DIR`).
        env_var: &'static str,
    },

    /// The tansu broker binary was not found.
    #[error(
        "the tansu Kafka broker is not installed (looked at {searched}); run `cargo xtask test`, which \
         builds it into $HOME/.cache/taskwatch, or set TASKWATCH_TANSU_BIN to a build with the `libsql` feature"
    )]
    TansuNotInstalled {
        /// Every place looked, in order.
        searched: String,
    },

    /// The pinned Python tools (see [`crate::python`]) are not installed, or with other versions.
    #[error(
        "the pinned Python tools are not installed in {dir} (run `cargo xtask test`, which installs them, or \
         point TASKWATCH_PYTHON_TOOLS at a virtualenv holding testkit::python::REQUIREMENTS and its requirements.txt)"
    )]
    PythonToolsMissing {
        /// The virtualenv expected to hold them.
        dir: PathBuf,
    },

    /// Another package's binary, which a workspace test run builds, is not in the target directory.
    #[error(
        "binary {path} not found: build it with `cargo build --workspace --bins` (a workspace test run, \
         `cargo xtask test`, builds every service first)"
    )]
    MissingBinary {
        /// Where the binary was expected.
        path: PathBuf,
    },

    /// A program could not be started at all.
    #[error("could not start `{command}`")]
    Spawn {
        /// The command line.
        command: String,
        /// Why it could not start, e.g. not found or not executable.
        #[source]
        source: io::Error,
    },

    /// A program ran and reported failure.
    #[error("`{command}` failed ({status}):\n{output}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// Its stderr (and stdout), or the relevant part of a server log.
        output: String,
    },

    /// A file-system or socket operation failed.
    #[error("{context}")]
    Io {
        /// What was being done, e.g. `creating the mail directory …`: the error's message.
        context: String,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },

    /// Sending a signal to a child process failed.
    #[error("could not send {signal} to `{name}` (pid {pid})")]
    Signal {
        /// The child's name, as the harness knows it.
        name: String,
        /// The child's process id.
        pid: u32,
        /// The signal that could not be sent.
        signal: nix::sys::signal::Signal,
        /// Why `kill(2)` failed, e.g. the process is gone.
        #[source]
        source: nix::Error,
    },

    /// A database statement or connection failed.
    #[cfg(feature = "database")]
    #[error("{context}")]
    Database {
        /// What was being done, e.g. `connecting to …` (passwords left out): the error's message.
        context: String,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },

    /// `DATABASE_URL` (or another server URL) could not be used.
    #[cfg(feature = "database")]
    #[error("invalid Postgres URL in {origin}: {reason}")]
    InvalidDatabaseUrl {
        /// The URL, its password left out.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
