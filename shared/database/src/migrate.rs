//! A service's schema migrations, applied at start-up into the service's own schema.
//!
//! sqlx takes a Postgres advisory lock (per database) around the whole run, so replicas starting together apply
//! each migration exactly once. The bookkeeping table `<schema>._sqlx_migrations` lives next to the service's
//! tables, so services sharing one database never see each other's migration history.

use std::time::Duration;

use observability::Backoff;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _};
use tokio::time::Instant;

use crate::config::DatabaseConfig;
use crate::schema::Schema;

/// Ceiling of the first wait after Postgres refused a connection; doubles up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Why [`migrate`] or [`apply`] could not bring a schema up to date with the service's migrations.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// [`apply`] could not open its connection. [`migrate`] retries this and, once `DATABASE_STARTUP_TIMEOUT` is
    /// spent, reports [`MigrationError::Unreachable`] instead.
    #[error("cannot connect to Postgres to migrate schema `{schema}`")]
    Connect {
        /// The schema whose migrations were to be applied.
        schema: Schema,
        /// Why the connection failed (refused, bad credentials, TLS, …).
        #[source]
        source: sqlx::Error,
    },
    /// [`migrate`] gave up: Postgres still refused connections when the next retry would pass the deadline.
    #[error("Postgres did not accept connections within {waited:?}; schema `{schema}` not migrated")]
    Unreachable {
        /// The schema whose migrations were to be applied.
        schema: Schema,
        /// Time from the first attempt to giving up (close to `DATABASE_STARTUP_TIMEOUT`).
        waited: Duration,
        /// The error of the last connection attempt.
        #[source]
        source: sqlx::Error,
    },
    /// Connected, but a migration failed or the recorded history no longer matches the service's migrations (one
    /// applied earlier was changed or removed). Never retried.
    #[error("applying the migrations of schema `{schema}` failed")]
    Apply {
        /// The schema whose migrations failed.
        schema: Schema,
        /// What sqlx reported: the failing statement's error, a checksum mismatch, a dirty or missing version, ….
        #[source]
        source: MigrateError,
    },
}

/// Points `migrator` at `schema`: creates the schema if missing and keeps its bookkeeping table there.
pub fn for_schema(mut migrator: Migrator, schema: Schema) -> Migrator {
    migrator.create_schema(schema.name());
    migrator.dangerous_set_table_name(schema.qualify("_sqlx_migrations"));
    migrator
}

/// Applies every pending migration of `schema`, waiting up to `DATABASE_STARTUP_TIMEOUT` for Postgres to accept
/// connections (in a fresh stack the database may still be starting when the service does). A failing migration
/// is not retried.
///
/// `migrator` is the service's `sqlx::migrate!("./migrations")`.
pub async fn migrate(config: &DatabaseConfig, schema: Schema, migrator: Migrator) -> Result<(), MigrationError> {
    let migrator = for_schema(migrator, schema);
    let started = Instant::now();
    let deadline = started + config.startup_timeout;
    let mut delays = Backoff::clamped(FIRST_RETRY_DELAY, MAX_RETRY_DELAY).delays();
    loop {
        let delay = delays.next_delay();
        match apply(config.target.options(), schema, &migrator).await {
            Ok(()) => {
                tracing::info!(schema = schema.name(), "database migrations applied");
                return Ok(());
            }
            Err(MigrationError::Connect { source, .. }) if Instant::now() + delay >= deadline => {
                return Err(MigrationError::Unreachable { schema, waited: started.elapsed(), source });
            }
            Err(MigrationError::Connect { source, .. }) => {
                tracing::warn!(error = %source, retry_in = ?delay, "Postgres not reachable yet");
                tokio::time::sleep(delay).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// One attempt of [`migrate`], with `migrator` already set up by [`for_schema`].
///
/// Runs on a dedicated connection that is closed afterwards: if a migration fails, the session (and the advisory
/// lock it holds) ends with it instead of lingering in a pool.
pub async fn apply(options: &PgConnectOptions, schema: Schema, migrator: &Migrator) -> Result<(), MigrationError> {
    // `CREATE … IF NOT EXISTS` on every start would otherwise log "already exists" notices at info level.
    let options = options.clone().options([("client_min_messages", "warning")]);
    let mut connection = options.connect().await.map_err(|source| MigrationError::Connect { schema, source })?;
    // `run_direct` is what `Migrator::run` calls after acquiring; called directly, the future stays `Send` (with
    // `run`, rustc cannot prove `Acquire` for every lifetime, so `tokio::spawn(migrate(..))` would not compile).
    let outcome = migrator
        .run_direct(None, &mut connection, false)
        .await
        .map_err(|source| MigrationError::Apply { schema, source });
    // Closing politely is best effort; dropping the connection ends the session either way.
    let _ = connection.close().await;
    outcome
}
