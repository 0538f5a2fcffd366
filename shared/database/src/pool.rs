//! The connection pool and the readiness ping.

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection as _, PgPool};

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
        // sqlx's default pings every connection it hands out: a round trip to Postgres before each request's own
        // queries, doubling a read's round trips. Only a connection idle for a while is pinged instead; one in
        // steady use has just proved itself, and a broken one is discarded by the query that finds it out.
        .test_before_acquire(false)
        .before_acquire(|connection, metadata| {
            Box::pin(async move {
                if metadata.idle_for >= PING_WHEN_IDLE_FOR {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options)
}

/// How long a pooled connection may sit idle before it is pinged on its way out of the pool: after a Postgres
/// restart, or a network drop while the service was quiet, its first use is then not a failed request.
const PING_WHEN_IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

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
