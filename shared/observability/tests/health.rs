//! Probes over real HTTP: startup, readiness with checks, timeouts, caching, shutdown.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use common::{TestServer, http_client, test_telemetry};
use observability::health::Health;
use observability::http::HttpConfig;
use observability::metric_names::HEALTH_CHECK_STATUS;
use serde_json::{Value, json};
use testkit::exposition::metric_value;

async fn get(server: &TestServer, path: &str) -> (StatusCode, Value) {
    let response = http_client().get(server.url(path)).send().await.unwrap();
    let status = response.status();
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "no-store");
    (status, response.json().await.unwrap())
}

async fn start(health: &Health) -> TestServer {
    TestServer::start(health.router(), HttpConfig::default()).await
}

/// A check whose outcome the test flips, counting how often it runs.
fn switchable_check(
    up: Arc<AtomicBool>,
    runs: Arc<AtomicUsize>,
) -> impl Fn() -> futures::future::Ready<Result<(), String>> + Send + Sync + 'static {
    move || {
        runs.fetch_add(1, Ordering::SeqCst);
        futures::future::ready(if up.load(Ordering::SeqCst) { Ok(()) } else { Err("connection refused".to_owned()) })
    }
}

#[tokio::test]
async fn startup_and_readiness_wait_for_mark_started_while_liveness_does_not() {
    let health = Health::new();
    let server = start(&health).await;
    assert_eq!(get(&server, "/health/live").await, (StatusCode::OK, json!({"status": "up"})));
    assert_eq!(get(&server, "/health/startup").await.0, StatusCode::SERVICE_UNAVAILABLE);
    let (status, body) = get(&server, "/health/ready").await;
    assert_eq!((status, body["reason"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("starting")));

    health.mark_started();
    assert_eq!(get(&server, "/health/startup").await, (StatusCode::OK, json!({"status": "up"})));
    assert_eq!(get(&server, "/health/ready").await.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn readiness_reports_each_check_and_turns_503_when_one_fails() {
    let _telemetry = test_telemetry("info");
    let metrics = observability::metrics::install().unwrap();
    let database_up = Arc::new(AtomicBool::new(true));
    let runs = Arc::new(AtomicUsize::new(0));
    let health = Health::new()
        .with_cache_ttl(Duration::ZERO)
        .with_check("ready_test_db", Duration::from_secs(1), switchable_check(database_up.clone(), runs.clone()))
        .with_check("ready_test_cache", Duration::from_secs(1), || async { Ok(()) })
        .with_detail("breakers", || json!({"backend": "closed"}));
    health.mark_started();
    let server = start(&health).await;

    let (status, body) = get(&server, "/health/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "up");
    assert_eq!(body["checks"]["ready_test_db"]["status"], "up");
    assert!(body["checks"]["ready_test_db"]["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(body["details"]["breakers"]["backend"], "closed");
    assert_eq!(metric_value(&metrics.render(), HEALTH_CHECK_STATUS, &[("check", "ready_test_db")]), Some(1.0));

    database_up.store(false, Ordering::SeqCst);
    let (status, body) = get(&server, "/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "down");
    assert_eq!(body["checks"]["ready_test_db"]["status"], "down");
    assert_eq!(body["checks"]["ready_test_db"]["error"], "connection refused");
    assert_eq!(body["checks"]["ready_test_cache"]["status"], "up");
    assert_eq!(metric_value(&metrics.render(), HEALTH_CHECK_STATUS, &[("check", "ready_test_db")]), Some(0.0));

    // Recovers without a restart.
    database_up.store(true, Ordering::SeqCst);
    assert_eq!(get(&server, "/health/ready").await.0, StatusCode::OK);
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    server.stop().await;
}

#[tokio::test]
async fn a_check_that_hangs_counts_as_down_after_its_timeout() {
    let health = Health::new().with_check("hanging_check", Duration::from_millis(100), || async {
        std::future::pending::<()>().await;
        Ok(())
    });
    health.mark_started();
    let server = start(&health).await;
    let started = std::time::Instant::now();
    let (status, body) = get(&server, "/health/ready").await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["checks"]["hanging_check"]["error"], "timed out after 100 ms");
    server.stop().await;
}

#[tokio::test]
async fn results_are_cached_and_concurrent_probes_share_one_run() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let health = Health::new().with_cache_ttl(Duration::from_secs(60)).with_check(
        "cached_check",
        Duration::from_secs(5),
        move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                // Slow enough that concurrent probes overlap with the first run.
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(())
            }
        },
    );
    health.mark_started();
    let server = start(&health).await;
    let probes = (0..10).map(|_| get(&server, "/health/ready"));
    for (status, _) in futures::future::join_all(probes).await {
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(get(&server, "/health/ready").await.0, StatusCode::OK);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "probes hammered the dependency");
    server.stop().await;
}

#[tokio::test]
async fn shutting_down_turns_readiness_off_without_running_checks() {
    let runs = Arc::new(AtomicUsize::new(0));
    let health = Health::new().with_cache_ttl(Duration::ZERO).with_check(
        "shutdown_check",
        Duration::from_secs(1),
        switchable_check(Arc::new(AtomicBool::new(true)), runs.clone()),
    );
    health.mark_started();
    let server = start(&health).await;
    assert_eq!(get(&server, "/health/ready").await.0, StatusCode::OK);

    health.set_shutting_down();
    let (status, body) = get(&server, "/health/ready").await;
    assert_eq!((status, body["reason"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("shutting down")));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // Liveness is unaffected: the process is fine, it is just leaving.
    assert_eq!(get(&server, "/health/live").await.0, StatusCode::OK);
    server.stop().await;
}
