//! The circuit-broken client against real downstream servers on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::any;
use common::{TestServer, test_telemetry};
use observability::client::{BreakerState, ClientConfig, ClientError, ServiceClient};
use observability::http::HttpConfig;
use observability::metric_names::{
    CIRCUIT_BREAKER_REJECTED_CALLS_TOTAL, CIRCUIT_BREAKER_STATE, CIRCUIT_BREAKER_TRANSITIONS_TOTAL,
    CLIENT_FALLBACK_CACHE_HITS_TOTAL, HTTP_CLIENT_REQUEST_DURATION_SECONDS,
};
use observability::problem::Problem;
use opentelemetry::trace::TraceContextExt as _;
use serde_json::{Value, json};
use testkit::exposition::metric_value;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use url::Url;

/// How the fake downstream answers.
const HEALTHY: u8 = 0;
const FAILING: u8 = 1;
const SLOW: u8 = 2;
const NOT_FOUND: u8 = 3;
const NOT_JSON: u8 = 4;

/// A real HTTP server whose behaviour the test switches, recording what it receives.
#[derive(Clone, Default)]
struct Downstream {
    mode: Arc<AtomicU8>,
    /// Answer 500 to this many requests before behaving per `mode`.
    fail_first: Arc<AtomicUsize>,
    hits: Arc<AtomicUsize>,
    last_headers: Arc<Mutex<Option<HeaderMap>>>,
}

async fn downstream_handler(State(downstream): State<Downstream>, headers: HeaderMap) -> axum::response::Response {
    let hit = downstream.hits.fetch_add(1, Ordering::SeqCst) + 1;
    *downstream.last_headers.lock().unwrap() = Some(headers);
    if downstream.fail_first.load(Ordering::SeqCst) >= hit {
        return Problem::internal().into_response();
    }
    match downstream.mode.load(Ordering::SeqCst) {
        HEALTHY => axum::Json(json!({"hit": hit})).into_response(),
        FAILING => Problem::internal().into_response(),
        SLOW => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            axum::Json(json!({"hit": hit})).into_response()
        }
        NOT_FOUND => Problem::not_found("no such user").into_response(),
        NOT_JSON => (StatusCode::OK, "<html>").into_response(),
        _ => StatusCode::IM_A_TEAPOT.into_response(),
    }
}

impl Downstream {
    async fn start(mode: u8) -> (Self, TestServer) {
        let downstream = Self::default();
        downstream.mode.store(mode, Ordering::SeqCst);
        let router = Router::new().route("/{*path}", any(downstream_handler)).with_state(downstream.clone());
        let server = TestServer::start(router, HttpConfig::default()).await;
        (downstream, server)
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn last_header(&self, name: &str) -> Option<String> {
        let headers = self.last_headers.lock().unwrap();
        headers.as_ref()?.get(name).map(|value| value.to_str().unwrap().to_owned())
    }
}

fn config(downstream: &'static str, base_url: &str) -> ClientConfig {
    ClientConfig {
        downstream,
        base_url: Url::parse(base_url).unwrap(),
        timeout: Duration::from_millis(500),
        max_retries: 0,
        backoff: observability::client::retry_backoff(Duration::from_millis(5)),
        failure_threshold: 3,
        open_for: Duration::from_millis(300),
        cache_ttl: None,
    }
}

/// A port on 127.0.0.1 that nobody listens on (bound, then released).
async fn dead_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn metric(name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metric_value(&observability::metrics::install().unwrap().render(), name, labels)
}

#[tokio::test]
async fn breaker_opens_against_a_dead_downstream_and_then_rejects_without_network() {
    let _telemetry = test_telemetry("info");
    // Open long enough that the assertions below can never race a half-open transition.
    let client = ServiceClient::new(ClientConfig {
        open_for: Duration::from_secs(60),
        ..config("dead_downstream", &dead_port_url().await)
    })
    .unwrap();
    for _ in 0..3 {
        let error = client.get_json::<Value>("/v1/users/1", HeaderMap::new()).await.unwrap_err();
        assert!(matches!(error, ClientError::Transport { .. }), "{error:?}");
    }
    assert_eq!(client.breaker_state(), BreakerState::Open);
    assert_eq!(client.health_detail()["state"], "open");
    assert_eq!(metric(CIRCUIT_BREAKER_STATE, &[("downstream", "dead_downstream")]), Some(2.0));
    assert_eq!(
        metric(
            &format!("{HTTP_CLIENT_REQUEST_DURATION_SECONDS}_count"),
            &[("downstream", "dead_downstream"), ("http_response_status_code", "error")]
        ),
        Some(3.0)
    );

    let started = Instant::now();
    for _ in 0..5 {
        let error = client.get_json::<Value>("/v1/users/1", HeaderMap::new()).await.unwrap_err();
        assert!(matches!(error, ClientError::CircuitOpen { downstream: "dead_downstream" }), "{error:?}");
    }
    assert!(started.elapsed() < Duration::from_millis(250), "rejections were not fast: {:?}", started.elapsed());
    assert_eq!(metric(CIRCUIT_BREAKER_REJECTED_CALLS_TOTAL, &[("downstream", "dead_downstream")]), Some(5.0));
    // Rejected calls made no attempt, so no new duration samples.
    assert_eq!(
        metric(&format!("{HTTP_CLIENT_REQUEST_DURATION_SECONDS}_count"), &[("downstream", "dead_downstream")]),
        Some(3.0)
    );
}

#[tokio::test]
async fn breaker_opens_on_5xx_rejects_while_open_then_half_opens_and_closes_on_recovery() {
    let _telemetry = test_telemetry("info");
    let (downstream, server) = Downstream::start(FAILING).await;
    // Long enough that a slow machine cannot half-open before the "rejects while open" checks.
    let client = ServiceClient::new(ClientConfig {
        open_for: Duration::from_secs(2),
        ..config("recovering_downstream", &server.url(""))
    })
    .unwrap();
    for _ in 0..3 {
        let error = client.get_json::<Value>("/v1/users/1", HeaderMap::new()).await.unwrap_err();
        assert!(matches!(error, ClientError::Status { status: StatusCode::INTERNAL_SERVER_ERROR, .. }), "{error:?}");
    }
    assert_eq!(client.breaker_state(), BreakerState::Open);
    assert_eq!(downstream.hits(), 3);

    // Writes fail fast too, and never reach the downstream while open.
    let error =
        client.post_json::<_, Value>("/v1/tasks", &json!({}), HeaderMap::new(), Some("key-1")).await.unwrap_err();
    assert!(matches!(error, ClientError::CircuitOpen { .. }), "{error:?}");
    assert_eq!(downstream.hits(), 3);

    downstream.set(HEALTHY);
    let deadline = Instant::now() + Duration::from_secs(10);
    let value = loop {
        match client.get_json::<Value>("/v1/users/1", HeaderMap::new()).await {
            Ok(value) => break value,
            Err(ClientError::CircuitOpen { .. }) => {
                assert!(Instant::now() < deadline, "breaker never let a trial call through");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("unexpected error while waiting for half-open: {other:?}"),
        }
    };
    assert_eq!(value["hit"], 4, "exactly one trial call reached the downstream");
    assert_eq!(client.breaker_state(), BreakerState::Closed);
    assert_eq!(metric(CIRCUIT_BREAKER_STATE, &[("downstream", "recovering_downstream")]), Some(0.0));
    for to_state in ["open", "half_open", "closed"] {
        assert_eq!(
            metric(
                CIRCUIT_BREAKER_TRANSITIONS_TOTAL,
                &[("downstream", "recovering_downstream"), ("to_state", to_state)]
            ),
            Some(1.0),
            "{to_state}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn client_errors_do_not_trip_the_breaker() {
    let _telemetry = test_telemetry("info");
    let (downstream, server) = Downstream::start(NOT_FOUND).await;
    let client =
        ServiceClient::new(ClientConfig { max_retries: 3, ..config("not_found_downstream", &server.url("")) }).unwrap();
    for _ in 0..6 {
        match client.get_json::<Value>("/v1/users/404", HeaderMap::new()).await.unwrap_err() {
            ClientError::Status { status, problem, .. } => {
                assert_eq!(status, StatusCode::NOT_FOUND);
                assert_eq!(problem.unwrap()["detail"], "no such user");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(client.breaker_state(), BreakerState::Closed);
    assert_eq!(downstream.hits(), 6, "a 4xx must not be retried");
    server.stop().await;
}

#[tokio::test]
async fn idempotent_reads_are_retried_until_they_succeed() {
    let _telemetry = test_telemetry("info");
    let (downstream, server) = Downstream::start(HEALTHY).await;
    downstream.fail_first.store(2, Ordering::SeqCst);
    let client =
        ServiceClient::new(ClientConfig { max_retries: 2, ..config("retry_get_downstream", &server.url("")) }).unwrap();
    let value: Value = client.get_json("/v1/users/1", HeaderMap::new()).await.unwrap();
    assert_eq!(value["hit"], 3);
    assert_eq!(downstream.hits(), 3);
    let attempts = |status| {
        metric(
            &format!("{HTTP_CLIENT_REQUEST_DURATION_SECONDS}_count"),
            &[
                ("downstream", "retry_get_downstream"),
                ("http_request_method", "GET"),
                ("http_response_status_code", status),
            ],
        )
    };
    assert_eq!((attempts("500"), attempts("200")), (Some(2.0), Some(1.0)));
    server.stop().await;
}

#[tokio::test]
async fn writes_are_retried_only_with_an_idempotency_key() {
    let _telemetry = test_telemetry("info");
    let (downstream, server) = Downstream::start(FAILING).await;
    let client = ServiceClient::new(ClientConfig {
        max_retries: 2,
        failure_threshold: 100,
        ..config("retry_post_downstream", &server.url(""))
    })
    .unwrap();

    let error =
        client.post_json::<_, Value>("/v1/tasks", &json!({"title": "x"}), HeaderMap::new(), None).await.unwrap_err();
    assert!(matches!(error, ClientError::Status { .. }), "{error:?}");
    assert_eq!(downstream.hits(), 1, "a write without a key must not be retried");
    assert_eq!(downstream.last_header("idempotency-key"), None);

    let error = client
        .post_json::<_, Value>("/v1/tasks", &json!({"title": "x"}), HeaderMap::new(), Some("event-42"))
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Status { .. }), "{error:?}");
    assert_eq!(downstream.hits(), 4, "1 + 2 retries with the key");
    assert_eq!(downstream.last_header("idempotency-key").as_deref(), Some("event-42"));
    assert_eq!(downstream.last_header("content-type").as_deref(), Some("application/json"));

    downstream.set(HEALTHY);
    let created: Value =
        client.post_json("/v1/tasks", &json!({"title": "x"}), HeaderMap::new(), Some("event-43")).await.unwrap();
    assert_eq!(created["hit"], 5);
    server.stop().await;
}

#[tokio::test]
async fn fallback_cache_serves_a_recent_read_while_the_downstream_is_down() {
    let _telemetry = test_telemetry("info");
    let (downstream, server) = Downstream::start(HEALTHY).await;
    let client = ServiceClient::new(ClientConfig {
        cache_ttl: Some(Duration::from_secs(60)),
        failure_threshold: 2,
        open_for: Duration::from_secs(60),
        ..config("cached_downstream", &server.url(""))
    })
    .unwrap();
    let mut alice = HeaderMap::new();
    alice.insert("authorization", HeaderValue::from_static("Bearer service-token-a"));
    let fresh: Value = client.get_json("/v1/users/alice", alice.clone()).await.unwrap();
    assert_eq!(fresh["hit"], 1);

    downstream.set(FAILING);
    // Failing downstream (breaker still closed), then open breaker: both fall back to the cache.
    for _ in 0..4 {
        let cached: Value = client.get_json("/v1/users/alice", alice.clone()).await.unwrap();
        assert_eq!(cached, fresh);
    }
    assert_eq!(client.breaker_state(), BreakerState::Open);
    assert_eq!(metric(CLIENT_FALLBACK_CACHE_HITS_TOTAL, &[("downstream", "cached_downstream")]), Some(4.0));

    // Nothing cached for another path or another credential: the failure surfaces.
    let error = client.get_json::<Value>("/v1/users/bob", alice.clone()).await.unwrap_err();
    assert!(matches!(error, ClientError::CircuitOpen { .. }), "{error:?}");
    let mut other_caller = HeaderMap::new();
    other_caller.insert("authorization", HeaderValue::from_static("Bearer service-token-b"));
    assert!(client.get_json::<Value>("/v1/users/alice", other_caller).await.is_err());
    server.stop().await;
}

#[tokio::test]
async fn slow_downstreams_time_out_and_bad_bodies_are_decode_errors() {
    let _telemetry = test_telemetry("info");
    let (downstream, server) = Downstream::start(SLOW).await;
    let client = ServiceClient::new(ClientConfig {
        timeout: Duration::from_millis(100),
        failure_threshold: 100,
        ..config("slow_downstream", &server.url(""))
    })
    .unwrap();
    let started = Instant::now();
    let error = client.get_json::<Value>("/v1/users/1", HeaderMap::new()).await.unwrap_err();
    assert!(matches!(error, ClientError::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    downstream.set(NOT_JSON);
    let error = client.get_json::<Value>("/v1/users/1", HeaderMap::new()).await.unwrap_err();
    assert!(matches!(error, ClientError::Decode { .. }), "{error:?}");
    server.stop().await;
}

#[tokio::test]
async fn trace_context_of_the_calling_span_is_injected() {
    let telemetry = test_telemetry("info");
    let (downstream, server) = Downstream::start(HEALTHY).await;
    let client = ServiceClient::new(config("traced_downstream", &server.url(""))).unwrap();
    let caller = tracing::info_span!("handle reminder");
    let caller_trace = caller.context().span().span_context().trace_id();
    assert_ne!(caller_trace, opentelemetry::trace::TraceId::INVALID);

    let _: Value = client.get_json("/v1/users/1", HeaderMap::new()).instrument(caller.clone()).await.unwrap();
    drop(caller);
    server.stop().await;

    let traceparent = downstream.last_header("traceparent").expect("traceparent sent");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[1], caller_trace.to_string());
    // The parent is the client span (a child of the caller), which is exported with kind Client.
    let spans = telemetry.spans.get_finished_spans().unwrap();
    let client_span = spans
        .iter()
        .find(|span| span.span_kind == opentelemetry::trace::SpanKind::Client)
        .expect("client span exported");
    assert_eq!(parts[2], client_span.span_context.span_id().to_string());
    assert_eq!(client_span.span_context.trace_id(), caller_trace);
}
