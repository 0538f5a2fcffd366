//! The runtime's order, observed from outside over real HTTP: routes refused until the start-up steps finished,
//! workers started only then and stopped with the service, failures that stop it and say which part failed.

#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use observability::config::Env;
use observability::{ServiceInfo, Shutdown};
use runtime::{BaseConfig, Bound, RunError, Service};
use tokio::sync::oneshot;

const SERVICE: ServiceInfo = ServiceInfo { name: "runtime-test", version: "test" };
const WAIT: Duration = Duration::from_secs(30);

fn service() -> Service {
    let mut base = Env::from_pairs([]).load(|env| Some(BaseConfig::from_env(env, SERVICE, 0))).unwrap();
    base.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let metrics = observability::metrics::install().unwrap();
    Service::new(SERVICE, &base, metrics).routes(Router::new().route("/hello", get(|| async { "hello" })))
}

async fn status(address: SocketAddr, path: &str) -> u16 {
    reqwest::get(format!("http://{address}{path}")).await.unwrap().status().as_u16()
}

/// Runs `bound` in the background; the handle yields its outcome.
fn run(bound: Bound, shutdown: &Shutdown) -> tokio::task::JoinHandle<Result<(), RunError>> {
    tokio::spawn(bound.run_until_stopped(shutdown.clone()))
}

#[tokio::test]
async fn routes_and_workers_wait_for_the_start_up_steps() {
    let (release, released) = oneshot::channel::<()>();
    let worker_started = Arc::new(AtomicBool::new(false));
    let worker_stopped = Arc::new(AtomicBool::new(false));
    let (started, stopped) = (Arc::clone(&worker_started), Arc::clone(&worker_stopped));
    let bound = service()
        .start_step("held", async move { released.await.map_err(|_| "the test dropped the step") })
        .worker("recorder", move |shutdown: Shutdown| async move {
            started.store(true, Ordering::SeqCst);
            shutdown.requested().await;
            stopped.store(true, Ordering::SeqCst);
        })
        .bind()
        .await
        .unwrap();
    let (address, health) = (bound.local_addr(), bound.health());
    let shutdown = Shutdown::new();
    let running = run(bound, &shutdown);

    // Served while the step is held: probes answer, the route is refused with a problem.
    testkit::wait::until(WAIT, || async { status(address, "/health/live").await == 200 }).await.unwrap();
    assert_eq!(status(address, "/health/startup").await, 503);
    assert_eq!(status(address, "/health/ready").await, 503);
    let refused = reqwest::get(format!("http://{address}/hello")).await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    assert!(!worker_started.load(Ordering::SeqCst), "a worker started before the start-up steps finished");

    release.send(()).unwrap();
    testkit::wait::until(WAIT, || std::future::ready(health.is_started())).await.unwrap();
    assert_eq!(status(address, "/hello").await, 200);
    assert_eq!(status(address, "/health/startup").await, 200);
    testkit::wait::until(WAIT, || std::future::ready(worker_started.load(Ordering::SeqCst))).await.unwrap();

    shutdown.trigger();
    tokio::time::timeout(WAIT, running).await.unwrap().unwrap().unwrap();
    assert!(worker_stopped.load(Ordering::SeqCst), "the worker did not finish before the service returned");
    assert!(health.is_shutting_down(), "readiness still on after shutdown");
    assert!(reqwest::get(format!("http://{address}/health/live")).await.is_err(), "still listening");
}

#[tokio::test]
async fn a_failing_start_up_step_stops_the_service_and_names_it() {
    let worker_started = Arc::new(AtomicBool::new(false));
    let started = Arc::clone(&worker_started);
    let bound = service()
        .start_step("migrations", async { Err::<(), _>("relation already exists") })
        .worker("never", move |_shutdown: Shutdown| async move { started.store(true, Ordering::SeqCst) })
        .bind()
        .await
        .unwrap();
    let outcome = tokio::time::timeout(WAIT, run(bound, &Shutdown::new())).await.unwrap().unwrap();
    let error = outcome.unwrap_err();
    assert!(matches!(error, RunError::Step { step: "migrations", .. }), "{error:?}");
    assert_eq!(observability::error_chain(&error), "start-up step `migrations` failed: relation already exists");
    assert!(!worker_started.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_failing_worker_stops_the_others_and_the_service() {
    let other_stopped = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&other_stopped);
    let bound = service()
        .worker("steady", move |shutdown: Shutdown| async move {
            shutdown.requested().await;
            stopped.store(true, Ordering::SeqCst);
        })
        .worker("relay", |_shutdown: Shutdown| async { Err::<(), _>("producer fenced") })
        .bind()
        .await
        .unwrap();
    let health = bound.health();
    let outcome = tokio::time::timeout(WAIT, run(bound, &Shutdown::new())).await.unwrap().unwrap();
    let error = outcome.unwrap_err();
    assert!(matches!(error, RunError::Worker { worker: "relay", .. }), "{error:?}");
    assert!(other_stopped.load(Ordering::SeqCst), "the other worker was not stopped");
    assert!(health.is_shutting_down());
}

#[tokio::test]
async fn a_worker_that_returns_on_its_own_is_a_failure() {
    let bound = service().worker("scheduler", |_shutdown: Shutdown| async {}).bind().await.unwrap();
    let outcome = tokio::time::timeout(WAIT, run(bound, &Shutdown::new())).await.unwrap().unwrap();
    assert!(matches!(outcome, Err(RunError::WorkerStopped { worker: "scheduler" })), "{outcome:?}");
}

#[tokio::test]
async fn a_shutdown_during_start_up_abandons_the_steps_and_starts_no_worker() {
    let worker_started = Arc::new(AtomicBool::new(false));
    let started = Arc::clone(&worker_started);
    let bound = service()
        .start_step("kafka topics", std::future::pending::<Result<(), std::io::Error>>())
        .worker("consumer", move |_shutdown: Shutdown| async move { started.store(true, Ordering::SeqCst) })
        .bind()
        .await
        .unwrap();
    let address = bound.local_addr();
    let shutdown = Shutdown::new();
    let running = run(bound, &shutdown);
    testkit::wait::until(WAIT, || async { status(address, "/health/live").await == 200 }).await.unwrap();
    shutdown.trigger();
    tokio::time::timeout(WAIT, running).await.unwrap().unwrap().unwrap();
    assert!(!worker_started.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_taken_port_is_a_bind_error_naming_the_address() {
    let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let address = taken.local_addr().unwrap();
    let mut base = Env::from_pairs([]).load(|env| Some(BaseConfig::from_env(env, SERVICE, 0))).unwrap();
    base.listen = address;
    let service = Service::new(SERVICE, &base, observability::metrics::install().unwrap());
    let error = service.bind().await.unwrap_err();
    assert!(error.to_string().contains(&address.to_string()), "{error}");
}

#[tokio::test]
async fn a_worker_that_stops_because_shutdown_was_requested_is_no_failure() {
    // The worker requests shutdown and returns: both are ready when the runtime looks next, and which one it sees
    // first varies, so it is repeated.
    for _ in 0..20 {
        let bound = service()
            .worker("last order", |shutdown: Shutdown| async move { shutdown.trigger() })
            .bind()
            .await
            .unwrap();
        let outcome = tokio::time::timeout(WAIT, run(bound, &Shutdown::new())).await.unwrap().unwrap();
        assert!(outcome.is_ok(), "{outcome:?}");
    }
}
