//! What can go wrong while preparing or talking to Prometheus in a test.

use std::path::PathBuf;

use crate::HarnessError;
use crate::alerting::AlertingError;

/// Why a test could not prepare, check or query Prometheus (as opposed to a failed assertion).
#[derive(Debug, thiserror::Error)]
pub enum MonitoringError {
    /// A tool is missing (the message names the package) or failed.
    #[error(transparent)]
    Tool(#[from] AlertingError),
    /// Reading, writing or listing a file or directory failed.
    #[error("{context}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file does not parse as YAML, or not into the types it is read into (the telemetry registry), or the
    /// test configuration could not be serialized.
    #[error("{path} is not valid YAML of the expected shape")]
    Yaml {
        /// The file, or `<test prometheus.yml>` when serializing the rewritten configuration failed.
        path: PathBuf,
        /// The YAML library's error.
        #[source]
        source: serde_norway::Error,
    },
    /// A configuration or registry does not have the shape the test relies on.
    #[error("{0}")]
    Shape(String),
    /// An HTTP API call failed before Prometheus could answer it, or its body was not JSON.
    #[error("Prometheus API: {context}")]
    Api {
        /// The request, e.g. `GET /api/v1/query`.
        context: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// Prometheus answered, but with an error (a bad query, an unknown endpoint).
    #[error("Prometheus refused `{request}`: {message}")]
    Refused {
        /// The PromQL expression for a query, otherwise the method and path.
        request: String,
        /// Prometheus' `errorType` and `error`, the reload's response body, or why the answer was unusable.
        message: String,
    },
    /// [`Prometheus::wait_for`](super::Prometheus::wait_for) gave up: within the timeout the query never returned
    /// a result meeting the condition.
    #[error("`{expr}` did not meet the condition within {timeout:?}; last result: {last}")]
    WaitTimedOut {
        /// The PromQL expression that was re-run.
        expr: String,
        /// How long it was re-run for.
        timeout: std::time::Duration,
        /// The last samples (`Debug`-printed) or the last transient error, `(no answer)` when there was none.
        last: String,
    },
    /// No free port for Prometheus, or it did not become ready in time.
    #[error(transparent)]
    Harness(#[from] HarnessError),
    /// Prometheus' process could not be spawned.
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
