//! What can go wrong while preparing or talking to Prometheus in a test.

use std::path::PathBuf;

use crate::HarnessError;
use crate::alerting::AlertingError;

#[derive(Debug, thiserror::Error)]
pub enum MonitoringError {
    /// A tool is missing (the message names the package) or failed.
    #[error(transparent)]
    Tool(#[from] AlertingError),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid YAML of the expected shape")]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_norway::Error,
    },
    /// A configuration or registry does not have the shape the test relies on.
    #[error("{0}")]
    Shape(String),
    #[error("Prometheus API: {context}")]
    Api {
        context: String,
        #[source]
        source: reqwest::Error,
    },
    /// Prometheus answered, but with an error (a bad query, an unknown endpoint).
    #[error("Prometheus refused `{request}`: {message}")]
    Refused { request: String, message: String },
    #[error("`{expr}` did not meet the condition within {timeout:?}; last result: {last}")]
    WaitTimedOut { expr: String, timeout: std::time::Duration, last: String },
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error(transparent)]
    Testkit(#[from] testkit::Error),
}

impl MonitoringError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }

    pub(crate) fn api(context: impl Into<String>) -> impl FnOnce(reqwest::Error) -> Self {
        let context = context.into();
        move |source| Self::Api { context, source }
    }
}
