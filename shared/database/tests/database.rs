//! The crate against a real Postgres server: migrations into a schema, the pool's session settings, readiness
//! and the pool gauges.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use database::{DatabaseConfig, MigrationError, Schema};
use observability::config::{ConfigError, Env};
use sqlx::Connection as _;
use sqlx::migrate::Migrator;
use testkit::postgres::{PostgresServer, TestDatabase};

const SCHEMA: Schema = Schema::new("db_test");

fn migrator() -> Migrator {
    sqlx::migrate!("./tests/migrations")
}

fn config(url: &str, extra: &[(&str, &str)]) -> Result<DatabaseConfig, ConfigError> {
    let pairs = [("DATABASE_URL", url)].into_iter().chain(extra.iter().copied());
    Env::from_pairs(pairs.map(|(k, v)| (k.to_owned(), v.to_owned()))).load(DatabaseConfig::from_env)
}

/// A URL on which nothing listens: a port that was free a moment ago.
fn unreachable_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

#[tokio::test]
async fn migrations_land_in_the_schema_once_however_many_replicas_start_together() {
    let db = TestDatabase::new().await.unwrap();
    let config = config(db.url(), &[]).unwrap();
    let results = futures::future::join_all((0..4).map(|_| database::migrate(&config, SCHEMA, migrator()))).await;
    for result in &results {
        assert!(result.is_ok(), "a migrator failed: {result:?}");
    }
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM db_test._sqlx_migrations ORDER BY version")
            .fetch_all(&db.pool())
            .await
            .unwrap();
    assert_eq!(applied, [(20260101000001, true), (20260101000002, true)]);
    let public_tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_one(&db.pool())
            .await
            .unwrap();
    assert_eq!(public_tables, 0, "the bookkeeping table belongs in the service's schema");

    // A later start is a no-op.
    database::migrate(&config, SCHEMA, migrator()).await.unwrap();
    db.cleanup().await.unwrap();
}

#[tokio::test]
async fn migrate_waits_for_a_server_that_is_still_starting() {
    let mut server = PostgresServer::start().await.unwrap();
    server.stop().await.unwrap();
    let config = config(server.url(), &[("DATABASE_STARTUP_TIMEOUT", "60s")]).unwrap();
    let migration = tokio::spawn(async move { database::migrate(&config, SCHEMA, migrator()).await });
    tokio::time::sleep(Duration::from_millis(300)).await; // lets a few attempts fail; not a synchronisation
    assert!(!migration.is_finished(), "a refused connection must be retried, not reported");
    server.start_again().await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), migration).await.unwrap().unwrap().unwrap();
    let mut check = sqlx::PgConnection::connect(server.url()).await.unwrap();
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'db_test'")
        .fetch_one(&mut check)
        .await
        .unwrap();
    assert_eq!(tables, 2, "widgets and the bookkeeping table");
    check.close().await.unwrap();
}

#[tokio::test]
async fn migrate_gives_up_after_the_startup_timeout() {
    let config = config(&unreachable_url(), &[("DATABASE_STARTUP_TIMEOUT", "1s")]).unwrap();
    let error = database::migrate(&config, SCHEMA, migrator()).await.expect_err("nothing listens");
    assert!(matches!(error, MigrationError::Unreachable { schema, .. } if schema == SCHEMA), "{error:?}");
}

#[tokio::test]
async fn a_broken_migration_is_reported_not_retried() {
    let db = TestDatabase::new().await.unwrap();
    sqlx::raw_sql("CREATE SCHEMA db_test; CREATE TABLE db_test.widgets (id int)").execute(&db.pool()).await.unwrap();
    let config = config(db.url(), &[]).unwrap();
    let error = database::migrate(&config, SCHEMA, migrator()).await.expect_err("table exists");
    assert!(matches!(error, MigrationError::Apply { .. }), "{error:?}");
    db.cleanup().await.unwrap();
}

#[tokio::test]
async fn pooled_connections_carry_the_service_name_and_statement_timeout() {
    let db = TestDatabase::new().await.unwrap();
    let config = config(db.url(), &[("DATABASE_STATEMENT_TIMEOUT", "750ms")]).unwrap();
    let pool = database::connect(&config, "db-test");
    let (name, timeout): (String, String) =
        sqlx::query_as("SELECT current_setting('application_name'), current_setting('statement_timeout')")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(name, "db-test");
    assert_eq!(timeout, "750ms");
    let error = sqlx::query("SELECT pg_sleep(5)").execute(&pool).await.expect_err("the statement timeout cuts it");
    assert!(error.to_string().contains("statement timeout"), "{error}");
    pool.close().await;
    db.cleanup().await.unwrap();
}

#[tokio::test]
async fn readiness_follows_the_server() {
    let mut server = PostgresServer::start().await.unwrap();
    let config = config(server.url(), &[("DATABASE_ACQUIRE_TIMEOUT", "1s")]).unwrap();
    let pool = database::connect(&config, "db-test");
    let check = database::readiness_check(&pool);
    check().await.unwrap();
    server.stop().await.unwrap();
    let reason = check().await.expect_err("server stopped");
    assert!(reason.contains("Postgres did not answer"), "{reason}");
    server.start_again().await.unwrap();
    // The lazy pool reconnects by itself.
    testkit::wait::until(testkit::wait::DEFAULT_TIMEOUT, || async { check().await.is_ok() }).await.unwrap();
    pool.close().await;
}

#[tokio::test]
async fn the_pool_gauges_show_used_idle_and_max() {
    let db = TestDatabase::new().await.unwrap();
    let config = config(db.url(), &[("DATABASE_MAX_CONNECTIONS", "4")]).unwrap();
    let pool = database::connect(&config, "db-test");
    let held = pool.acquire().await.unwrap();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        database::metrics::describe();
        database::metrics::record_pool(&pool, "db-test");
    });
    let text = handle.render();
    for line in [
        "db_client_connection_count{db_client_connection_state=\"used\",db_client_connection_pool_name=\"db-test\"} 1",
        "db_client_connection_count{db_client_connection_state=\"idle\",db_client_connection_pool_name=\"db-test\"} 0",
        "db_client_connection_max{db_client_connection_pool_name=\"db-test\"} 4",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
    }
    drop(held);
    pool.close().await;
    db.cleanup().await.unwrap();
}
