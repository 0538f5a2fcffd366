//! The connection pool.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::error::{Context, StoreError};

#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Server-side cap on one statement, so a runaway query cannot hold a connection forever.
    pub statement_timeout: Duration,
    /// Shown in `pg_stat_activity`.
    pub application_name: &'static str,
}

/// A lazily connecting pool: start-up does not fail just because Postgres is briefly unavailable, and the pool
/// reconnects by itself once it is back (readiness reports the outage meanwhile).
pub fn connect(options: PgConnectOptions, settings: &PoolSettings) -> PgPool {
    let statement_timeout_ms = settings.statement_timeout.as_millis().to_string();
    let options = options
        .application_name(settings.application_name)
        .options([("statement_timeout", statement_timeout_ms.as_str())]);
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_lazy_with(options)
}

/// `SELECT 1`: the readiness probe.
pub async fn ping(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::query("SELECT 1").execute(pool).await.context("ping").map(|_| ())
}
