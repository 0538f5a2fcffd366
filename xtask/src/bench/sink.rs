//! Runs the bench's telemetry sink (`bench-telemetry-sink`, see telemetry_sink/main.rs) as its own process and
//! reads what it counted.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::children;

const LISTENING_PREFIX: &str = "listening on ";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What the sink received and scraped during one backend run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SinkTotals {
    pub export_requests: u64,
    pub spans: u64,
    /// Spans of kind SERVER: one per request the backend handled (API calls and scrapes alike).
    pub server_spans: u64,
    pub export_bytes: u64,
    pub rejected_exports: u64,
    pub scrapes: u64,
    pub failed_scrapes: u64,
    pub last_scrape_bytes: u64,
    pub last_scrape_samples: u64,
}

impl SinkTotals {
    fn from_json(line: &str) -> anyhow::Result<Self> {
        let value: serde_json::Value = serde_json::from_str(line).context("the sink's totals are not JSON")?;
        let field = |name: &str| value[name].as_u64().with_context(|| format!("the sink's totals lack `{name}`"));
        Ok(Self {
            export_requests: field("export_requests")?,
            spans: field("spans")?,
            server_spans: field("server_spans")?,
            export_bytes: field("export_bytes")?,
            rejected_exports: field("rejected_exports")?,
            scrapes: field("scrapes")?,
            failed_scrapes: field("failed_scrapes")?,
            last_scrape_bytes: field("last_scrape_bytes")?,
            last_scrape_samples: field("last_scrape_samples")?,
        })
    }
}

/// A running sink, killed if dropped without [`TelemetrySink::stop`].
#[derive(Debug)]
pub struct TelemetrySink {
    child: Child,
    pid: u32,
    stdout: Lines<BufReader<ChildStdout>>,
    endpoint: String,
}

impl TelemetrySink {
    /// Starts the sink scraping `scrape_url` every `scrape_interval`, and waits for its OTLP endpoint.
    pub async fn start(binary: &Path, scrape_url: &str, scrape_interval: Duration) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command
            .args(["--scrape-url", scrape_url])
            .args(["--scrape-interval-ms", &scrape_interval.as_millis().to_string()])
            .stdout(Stdio::piped());
        let mut child = children::spawn_group_leader("bench-telemetry-sink", &mut command)?;
        let pid = child.id().context("the telemetry sink exited at once")?;
        let mut stdout = BufReader::new(child.stdout.take().context("the sink's stdout is piped")?).lines();
        let first = tokio::time::timeout(START_TIMEOUT, stdout.next_line())
            .await
            .context("the telemetry sink did not start listening in time")?
            .context("reading the telemetry sink's output")?;
        let endpoint = match first.as_deref().and_then(|line| line.strip_prefix(LISTENING_PREFIX)) {
            Some(endpoint) => endpoint.to_owned(),
            None => bail!("the telemetry sink did not start (it said {first:?})"),
        };
        Ok(Self { child, pid, stdout, endpoint })
    }

    /// The base URL for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Stops the sink and returns its totals. Stop the backend first, so its last spans are in.
    pub async fn stop(mut self) -> anyhow::Result<SinkTotals> {
        let status = children::stop_group(&mut self.child, Signal::SIGTERM, STOP_GRACE)
            .await
            .context("stopping the telemetry sink")?;
        let mut last = None;
        while let Some(line) = self.stdout.next_line().await.context("reading the telemetry sink's totals")? {
            last = Some(line);
        }
        if !status.success() {
            bail!("the telemetry sink exited with {status}");
        }
        SinkTotals::from_json(&last.context("the telemetry sink printed no totals")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_read_by_name() {
        let line = r#"{"export_requests":3,"spans":1200,"server_spans":1000,"export_bytes":90000,"rejected_exports":0,"scrapes":40,
            "failed_scrapes":1,"last_scrape_bytes":14000,"last_scrape_samples":210}"#;
        let totals = SinkTotals::from_json(&line.replace('\n', "")).expect("parses");
        assert_eq!(totals.spans, 1200);
        assert_eq!(totals.failed_scrapes, 1);
        assert!(SinkTotals::from_json(r#"{"spans":1}"#).is_err(), "missing fields are an error");
    }
}
