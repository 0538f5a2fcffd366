//! A fresh database per test on a shared server.

use std::time::Duration;

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection};
use tokio::sync::OnceCell;
use url::Url;
use uuid::Uuid;

use super::{DATABASE_URL_ENV, PostgresServer};
use crate::Error;

/// Bounds the best-effort `DROP DATABASE` that runs when a [`TestDatabase`] drops.
const DROP_TIMEOUT: Duration = Duration::from_secs(30);

/// The server shared by every test in this process when `DATABASE_URL` is unset. It is never dropped;
/// its watchdog stops it when the process exits.
static PROCESS_SERVER: OnceCell<PostgresServer> = OnceCell::const_new();

/// A freshly created, empty database (`t_<uuid>`) that disappears when dropped.
///
/// ```no_run
/// # async fn demo() -> Result<(), testkit::Error> {
/// let db = testkit::postgres::TestDatabase::new().await?;
/// let pool = db.pool(); // or connect yourself with db.url()
/// sqlx::query("CREATE TABLE t (id int)").execute(&pool).await.ok();
/// db.cleanup().await?; // optional: dropping does the same, blocking briefly
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    server_url: String,
    pool: PgPool,
    dropped: bool,
}

impl TestDatabase {
    /// Creates a database on the server named by `DATABASE_URL`, or else on a throwaway server
    /// started on first use and shared by the whole test process.
    pub async fn new() -> Result<Self, Error> {
        match std::env::var(DATABASE_URL_ENV) {
            Ok(url) if !url.is_empty() => Self::create_on(&url).await,
            _ => {
                let server = PROCESS_SERVER.get_or_try_init(PostgresServer::start).await?;
                Self::create_on(server.url()).await
            }
        }
    }

    /// Creates a database on the server at `server_url` (a superuser URL, such as
    /// [`PostgresServer::url`]), e.g. on a dedicated server a test will stop and start.
    pub async fn create_on(server_url: &str) -> Result<Self, Error> {
        let name = format!("t_{}", Uuid::now_v7().simple());
        let url = with_database(server_url, &name)?;
        let mut admin = connect(server_url).await?;
        sqlx::raw_sql(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&mut admin)
            .await
            .map_err(database_error(format!("creating database {name}")))?;
        // Only the connection's teardown can fail here, and the database exists either way.
        admin.close().await.ok();
        let pool = PgPoolOptions::new()
            .connect_lazy(&url)
            .map_err(database_error(format!("configuring a pool for {name}")))?;
        Ok(Self { name, url, server_url: server_url.to_owned(), pool, dropped: false })
    }

    /// The database's name, `t_<uuid>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL for this database, as superuser; hand it to the code under test.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A pool on this database (connections open lazily); clones share it.
    pub fn pool(&self) -> PgPool {
        self.pool.clone()
    }

    /// Closes the pool and drops the database, reporting failures; dropping the value does the same
    /// on a helper thread and only prints them.
    pub async fn cleanup(mut self) -> Result<(), Error> {
        self.dropped = true;
        self.pool.close().await;
        drop_database(&self.server_url, &self.name).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        // Drop cannot await, and a pool belongs to the runtime that made it, so the drop runs on a
        // thread with its own small runtime; joining it keeps the cleanup deterministic.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(Error::io("starting a runtime to drop a test database"))?;
            runtime.block_on(async {
                tokio::time::timeout(DROP_TIMEOUT, drop_database(&server_url, &name)).await.unwrap_or_else(|_| {
                    Err(Error::Io {
                        context: format!("dropping database {name}"),
                        source: std::io::ErrorKind::TimedOut.into(),
                    })
                })
            })
        });
        match dropper.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("testkit: {error}"),
            Err(_) => eprintln!("testkit: the thread dropping database {} panicked", self.name),
        }
    }
}

/// `FORCE` cuts connections still open (the service under test may hold some).
async fn drop_database(server_url: &str, name: &str) -> Result<(), Error> {
    let mut admin = connect(server_url).await?;
    sqlx::raw_sql(AssertSqlSafe(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#)))
        .execute(&mut admin)
        .await
        .map_err(database_error(format!("dropping database {name}")))?;
    admin.close().await.ok();
    Ok(())
}

async fn connect(server_url: &str) -> Result<PgConnection, Error> {
    PgConnection::connect(server_url)
        .await
        .map_err(database_error(format!("connecting to {}", without_password(server_url))))
}

/// `server_url` with its path replaced by `/name`, keeping credentials and query parameters.
fn with_database(server_url: &str, name: &str) -> Result<String, Error> {
    let mut url = Url::parse(server_url).map_err(|error| Error::InvalidDatabaseUrl {
        origin: without_password(server_url),
        reason: error.to_string(),
    })?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(Error::InvalidDatabaseUrl {
            origin: without_password(server_url),
            reason: "the scheme must be postgres:// or postgresql://".to_owned(),
        });
    }
    url.set_path(&format!("/{name}"));
    Ok(url.into())
}

/// The URL fit for an error message.
fn without_password(server_url: &str) -> String {
    match Url::parse(server_url) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Only fails for URLs that cannot carry credentials, which then have none to hide.
                url.set_password(Some("***")).ok();
            }
            url.into()
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

fn database_error(context: String) -> impl FnOnce(sqlx::Error) -> Error {
    move |source| Error::Database { context, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_replaces_the_path_and_keeps_everything_else() {
        let url = with_database("postgres://u:p@db:5433/postgres?sslmode=disable", "t_1").expect("valid URL");
        assert_eq!(url, "postgres://u:p@db:5433/t_1?sslmode=disable");
        let url = with_database("postgresql://postgres@127.0.0.1:1", "t_2").expect("valid URL");
        assert_eq!(url, "postgresql://postgres@127.0.0.1:1/t_2");
    }

    #[test]
    fn urls_that_are_not_postgres_are_rejected() {
        assert!(with_database("mysql://root@db/x", "t").is_err());
        assert!(with_database("not a url", "t").is_err());
    }

    #[test]
    fn passwords_never_reach_error_messages() {
        assert_eq!(without_password("postgres://u:secret@db/x"), "postgres://u:***@db/x");
        assert_eq!(without_password("postgres://u@db/x"), "postgres://u@db/x");
    }
}
