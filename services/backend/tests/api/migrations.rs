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

/// Recurring tasks stored before series had a start get their own due time as the start: each of them was the
/// start of the rest of its series (its COUNT held what remained), so their next occurrences do not change.
#[tokio::test]
async fn existing_recurring_tasks_start_their_series_at_their_due_time() {
    let db = TestDatabase::new().await.expect("database");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut files: Vec<_> = std::fs::read_dir(dir).expect("migrations dir").map(|f| f.expect("entry").path()).collect();
    files.sort();
    let (before, series_start) = files
        .split_at(files.iter().position(|f| f.ends_with("20261202000001_series_start.sql")).expect("the migration"));
    let pool = db.pool();
    sqlx::raw_sql("CREATE SCHEMA backend").execute(&pool).await.expect("schema");
    for file in before {
        // The project's own migration files, run as they are.
        let sql = sqlx::AssertSqlSafe(std::fs::read_to_string(file).expect("sql"));
        sqlx::raw_sql(sql).execute(&pool).await.expect("older migration");
    }
    sqlx::raw_sql(
        "INSERT INTO backend.tasks (id, owner_id, series_id, title, priority, due_at, time_zone, rrule, rrule_anchor, \
         status, version, created_at, updated_at) VALUES \
         ('0190b6c8-7f3a-7000-8000-000000000001', 'alice', '0190b6c8-7f3a-7000-8000-000000000001', 'daily', 'low', \
          '2026-03-28T08:00:00.250Z', 'Europe/Berlin', 'FREQ=DAILY;COUNT=3', 'due', 'open', 1, now(), now()), \
         ('0190b6c8-7f3a-7000-8000-000000000002', 'alice', '0190b6c8-7f3a-7000-8000-000000000002', 'once', 'low', \
          NULL, 'UTC', NULL, NULL, 'open', 1, now(), now())",
    )
    .execute(&pool)
    .await
    .expect("rows from before");
    let sql = sqlx::AssertSqlSafe(std::fs::read_to_string(&series_start[0]).expect("sql"));
    sqlx::raw_sql(sql).execute(&pool).await.expect("migration");
    let starts: Vec<(String, Option<chrono::DateTime<chrono::Utc>>)> =
        sqlx::query_as("SELECT title, series_start FROM backend.tasks ORDER BY title")
            .fetch_all(&pool)
            .await
            .expect("rows");
    let daily_start = "2026-03-28T08:00:00Z".parse().expect("instant");
    assert_eq!(starts, vec![("daily".to_owned(), Some(daily_start)), ("once".to_owned(), None)]);
}
