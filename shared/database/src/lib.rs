//! Postgres for Taskwatch services: what every service with a database needs, in one place.
//!
//! | Piece | Item | What it gives a service |
//! |---|---|---|
//! | Config | [`DatabaseConfig::from_env`] | the variables below, read inside the service's own `Env::load` |
//! | Schema | [`Schema`] | the service's schema name, checked once (a `const`), safe to splice into SQL |
//! | Migrations | [`migrate`] | `sqlx::migrate!` applied into the schema, waiting for Postgres at start-up |
//! | Pool | [`connect`] | a lazily connecting pool with `application_name` and `statement_timeout` |
//! | Readiness | [`readiness_check`] / [`ping`] | the `postgres` check of `/health/ready` |
//! | Metrics | [`metrics`] | `db_client_connection_count{db_client_connection_state,db_client_connection_pool_name}`, `db_client_connection_max{db_client_connection_pool_name}` |
//!
//! # Environment variables
//!
//! | Variable | Default | Meaning |
//! |---|---|---|
//! | `DATABASE_URL` | required | `postgres://user:password@host:port/database`; never logged |
//! | `DATABASE_MAX_CONNECTIONS` | `10` | pool size (at least 1) |
//! | `DATABASE_ACQUIRE_TIMEOUT` | `3s` | how long a request waits for a free connection |
//! | `DATABASE_STATEMENT_TIMEOUT` | `5s` | server-side cap on one statement |
//! | `DATABASE_STARTUP_TIMEOUT` | `30s` | how long start-up waits for Postgres to accept connections |
//!
//! # Usage
//!
//! ```no_run
//! use database::{DatabaseConfig, Schema};
//! use observability::config::{ConfigError, Env};
//! use observability::Health;
//! use tokio_util::sync::CancellationToken;
//!
//! /// The schema this service owns; a bad name would fail the build.
//! const SCHEMA: Schema = Schema::new("reminder");
//!
//! #[derive(Debug)]
//! struct Config {
//!     database: DatabaseConfig,
//!     // … the service's other settings
//! }
//!
//! fn load(env: Env) -> Result<Config, ConfigError> {
//!     env.load(|env| {
//!         let database = DatabaseConfig::from_env(env);
//!         Some(Config { database: database? })
//!     })
//! }
//!
//! # async fn demo(stop: CancellationToken) -> Result<(), Box<dyn std::error::Error>> {
//! let config = load(Env::from_process())?;
//! // Start-up: migrations into `reminder` (bookkeeping in `reminder._sqlx_migrations`), then the pool.
//! # let migrator = sqlx::migrate::Migrator::DEFAULT; // a service writes `sqlx::migrate!("./migrations")`
//! database::migrate(&config.database, SCHEMA, migrator).await?;
//! let pool = database::connect(&config.database, "reminder");
//! // Readiness and pool gauges.
//! database::metrics::describe();
//! let health = Health::new().with_check(
//!     "postgres",
//!     std::time::Duration::from_secs(2), // a service passes its READINESS_CHECK_TIMEOUT (runtime::BaseConfig)
//!     database::readiness_check(&pool),
//! );
//! let chore = tokio::spawn(database::metrics::sample_pool(
//!     pool.clone(),
//!     "reminder",
//!     database::metrics::POOL_SAMPLE_INTERVAL,
//!     stop.clone(),
//! ));
//! # let _ = (health, chore);
//! # Ok(()) }
//! ```

// Tests may unwrap: a panic is how they fail. Non-test code is still linted (`--all-targets`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod config;
mod error;
pub mod metrics;
mod migrate;
mod pool;
mod schema;

pub use config::{DatabaseConfig, DatabaseTarget};
pub use error::{Context, StoreError};
pub use migrate::{MigrationError, apply, for_schema, migrate};
pub use pool::{PingError, connect, ping, readiness_check};
pub use schema::{InvalidSchema, Schema};
