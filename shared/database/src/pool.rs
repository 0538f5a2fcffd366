//! The connection pool and the readiness ping.

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::config::DatabaseConfig;

/// The readiness ping failed: Postgres is unreachable, or no connection was free within the acquire timeout.
#[derive(Debug, thiserror::Error)]
#[error("Postgres did not answer a ping")]
pub struct PingError(#[source] pub sqlx::Error);

/// A lazily connecting pool: start-up does not fail just because Postgres is briefly unavailable, and the pool
/// reconnects by itself once it is back (readiness reports the outage meanwhile). Every connection carries
/// `application_name` (shown in `pg_stat_activity`) and the configured `statement_timeout`, so a runaway query
/// cannot hold a connection forever.
pub fn connect(config: &DatabaseConfig, application_name: &str) -> PgPool {
    let statement_timeout_ms = config.statement_timeout.as_millis().to_string();
    let options = config
        .target
        .options()
        .clone()
        .application_name(application_name)
        .options([("statement_timeout", statement_timeout_ms.as_str())]);
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .connect_lazy_with(options)
}

/// `SELECT 1` on a pooled connection.
pub async fn ping(pool: &PgPool) -> Result<(), PingError> {
    sqlx::query("SELECT 1").execute(pool).await.map(drop).map_err(PingError)
}

/// [`ping`] shaped for `observability::Health::with_check("postgres", timeout, …)`.
pub fn readiness_check(pool: &PgPool) -> impl Fn() -> observability::CheckFuture + Send + Sync + 'static {
    let pool = pool.clone();
    move || {
        let pool = pool.clone();
        Box::pin(async move {
            // The source carries the cause ("connection refused", "pool timed out"); the outer message alone
            // would not tell an operator which.
            ping(&pool).await.map_err(|PingError(source)| format!("Postgres did not answer a ping: {source}"))
        })
    }
}
