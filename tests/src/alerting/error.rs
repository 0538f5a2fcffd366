//! What can go wrong while preparing or talking to Alertmanager in a test.

use std::path::PathBuf;

use crate::HarnessError;

/// Why a test could not prepare, check or talk to Alertmanager (as opposed to a failed assertion).
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    /// A monitoring tool is not installed; the message says how to install it.
    #[error(
        "`{tool}` was not found on PATH; install the Debian package `{package}` \
         (`sudo apt-get install {package}`; `cargo xtask test` installs it in CI)"
    )]
    ToolMissing {
        /// The program looked for on `PATH`.
        tool: &'static str,
        /// The Debian package that installs it.
        package: &'static str,
    },
    /// Reading, writing or listing a file or directory failed, or a tool could not be started.
    #[error("{context}")]
    Io {
        /// What was being done, naming the path or the command.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration or rule file does not parse as YAML, or the test copy could not be serialized.
    #[error("{path} is not valid YAML")]
    Yaml {
        /// The file, or `<test copy>` when serializing the rewritten configuration failed.
        path: PathBuf,
        /// The YAML library's error.
        #[source]
        source: serde_norway::Error,
    },
    /// The configuration does not have the shape the test copy relies on.
    #[error("unexpected Alertmanager configuration: {0}")]
    Shape(String),
    /// A tool that had to succeed exited with failure: `amtool check-config` rejecting a configuration, a route
    /// that is not the expected one, a template that does not render.
    #[error("`{command}` failed ({status}):\n{output}")]
    CommandFailed {
        /// The program and its arguments.
        command: String,
        /// How it exited.
        status: std::process::ExitStatus,
        /// Its stdout and stderr together, trimmed.
        output: String,
    },
    /// An `/api/v2` call failed: no connection, a status other than success, or a body that is not the expected JSON.
    #[error("Alertmanager API: {context}")]
    Api {
        /// Which call, e.g. `posting alerts`.
        context: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// No free port for Alertmanager, or it did not become ready in time.
    #[error(transparent)]
    Harness(#[from] HarnessError),
    /// Alertmanager's process could not be spawned.
    #[error(transparent)]
    Testkit(#[from] testkit::Error),
}

impl AlertingError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }

    pub(crate) fn api(context: impl Into<String>) -> impl FnOnce(reqwest::Error) -> Self {
        let context = context.into();
        move |source| Self::Api { context, source }
    }
}
