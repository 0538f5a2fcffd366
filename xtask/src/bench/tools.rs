//! The programs the bench drives, installed when missing by the provisioning script's `bench` profile: Postgres
//! with pgbench and psql, and wrk (apt); k6.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::interrupt::Interrupt;
use crate::provision::{self, Profile};

/// Where each program is.
#[derive(Debug, Clone)]
pub struct Tools {
    pub k6: PathBuf,
    pub wrk: PathBuf,
    pub pgbench: PathBuf,
    pub psql: PathBuf,
}

/// Installs what is missing and locates everything.
pub async fn ensure(interrupt: &mut Interrupt) -> anyhow::Result<Tools> {
    let k6 = provision::ensure(Profile::Bench, interrupt).await?.path("TASKWATCH_K6_BIN")?;
    let wrk = testkit::workspace::on_path("wrk")
        .context("wrk is not on PATH although the provisioning script installs it (apt package `wrk`)")?;
    let bin_dir = testkit::postgres::bin_dir();
    Ok(Tools { k6, wrk, pgbench: bin_dir.join("pgbench"), psql: bin_dir.join("psql") })
}
