//! The Postgres harness against real servers: lifecycle, isolation, and cleanup that survives SIGKILL.

use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use testkit::postgres::{DATABASE_URL_ENV, PostgresServer, TestDatabase};
use testkit::process::{ChildGuard, Signal};
use testkit::wait;

/// Set in the environment of this binary re-run as a helper process.
const HELPER_ENV: &str = "TESTKIT_HELPER";

async fn scalar_i64(url: &str, sql: &'static str) -> Result<i64, sqlx::Error> {
    let mut connection = PgConnection::connect(url).await?;
    let value: i64 = sqlx::query_scalar(sql).fetch_one(&mut connection).await?;
    connection.close().await?;
    Ok(value)
}

fn accepts_connections(port: u16) -> bool {
    TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1)).is_ok()
}

async fn database_exists(server_url: &str, name: &str) -> bool {
    let mut connection = PgConnection::connect(server_url).await.expect("connect to the server");
    sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut connection)
        .await
        .expect("query pg_database")
}

#[tokio::test]
async fn a_server_stops_and_starts_again_on_the_same_port_with_its_data() {
    let mut server = PostgresServer::start().await.expect("start Postgres");
    let url = server.url().to_owned();
    let port = server.port();
    assert!(url.starts_with("postgres://postgres@127.0.0.1:"), "{url}");

    let mut connection = PgConnection::connect(&url).await.expect("connect");
    sqlx::raw_sql("CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
        .execute(&mut connection)
        .await
        .expect("write data");
    connection.close().await.expect("close");

    server.stop().await.expect("stop");
    assert!(!server.is_running());
    assert!(PgConnection::connect(&url).await.is_err(), "a stopped server must refuse connections");

    server.start_again().await.expect("start again");
    assert_eq!(server.port(), port);
    let kept = scalar_i64(&url, "SELECT n::bigint FROM kept").await.expect("data survives a restart");
    assert_eq!(kept, 42);
}

#[tokio::test]
async fn dropping_a_server_stops_it_and_removes_its_files() {
    let server = PostgresServer::start().await.expect("start Postgres");
    let port = server.port();
    let root = server.log_path().parent().expect("the log lives in the server's directory").to_path_buf();
    assert!(root.join("data").is_dir());
    assert!(accepts_connections(port));

    drop(server);

    assert!(!root.exists(), "{} must be removed", root.display());
    assert!(!accepts_connections(port), "port {port} must be closed");
}

#[tokio::test]
async fn two_test_databases_are_isolated_from_each_other() {
    let first = TestDatabase::new().await.expect("first database");
    let second = TestDatabase::new().await.expect("second database");
    assert_ne!(first.name(), second.name());
    assert_ne!(first.url(), second.url());

    sqlx::query("CREATE TABLE only_in_first (n int)")
        .execute(&first.pool())
        .await
        .expect("create a table in the first database");

    let visible_in_second: bool = sqlx::query_scalar("SELECT to_regclass('only_in_first') IS NOT NULL")
        .fetch_one(&second.pool())
        .await
        .expect("query the second database");
    assert!(!visible_in_second);

    first.cleanup().await.expect("cleanup");
    second.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn a_test_database_is_dropped_with_its_value_even_while_connections_are_open() {
    let server = PostgresServer::start().await.expect("start Postgres");
    let database = TestDatabase::create_on(server.url()).await.expect("create a database");
    let name = database.name().to_owned();
    assert!(database_exists(server.url(), &name).await);

    // A connection the code under test might still hold when the test ends.
    let held = PgConnection::connect(database.url()).await.expect("connect to the test database");
    drop(database);

    assert!(!database_exists(server.url(), &name).await);
    drop(held);
}

#[tokio::test]
async fn cleanup_reports_success_and_the_database_is_gone() {
    let server = PostgresServer::start().await.expect("start Postgres");
    let database = TestDatabase::create_on(server.url()).await.expect("create a database");
    let name = database.name().to_owned();
    sqlx::query("SELECT 1").execute(&database.pool()).await.expect("use the pool");
    database.cleanup().await.expect("cleanup");
    assert!(!database_exists(server.url(), &name).await);
}

/// The guarantee that matters most: a test process killed outright (a runner's timeout, Ctrl-C)
/// leaves no Postgres behind, neither its own server nor the per-process shared one.
#[tokio::test]
async fn servers_do_not_outlive_a_killed_test_process() {
    let mut command = Command::new(std::env::current_exe().expect("path of this test binary"));
    command
        .args(["helper_hold_servers_until_killed", "--exact", "--ignored", "--nocapture"])
        .env(HELPER_ENV, "hold-servers")
        // The helper must start the per-process server itself.
        .env_remove(DATABASE_URL_ENV);
    let helper = ChildGuard::spawn("testkit helper", command).expect("spawn the helper");
    let ready = helper
        .wait_for_line(|line| line.starts_with("HELD "), wait::DEFAULT_TIMEOUT)
        .await
        .expect("the helper reports its servers");

    // "HELD <dedicated port> <dedicated dir> <shared port>"
    let fields: Vec<&str> = ready.split_whitespace().collect();
    let [_, dedicated_port, dedicated_dir, shared_port] = fields[..] else {
        panic!("unexpected helper line: {ready}");
    };
    let dedicated_port: u16 = dedicated_port.parse().expect("port");
    let shared_port: u16 = shared_port.parse().expect("port");
    let dedicated_dir = PathBuf::from(dedicated_dir);
    assert!(accepts_connections(dedicated_port) && accepts_connections(shared_port));

    helper.send(Signal::SIGKILL).expect("kill the helper");

    wait::until(wait::DEFAULT_TIMEOUT, || async {
        !accepts_connections(dedicated_port) && !accepts_connections(shared_port) && !dedicated_dir.exists()
    })
    .await
    .expect("both servers are stopped and their files removed after SIGKILL");
}

/// Not a test on its own: [`servers_do_not_outlive_a_killed_test_process`] runs it in a child process.
#[tokio::test]
#[ignore = "a helper: servers_do_not_outlive_a_killed_test_process runs it in a child process"]
async fn helper_hold_servers_until_killed() {
    if std::env::var(HELPER_ENV).as_deref() != Ok("hold-servers") {
        return;
    }
    let dedicated = PostgresServer::start().await.expect("start Postgres");
    let shared = TestDatabase::new().await.expect("database on the shared server");
    let shared_port = url_port(shared.url());
    let dir = dedicated.log_path().parent().expect("server directory").display().to_string();
    println!("HELD {} {dir} {shared_port}", dedicated.port());
    std::future::pending::<()>().await;
}

fn url_port(url: &str) -> u16 {
    let authority = url.split('/').nth(2).expect("URL authority");
    authority.rsplit(':').next().and_then(|port| port.parse().ok()).expect("URL port")
}
