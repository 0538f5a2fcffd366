//! What can go wrong while preparing or talking to Alertmanager in a test.

use std::path::PathBuf;

use crate::HarnessError;

#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    /// A monitoring tool is not installed; the message says how to install it.
    #[error(
        "`{tool}` was not found on PATH; install the Debian package `{package}` \
         (`sudo apt-get install {package}`; `cargo xtask test` installs it in CI)"
    )]
    ToolMissing { tool: &'static str, package: &'static str },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid YAML")]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_norway::Error,
    },
    /// The configuration does not have the shape the test copy relies on.
    #[error("unexpected Alertmanager configuration: {0}")]
    Shape(String),
    #[error("`{command}` failed ({status}):\n{output}")]
    CommandFailed { command: String, status: std::process::ExitStatus, output: String },
    #[error("Alertmanager API: {context}")]
    Api {
        context: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(transparent)]
    Harness(#[from] HarnessError),
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
