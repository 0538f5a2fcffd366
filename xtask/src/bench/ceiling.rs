//! The framework ceiling under test (`bench-framework-ceiling`): the backend's `get` and `list` with nothing but
//! axum, sqlx and token verification, on the telemetry-off backend's database, driven by the same wrk loops.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use super::backend::DATABASE_CONNECTIONS;
use super::cpu::CpuMeter;
use super::k6::Endpoint;
use super::psql::Psql;
use super::report::{FrameworkCeilingRun, MemoryUse, Rounds};
use super::server::{Memory, RunningServer};
use super::under_test::Launch;
use super::wrk::WrkRunner;
use crate::interrupt::Interrupt;

/// Names its files.
const LABEL: &str = "ceiling";

/// The endpoints the ceiling answers: the reads, whose work it can match exactly. (A write's work is the
/// backend's own: validation, the event in the outbox, idempotency.)
pub const ENDPOINTS: [Endpoint; 2] = [Endpoint::Get, Endpoint::List];

#[derive(Debug)]
pub struct FrameworkCeiling<'a> {
    server: RunningServer,
    wrk: WrkRunner<'a>,
    idle_memory: Memory,
    endpoints: BTreeMap<Endpoint, Rounds>,
}

impl<'a> FrameworkCeiling<'a> {
    /// Starts the ceiling on `address` over `database_url`, with the backend's pool size and token secret.
    pub async fn start(
        binary: &Path,
        address: SocketAddr,
        database_url: &str,
        launch: Launch<'a>,
        interrupt: &mut Interrupt,
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command.envs([
            ("DATABASE_URL", database_url.to_owned()),
            ("DATABASE_MAX_CONNECTIONS", DATABASE_CONNECTIONS.to_string()),
            ("AUTH_JWT_SECRET", launch.jwt_secret.to_owned()),
            ("BIND_ADDR", address.ip().to_string()),
            ("PORT", address.port().to_string()),
        ]);
        let log_path = launch.results_dir.join("framework-ceiling.log");
        let server = RunningServer::start("framework ceiling", command, address, &log_path, interrupt).await?;
        let idle_memory = server.memory()?;
        let wrk = launch.wrk_runner(server.base_url(), LABEL, database_url);
        Ok(Self { server, wrk, idle_memory, endpoints: BTreeMap::new() })
    }

    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// One closed-loop round of `endpoint` (one of [`ENDPOINTS`]), added to its figures.
    pub async fn measure_round(
        &mut self,
        endpoint: Endpoint,
        duration: Duration,
        meter: &CpuMeter,
        psql: &Psql,
        interrupt: &mut Interrupt,
    ) -> anyhow::Result<()> {
        let measured = self.wrk.measure(endpoint, duration, meter, psql, interrupt).await?;
        self.endpoints.entry(endpoint).or_default().runs.push(measured.run);
        Ok(())
    }

    pub async fn stop(self) -> anyhow::Result<FrameworkCeilingRun> {
        let loaded = self.server.memory()?;
        self.server.stop().await?;
        Ok(FrameworkCeilingRun { endpoints: self.endpoints, memory: MemoryUse { idle: self.idle_memory, loaded } })
    }
}
