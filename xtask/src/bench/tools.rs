//! The programs the bench drives, installed when missing: Postgres with pgbench and psql (apt), and k6
//! ([`provision::ensure_k6`]).

use std::path::PathBuf;

use crate::provision::{self, Requirement};

const PGBENCH: Requirement = Requirement {
    what: "pgbench and psql",
    is_present: pgbench_and_psql_present,
    apt_packages: &["postgresql-15", "postgresql-client-15"],
};

/// Where each program is.
#[derive(Debug, Clone)]
pub struct Tools {
    pub k6: PathBuf,
    pub pgbench: PathBuf,
    pub psql: PathBuf,
}

/// Installs what is missing (apt as root, k6 into the cache) and locates everything.
pub async fn ensure() -> anyhow::Result<Tools> {
    provision::ensure(&[&provision::POSTGRES, &PGBENCH]).await?;
    let k6 = provision::ensure_k6().await?;
    let bin_dir = testkit::postgres::bin_dir();
    Ok(Tools { k6, pgbench: bin_dir.join("pgbench"), psql: bin_dir.join("psql") })
}

fn pgbench_and_psql_present() -> bool {
    let dir = testkit::postgres::bin_dir();
    dir.join("pgbench").is_file() && dir.join("psql").is_file()
}
