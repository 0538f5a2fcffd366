//! One-off SQL through `psql`, for the little the bench asks of Postgres directly: a fresh database per backend,
//! quiet maintenance between loads, and the server's process id for CPU accounting.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail};
use tokio::process::Command;

#[derive(Debug, Clone)]
pub struct Psql {
    program: PathBuf,
    /// The server's maintenance database, as superuser.
    server_url: String,
}

impl Psql {
    pub fn new(program: &Path, server_url: &str) -> Self {
        Self { program: program.to_owned(), server_url: server_url.to_owned() }
    }

    /// Runs `sql` in `url`'s database and returns its unaligned, tuples-only output.
    pub async fn query_in(&self, url: &str, sql: &str) -> anyhow::Result<String> {
        let output = Command::new(&self.program)
            .args(["--no-psqlrc", "--quiet", "--tuples-only", "--no-align", "--set", "ON_ERROR_STOP=1"])
            .args(["--dbname", url, "--command", sql])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .with_context(|| format!("starting {}", self.program.display()))?;
        if !output.status.success() {
            bail!("psql `{sql}` failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
        }
        String::from_utf8(output.stdout).map(|text| text.trim().to_owned()).context("psql printed non-UTF-8")
    }

    /// Creates database `name` (a plain identifier) and returns its URL.
    pub async fn create_database(&self, name: &str) -> anyhow::Result<String> {
        self.query_in(&self.server_url, &format!("CREATE DATABASE {name}")).await?;
        Ok(self.database_url(name))
    }

    /// The URL of database `name` on this server.
    pub fn database_url(&self, name: &str) -> String {
        // The server URL ends in its maintenance database (`…/postgres`), which `name` replaces.
        let base = self.server_url.rsplit_once('/').map_or(self.server_url.as_str(), |(base, _)| base);
        format!("{base}/{name}")
    }

    /// Turns autovacuum off server-wide: the bench vacuums between loads itself (see [`Psql::settle`]), so
    /// maintenance never lands inside a measurement.
    pub async fn disable_autovacuum(&self) -> anyhow::Result<()> {
        self.query_in(&self.server_url, "ALTER SYSTEM SET autovacuum = off").await?;
        self.query_in(&self.server_url, "SELECT pg_reload_conf()").await.map(drop)
    }

    /// Brings database `url` to a steady state before a load: fresh statistics, no dead rows, and a checkpoint
    /// so none falls due during the next minutes.
    pub async fn settle(&self, url: &str) -> anyhow::Result<()> {
        self.query_in(url, "VACUUM ANALYZE").await?;
        self.query_in(url, "CHECKPOINT").await.map(drop)
    }

    /// The postmaster's process id: the parent of the checkpointer, which lives as long as the server.
    pub async fn checkpointer_pid(&self) -> anyhow::Result<u32> {
        let pid = self
            .query_in(&self.server_url, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
            .await?;
        pid.parse().with_context(|| format!("unexpected checkpointer pid `{pid}`"))
    }
}
