//! The write ceiling: pgbench running the create path's SQL (bench/pgbench/create_task.sql) straight against
//! Postgres, with as many connections as the backend's pool.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::AsyncReadExt as _;

use crate::children::{self, Ended};
use crate::interrupt::Interrupt;

const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PgbenchResult {
    pub clients: u32,
    pub transactions: u64,
    pub failed: u64,
    /// Transactions per second, without the initial connection time.
    pub tps: f64,
    pub latency_avg_ms: f64,
}

#[derive(Debug, Clone)]
pub struct Pgbench<'a> {
    pub program: &'a Path,
    pub script: &'a Path,
    pub database_url: &'a str,
    pub clients: u32,
    /// pgbench's own threads: one per core, so the client is never what limits it.
    pub threads: u32,
}

impl Pgbench<'_> {
    pub async fn run(&self, duration: Duration, interrupt: &mut Interrupt) -> anyhow::Result<PgbenchResult> {
        let mut command = tokio::process::Command::new(self.program);
        command
            // No vacuum of pgbench's own tables (there are none); prepared statements, as the backend's driver.
            .args(["--no-vacuum", "--protocol=prepared"])
            .arg(format!("--client={}", self.clients))
            .arg(format!("--jobs={}", self.threads.min(self.clients).max(1)))
            .arg(format!("--time={}", duration.as_secs().max(1)))
            .arg("--file")
            .arg(self.script)
            .arg(self.database_url)
            .stdout(Stdio::piped());
        let mut child = children::spawn_group_leader("pgbench", &mut command)?;
        let mut stdout = child.stdout.take().context("pgbench's stdout is piped")?;
        let output = tokio::spawn(async move {
            let mut text = String::new();
            stdout.read_to_string(&mut text).await.map(|_| text)
        });
        match children::wait_or_stop(&mut child, interrupt, STOP_GRACE).await.context("waiting for pgbench")? {
            Ended::Interrupted => bail!("interrupted during pgbench"),
            Ended::Exited(status) if !status.success() => bail!("pgbench failed ({status}); its errors are above"),
            Ended::Exited(_) => {}
        }
        let output = output.await.context("reading pgbench's report")?.context("reading pgbench's report")?;
        parse_report(&output, self.clients).with_context(|| format!("unexpected pgbench report:\n{output}"))
    }
}

fn parse_report(report: &str, clients: u32) -> anyhow::Result<PgbenchResult> {
    let value_after = |label: &str| -> anyhow::Result<&str> {
        let line =
            report.lines().find_map(|line| line.trim().strip_prefix(label)).with_context(|| format!("no `{label}`"))?;
        line.split_whitespace().next().with_context(|| format!("nothing after `{label}`"))
    };
    let parse_f64 = |label: &str| -> anyhow::Result<f64> {
        let raw = value_after(label)?;
        raw.parse().with_context(|| format!("`{label}` is `{raw}`"))
    };
    let parse_u64 = |label: &str| -> anyhow::Result<u64> {
        let raw = value_after(label)?;
        raw.parse().with_context(|| format!("`{label}` is `{raw}`"))
    };
    Ok(PgbenchResult {
        clients,
        transactions: parse_u64("number of transactions actually processed:")?,
        failed: parse_u64("number of failed transactions:")?,
        tps: parse_f64("tps =")?,
        latency_avg_ms: parse_f64("latency average =")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_of_pgbench_15_is_read() {
        let report = "pgbench (15.20 (Debian 15.20-0+deb12u1))\n\
                      transaction type: create_task.sql\n\
                      scaling factor: 1\n\
                      query mode: prepared\n\
                      number of clients: 10\n\
                      number of threads: 2\n\
                      maximum number of tries: 1\n\
                      duration: 10 s\n\
                      number of transactions actually processed: 43290\n\
                      number of failed transactions: 0 (0.000%)\n\
                      latency average = 2.306 ms\n\
                      initial connection time = 38.765 ms\n\
                      tps = 4337.105182 (without initial connection time)\n";
        let result = parse_report(report, 10).expect("parses");
        assert_eq!(
            result,
            PgbenchResult { clients: 10, transactions: 43290, failed: 0, tps: 4337.105182, latency_avg_ms: 2.306 }
        );
    }

    #[test]
    fn report_without_tps_is_an_error() {
        assert!(parse_report("pgbench (15.20)\nnumber of failed transactions: 0\n", 10).is_err());
    }
}
