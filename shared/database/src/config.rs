//! `DATABASE_*` settings, read with the service's own configuration so one report names every bad variable.

use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use observability::config::{DurationValue, Env, Secret};
use sqlx::postgres::PgConnectOptions;

const DEFAULT_MAX_CONNECTIONS: NonZeroU32 = match NonZeroU32::new(10) {
    Some(value) => value,
    None => panic!("10 is not zero"),
};

/// How a service reaches and uses Postgres.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`.
    pub target: DatabaseTarget,
    /// `DATABASE_MAX_CONNECTIONS` (default 10, at least 1).
    pub max_connections: u32,
    /// `DATABASE_ACQUIRE_TIMEOUT` (default 3s): how long a caller waits for a free connection.
    pub acquire_timeout: Duration,
    /// `DATABASE_STATEMENT_TIMEOUT` (default 5s): server-side cap on one statement.
    pub statement_timeout: Duration,
    /// `DATABASE_STARTUP_TIMEOUT` (default 30s): how long start-up waits for Postgres to accept connections.
    pub startup_timeout: Duration,
}

/// The parsed `DATABASE_URL`. Its `Debug` names host, port and database only: the URL may carry a password.
#[derive(Clone)]
pub struct DatabaseTarget(PgConnectOptions);

impl DatabaseTarget {
    /// Parses a `postgres://` or `postgresql://` URL.
    pub fn parse(url: &Secret) -> Option<Self> {
        let url = url.expose();
        let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
        // The parse error could quote the password, so it is dropped rather than reported.
        PgConnectOptions::from_str(url).ok().filter(|_| scheme_ok).map(Self)
    }

    /// The connection options parsed from the URL, credentials included; clone them to adjust per use.
    pub fn options(&self) -> &PgConnectOptions {
        &self.0
    }
}

impl From<PgConnectOptions> for DatabaseTarget {
    fn from(options: PgConnectOptions) -> Self {
        Self(options)
    }
}

impl std::fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseTarget")
            .field("host", &self.0.get_host())
            .field("port", &self.0.get_port())
            .field("database", &self.0.get_database())
            .finish()
    }
}

impl DatabaseConfig {
    /// Reads every `DATABASE_*` variable, recording each problem in `env`;
    /// `None` when one of them is bad (the caller's `Env::load` then reports them all).
    pub fn from_env(env: &mut Env) -> Option<Self> {
        let url = env.required::<Secret>("DATABASE_URL");
        let max_connections = env.with_default("DATABASE_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS).get();
        let acquire_timeout = env.with_default("DATABASE_ACQUIRE_TIMEOUT", DurationValue::from_secs(3)).get();
        let statement_timeout = env.with_default("DATABASE_STATEMENT_TIMEOUT", DurationValue::from_secs(5)).get();
        let startup_timeout = env.with_default("DATABASE_STARTUP_TIMEOUT", DurationValue::from_secs(30)).get();
        let target = match url.as_ref().map(DatabaseTarget::parse) {
            Some(Some(target)) => Some(target),
            Some(None) => {
                env.invalid("DATABASE_URL", "not a valid postgres:// URL");
                None
            }
            None => None,
        };
        Some(Self { target: target?, max_connections, acquire_timeout, statement_timeout, startup_timeout })
    }
}

#[cfg(test)]
mod tests {
    use observability::config::ConfigError;

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<DatabaseConfig, ConfigError> {
        Env::from_pairs(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))).load(DatabaseConfig::from_env)
    }

    #[test]
    fn a_url_alone_gets_the_documented_defaults() {
        let config = load(&[("DATABASE_URL", "postgres://app:pw@db:5432/taskwatch")]).expect("valid");
        assert_eq!(config.max_connections, 10);
        assert_eq!(config.acquire_timeout, Duration::from_secs(3));
        assert_eq!(config.statement_timeout, Duration::from_secs(5));
        assert_eq!(config.startup_timeout, Duration::from_secs(30));
        assert_eq!(config.target.options().get_database(), Some("taskwatch"));
        assert!(!format!("{config:?}").contains("pw"), "password in {config:?}");
    }

    #[test]
    fn every_bad_variable_is_named_without_the_url() {
        let error = load(&[
            ("DATABASE_URL", "mysql://u:hunter2@x"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("DATABASE_ACQUIRE_TIMEOUT", "3"),
            ("DATABASE_STATEMENT_TIMEOUT", "soon"),
            ("DATABASE_STARTUP_TIMEOUT", "-1s"),
        ])
        .expect_err("invalid");
        let names: Vec<&str> = error.problems.iter().map(|problem| problem.name()).collect();
        assert_eq!(
            names,
            [
                "DATABASE_MAX_CONNECTIONS",
                "DATABASE_ACQUIRE_TIMEOUT",
                "DATABASE_STATEMENT_TIMEOUT",
                "DATABASE_STARTUP_TIMEOUT",
                "DATABASE_URL",
            ]
        );
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn a_missing_url_is_reported() {
        let error = load(&[]).expect_err("DATABASE_URL is required");
        assert_eq!(error.problems.len(), 1);
        assert_eq!(error.problems[0].name(), "DATABASE_URL");
    }
}
