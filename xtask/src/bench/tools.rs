//! The programs the bench drives, installed when missing by the provisioning script's `bench` profile: Postgres
//! with pgbench and psql, and wrk (apt); k6; the tansu broker the whole system runs on in the pipeline phase.

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
    pub tansu: PathBuf,
}

/// Installs what is missing and locates everything.
pub async fn ensure(interrupt: &mut Interrupt) -> anyhow::Result<Tools> {
    let provisioned = provision::ensure(Profile::Bench, interrupt).await?;
    let k6 = provisioned.path("TASKWATCH_K6_BIN")?;
    let tansu = provisioned.path(testkit::kafka::TANSU_BIN_ENV)?;
    let wrk = testkit::workspace::on_path("wrk")
        .context("wrk is not on PATH although the provisioning script installs it (apt package `wrk`)")?;
    let bin_dir = testkit::postgres::bin_dir();
    Ok(Tools { k6, wrk, pgbench: bin_dir.join("pgbench"), psql: bin_dir.join("psql"), tansu })
}
