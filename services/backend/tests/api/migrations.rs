//! Migrations: applied once, safely, however many replicas start at the same moment.

use backend::store::migrate;
use futures::future::join_all;
use sqlx::postgres::PgConnectOptions;
use testkit::postgres::TestDatabase;

#[tokio::test]
async fn concurrent_migrators_apply_each_migration_exactly_once() {
    let db = TestDatabase::new().await.expect("database");
    let options: PgConnectOptions = db.url().parse().expect("options");
    let results = join_all((0..6).map(|_| migrate::run(&options))).await;
    for result in &results {
        assert!(result.is_ok(), "a migrator failed: {result:?}");
    }
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM backend._sqlx_migrations ORDER BY version")
            .fetch_all(&db.pool())
            .await
            .expect("migrations table");
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations")).expect("migrations dir").count();
    assert_eq!(applied.len(), files, "one row per migration file: {applied:?}");
    assert!(applied.iter().all(|(_, success)| *success));

    // The schema is the backend's own; nothing landed in `public`.
    let public_tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_one(&db.pool())
            .await
            .expect("count");
    assert_eq!(public_tables, 0);

    // Running again later is a no-op.
    migrate::run(&options).await.expect("re-run");
}
