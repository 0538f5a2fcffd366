//! Throwaway Postgres 15 servers and per-test databases.
//!
//! - [`TestDatabase`]: what most tests want, a fresh database on a shared server (the one in
//!   `DATABASE_URL`, or one started lazily per test process).
//! - [`PostgresServer`]: a dedicated server the test owns and can stop and start again, e.g. to see
//!   a service's readiness turn red and green.
//!
//! Servers run from `/usr/lib/postgresql/15/bin` (override with [`BIN_DIR_ENV`]). As root they run as
//! the `postgres` account, since Postgres refuses root.

mod binaries;
#[cfg(feature = "database")]
mod database;
mod server;
mod template;
pub(crate) mod watchdog;

pub use binaries::{BIN_DIR_ENV, DEFAULT_BIN_DIR, bin_dir, is_installed};
#[cfg(feature = "database")]
pub use database::TestDatabase;
pub use server::PostgresServer;

/// When set, `TestDatabase` creates databases on this server instead of a per-process throwaway
/// one; `cargo xtask test` sets it so a whole test run shares one server.
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";
