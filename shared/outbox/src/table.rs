//! One service's outbox table (`<schema>.outbox`): the statements the crate runs on it, prepared once, and the
//! idempotent DDL that creates it in a new schema.

use std::sync::Arc;

use database::Schema;
use sqlx::{AssertSqlSafe, PgPool, SqlSafeStr as _, SqlStr};

use crate::error::OutboxError;

/// The outbox of one schema. Cheap to clone; build it once at start-up with [`Outbox::new`].
///
/// Every statement is built from the [`Schema`] (a checked plain identifier, never user input) when the value is
/// created, so no SQL text is assembled per call.
#[derive(Debug, Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    schema: Schema,
    table: String,
    channel: String,
    /// Serialises claims on this table across relay replicas (see [`Statements::claim`]).
    claim_lock: i64,
    statements: Statements,
}

/// The SQL the crate runs, with the table name filled in.
#[derive(Debug)]
pub(crate) struct Statements {
    pub insert: SqlStr,
    /// Leases up to `$2` publishable rows for `$1` seconds, oldest first. A row is publishable when it is
    /// unpublished, not leased, and no older unpublished row of its key is leased — so one key's events go out in
    /// order even with several relays and while an older event waits for its retry.
    pub claim: SqlStr,
    pub mark_published: SqlStr,
    pub record_failure: SqlStr,
    pub release: SqlStr,
    pub pending_count: SqlStr,
    pub purge: SqlStr,
    pub install: SqlStr,
}

impl Outbox {
    /// The outbox table `<schema>.outbox`.
    pub fn new(schema: Schema) -> Self {
        let table = schema.qualify("outbox");
        let channel = notify_channel(schema);
        let statements = Statements::for_table(schema, &table, &channel);
        let claim_lock = advisory_key(&table);
        Self { inner: Arc::new(Inner { schema, table, channel, claim_lock, statements }) }
    }

    /// The schema the table lives in.
    pub fn schema(&self) -> Schema {
        self.inner.schema
    }

    /// `<schema>.outbox`.
    pub fn table(&self) -> &str {
        &self.inner.table
    }

    /// The channel the table's trigger notifies when rows commit: `<schema>_outbox`.
    pub fn notify_channel(&self) -> &str {
        &self.inner.channel
    }

    pub(crate) fn claim_lock(&self) -> i64 {
        self.inner.claim_lock
    }

    pub(crate) fn sql(&self) -> &Statements {
        &self.inner.statements
    }

    pub(crate) fn error(&self, operation: &'static str) -> impl FnOnce(sqlx::Error) -> OutboxError + '_ {
        move |source| OutboxError { operation, table: self.inner.table.clone(), source }
    }

    /// Creates the outbox table, its indexes and its NOTIFY trigger in the schema if they are missing; run it at
    /// start-up after the service's own migrations. Safe to run on every start and from several replicas at once.
    ///
    /// Why here and not in each service's migrations: sqlx migrations are static files, so every service would
    /// carry a copy of this DDL that could drift from the queries this crate runs on it. Kept next to those
    /// queries, the shape has one source; a future change to it is added here as idempotent DDL (`ADD COLUMN IF
    /// NOT EXISTS`, …). The objects are exactly those of the backend's migrations (same names, same trigger), so
    /// the backend's `backend.outbox` — created by its migrations, which stay byte-for-byte as they are — is
    /// the same table this creates.
    pub async fn install(&self, pool: &PgPool) -> Result<(), OutboxError> {
        let mut tx = pool.begin().await.map_err(self.error("begin outbox install"))?;
        // Concurrent `CREATE … IF NOT EXISTS` can still collide in the catalog; replicas take turns instead.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(advisory_key(&format!("install {}", self.table())))
            .execute(&mut *tx)
            .await
            .map_err(self.error("lock outbox install"))?;
        sqlx::raw_sql(self.sql().install.clone()).execute(&mut *tx).await.map_err(self.error("install outbox"))?;
        tx.commit().await.map_err(self.error("commit outbox install"))?;
        tracing::debug!(table = self.table(), "outbox table installed");
        Ok(())
    }
}

/// `<schema>_outbox`: the backend's channel was `backend_outbox`, so it keeps it.
fn notify_channel(schema: Schema) -> String {
    format!("{}_outbox", schema.name())
}

impl Statements {
    fn for_table(schema: Schema, table: &str, channel: &str) -> Self {
        let sql = |text: &str| AssertSqlSafe(text.replace("{table}", table)).into_sql_str();
        Self {
            insert: sql("INSERT INTO {table} (id, topic, message_key, event_type, payload, headers, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)"),
            claim: sql("UPDATE {table} AS o SET claimed_until = now() + make_interval(secs => $1) \
                 WHERE o.id IN ( \
                     SELECT p.id FROM {table} AS p \
                     WHERE p.published_at IS NULL AND (p.claimed_until IS NULL OR p.claimed_until < now()) \
                       AND NOT EXISTS ( \
                           SELECT 1 FROM {table} AS e \
                           WHERE e.message_key = p.message_key AND e.published_at IS NULL \
                             AND (e.created_at, e.id) < (p.created_at, p.id) AND e.claimed_until >= now()) \
                     ORDER BY p.created_at, p.id LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 RETURNING o.id, o.topic, o.message_key, o.payload, o.headers, o.created_at, o.attempts"),
            mark_published: sql(
                "UPDATE {table} SET published_at = now(), claimed_until = NULL, last_error = NULL WHERE id = $1",
            ),
            record_failure: sql("UPDATE {table} SET attempts = attempts + 1, last_error = $2, \
                 claimed_until = now() + make_interval(secs => $3) WHERE id = $1 AND published_at IS NULL"),
            release: sql("UPDATE {table} SET claimed_until = NULL WHERE id = ANY($1) AND published_at IS NULL"),
            pending_count: sql("SELECT count(*) FROM {table} WHERE published_at IS NULL"),
            purge: sql("DELETE FROM {table} WHERE id IN ( \
                 SELECT id FROM {table} WHERE published_at < $1 ORDER BY published_at LIMIT $2)"),
            install: AssertSqlSafe(install_ddl(schema, table, channel)).into_sql_str(),
        }
    }
}

/// The table as the backend's migrations define it (`20260101000001_initial_schema.sql` and
/// `20260301000002_outbox_relay.sql`), made idempotent.
fn install_ddl(schema: Schema, table: &str, channel: &str) -> String {
    format!(
        "SET LOCAL client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {table} (
    id             uuid        PRIMARY KEY,
    topic          text        NOT NULL,
    message_key    text        NOT NULL,
    event_type     text        NOT NULL,
    payload        jsonb       NOT NULL,
    headers        jsonb       NOT NULL DEFAULT '{{}}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    attempts       integer     NOT NULL DEFAULT 0,
    claimed_until  timestamptz,
    published_at   timestamptz,
    last_error     text
);
CREATE INDEX IF NOT EXISTS outbox_pending ON {table} (id) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_pending_by_key ON {table} (message_key, created_at, id) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_published_at ON {table} (published_at) WHERE published_at IS NOT NULL;
CREATE OR REPLACE FUNCTION {schema}.notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{channel}', '');
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER outbox_notify AFTER INSERT ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_outbox();
"
    )
}

/// A stable 64-bit advisory-lock key for `name` (FNV-1a), so each table's relays serialise among themselves and
/// not with other services' relays sharing the database.
fn advisory_key(name: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = name.bytes().fold(OFFSET, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME));
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_schema() {
        let outbox = Outbox::new(Schema::new("reminder"));
        assert_eq!(outbox.table(), "reminder.outbox");
        assert_eq!(outbox.notify_channel(), "reminder_outbox");
        assert!(outbox.sql().claim.as_str().contains("FROM reminder.outbox AS p"));
        assert!(!outbox.sql().claim.as_str().contains("{table}"));
    }

    #[test]
    fn the_backend_keeps_its_channel() {
        assert_eq!(Outbox::new(Schema::new("backend")).notify_channel(), "backend_outbox");
    }

    #[test]
    fn each_table_has_its_own_claim_lock() {
        let backend = Outbox::new(Schema::new("backend"));
        let reminder = Outbox::new(Schema::new("reminder"));
        assert_ne!(backend.claim_lock(), reminder.claim_lock());
        assert_eq!(backend.claim_lock(), Outbox::new(Schema::new("backend")).claim_lock(), "stable across processes");
    }
}
