//! Connection-pool gauges (OpenTelemetry `db.client.connection.*` rendered the Prometheus way).

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Gauge · connections · `db_client_connection_state` (`used`|`idle`), `db_client_connection_pool_name` (the
/// service name). Open connections of the pool by state.
pub const DB_CLIENT_CONNECTION_COUNT: &str = "db_client_connection_count";
/// Gauge · connections · `db_client_connection_pool_name`. The most connections the pool may open.
pub const DB_CLIENT_CONNECTION_MAX: &str = "db_client_connection_max";

const POOL_NAME_LABEL: &str = "db_client_connection_pool_name";

/// How often [`sample_pool`] is usually run: often enough for a saturation alert, cheap (no I/O).
pub const POOL_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Registers the descriptions. The series appear with the first sample, which [`sample_pool`] takes at once:
/// they carry the pool name, which is not known here.
pub fn describe() {
    metrics::describe_gauge!(DB_CLIENT_CONNECTION_COUNT, metrics::Unit::Count, "Database connections by state.");
    metrics::describe_gauge!(
        DB_CLIENT_CONNECTION_MAX,
        metrics::Unit::Count,
        "Maximum database connections the pool may open."
    );
}

/// Records the pool's connection counts once.
pub fn record_pool(pool: &PgPool, pool_name: &'static str) {
    let size = pool.size();
    // Sampled separately, so idle may momentarily exceed size.
    let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
    let max = pool.options().get_max_connections();
    metrics::gauge!(DB_CLIENT_CONNECTION_COUNT, "db_client_connection_state" => "used", POOL_NAME_LABEL => pool_name)
        .set(f64::from(size - idle));
    metrics::gauge!(DB_CLIENT_CONNECTION_COUNT, "db_client_connection_state" => "idle", POOL_NAME_LABEL => pool_name)
        .set(f64::from(idle));
    metrics::gauge!(DB_CLIENT_CONNECTION_MAX, POOL_NAME_LABEL => pool_name).set(f64::from(max));
}

/// Records the pool every `interval`, starting now, until `stop` fires; spawn it as a background chore.
pub async fn sample_pool(pool: PgPool, pool_name: &'static str, interval: Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => record_pool(&pool, pool_name),
        }
    }
}
