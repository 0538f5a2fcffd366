//! Readiness follows Postgres: 503 while it is down, 200 again once it is back, without restarting the service.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use testkit::postgres::{PostgresServer, TestDatabase};

use crate::harness::TestApp;

async fn ready(app: &TestApp) -> Option<(StatusCode, Value)> {
    let response = app.request(Method::GET, "/health/ready").send().await.ok()?;
    let status = response.status();
    Some((status, response.json().await.ok()?))
}

#[tokio::test]
async fn readiness_tracks_postgres_and_recovers_without_a_restart() {
    let mut server = PostgresServer::start().await.expect("dedicated Postgres");
    let db = TestDatabase::create_on(server.url()).await.expect("database");
    let app = TestApp::on_database(db, |_| {}).await;
    let generous = Duration::from_secs(60);

    let live = app.request(Method::GET, "/health/live").send().await.expect("live");
    assert_eq!(live.status(), StatusCode::OK);
    let (status, body) = ready(&app).await.expect("ready answers");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["postgres"]["status"], "up");
    let task = app.create_simple_task("alice", "before the outage").await;

    server.stop().await.expect("stop Postgres");
    let down = testkit::wait::until_some(generous, || async {
        ready(&app).await.filter(|(status, _)| *status == StatusCode::SERVICE_UNAVAILABLE)
    })
    .await
    .expect("readiness turns 503 while Postgres is down");
    assert_eq!(down.1["checks"]["postgres"]["status"], "down", "{}", down.1);
    // Liveness does not depend on the database.
    let live = app.request(Method::GET, "/health/live").send().await.expect("live");
    assert_eq!(live.status(), StatusCode::OK);
    // API calls fail cleanly meanwhile.
    let response = app.as_user("alice", Method::GET, "/v1/tasks").send().await.expect("request");
    assert!(response.status().is_server_error());
    assert_eq!(response.headers()["content-type"], "application/problem+json");

    server.start_again().await.expect("start Postgres again");
    testkit::wait::until(generous, || async { ready(&app).await.is_some_and(|(status, _)| status == StatusCode::OK) })
        .await
        .expect("readiness returns to 200 once Postgres is back");
    let path = format!("/v1/tasks/{}", task["id"].as_str().expect("id"));
    let response = app.as_user("alice", Method::GET, &path).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK, "the same service instance serves again");
}
