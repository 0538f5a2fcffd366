//! Schema migrations from `services/backend/migrations`, embedded at compile time and applied at start-up into the
//! backend's own schema (see `database::migrate`: advisory lock, bookkeeping in `backend._sqlx_migrations`).

use database::{MigrationError, Schema};
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;

/// The backend's own Postgres schema, `backend`: its tables and its migration bookkeeping.
pub const SCHEMA: Schema = Schema::new("backend");

/// The embedded migrations, not yet pointed at [`SCHEMA`] (`database::migrate` does that).
pub fn migrator() -> Migrator {
    sqlx::migrate!("./migrations")
}

/// Applies every pending migration once, without waiting for Postgres (start-up uses `database::migrate`, which
/// does).
pub async fn run(options: &PgConnectOptions) -> Result<(), MigrationError> {
    database::apply(options, SCHEMA, &database::for_schema(migrator(), SCHEMA)).await
}
