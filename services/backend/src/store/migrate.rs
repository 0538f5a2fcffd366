//! Schema migrations from `services/backend/migrations`, embedded at compile time and applied at start-up.
//!
//! sqlx takes a Postgres advisory lock (per database) around the whole run, so replicas starting together apply
//! each migration exactly once. The bookkeeping table lives in the backend's own schema, next to its tables.

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

pub const SCHEMA: &str = "backend";

fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.create_schema(SCHEMA);
    migrator.dangerous_set_table_name("backend._sqlx_migrations");
    migrator
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("cannot connect to Postgres to run migrations")]
    Connect(#[source] sqlx::Error),
    #[error("applying migrations failed")]
    Apply(#[source] MigrateError),
}

/// Applies every pending migration.
///
/// Runs on a dedicated connection that is closed afterwards: if a migration fails, the session (and the advisory
/// lock it holds) ends with it instead of lingering in a pool.
pub async fn run(options: &PgConnectOptions) -> Result<(), MigrationError> {
    // `CREATE … IF NOT EXISTS` on every start would otherwise log "already exists" notices at info level.
    let options = options.clone().options([("client_min_messages", "warning")]);
    let mut connection = options.connect().await.map_err(MigrationError::Connect)?;
    let outcome = migrator().run(&mut connection).await.map_err(MigrationError::Apply);
    // Closing politely is best effort; dropping the connection ends the session either way.
    let _ = connection.close().await;
    outcome
}
