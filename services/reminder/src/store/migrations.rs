//! The service's schema migrations, embedded at compile time.

use database::Schema;
use sqlx::migrate::Migrator;

/// The schema this service owns: its tables and the migration bookkeeping (`reminder._sqlx_migrations`).
pub const SCHEMA: Schema = Schema::new("reminder");

/// Every migration in `services/reminder/migrations`; `database::migrate` points it at [`SCHEMA`].
pub fn migrator() -> Migrator {
    sqlx::migrate!("./migrations")
}
