//! The HTTP server layer over real HTTP: request ids, spans and logs, metrics, limits, drain.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use common::{RawConnection, TestServer, TestTelemetry, eventually, http_client, test_telemetry};
use observability::http::{HttpConfig, REQUEST_ID_HEADER, instrument};
use observability::metric_names::{HTTP_SERVER_ACTIVE_REQUESTS, HTTP_SERVER_REQUEST_DURATION_SECONDS};
use observability::problem::PROBLEM_JSON;
use opentelemetry::trace::TraceId;
use serde_json::Value;
use testkit::exposition::metric_value;

fn config() -> HttpConfig {
    HttpConfig {
        request_timeout: Duration::from_millis(300),
        body_limit_bytes: 64,
        drain_timeout: Duration::from_secs(5),
    }
}

async fn start(router: Router) -> TestServer {
    TestServer::start(instrument(router, &config()), config()).await
}

#[tokio::test]
async fn request_id_is_echoed_when_sane_and_generated_otherwise() {
    let _telemetry = test_telemetry("info");
    let server = start(Router::new().route("/ping", get(|| async { "pong" }))).await;
    let client = http_client();

    let echoed = client.get(server.url("/ping")).header("x-request-id", "caller-id-42").send().await.unwrap();
    assert_eq!(echoed.headers()[&REQUEST_ID_HEADER], "caller-id-42");

    for insane in ["has space", &"x".repeat(129)] {
        let response = client.get(server.url("/ping")).header("x-request-id", insane).send().await.unwrap();
        let id = response.headers()[&REQUEST_ID_HEADER].to_str().unwrap();
        assert_ne!(id, insane);
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    }

    let generated = client.get(server.url("/ping")).send().await.unwrap();
    let id = generated.headers()[&REQUEST_ID_HEADER].to_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    server.stop().await;
}

#[tokio::test]
async fn handler_logs_carry_trace_span_and_request_ids_and_continue_the_callers_trace() {
    let telemetry = test_telemetry("info");
    let router = Router::new().route(
        "/v1/tasks/{id}",
        get(|Path(id): Path<String>| async move {
            tracing::info!(task_id = %id, attempt = 3, "loading task");
            "ok"
        }),
    );
    let server = start(router).await;
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = http_client()
        .get(server.url("/v1/tasks/abc"))
        .header("traceparent", format!("00-{caller_trace}-00f067aa0ba902b7-01"))
        .header("x-request-id", "req-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;

    let handler_line = telemetry.logs.with_message("loading task").pop().expect("handler line");
    assert_eq!(handler_line["level"], "info");
    assert_eq!(handler_line["service"], "observability-test");
    assert_eq!(handler_line["target"], "server");
    assert_eq!(handler_line["trace_id"], caller_trace);
    assert_eq!(handler_line["request_id"], "req-1");
    assert_eq!(handler_line["task_id"], "abc");
    assert_eq!(handler_line["attempt"], 3);
    let span_id = handler_line["span_id"].as_str().unwrap();
    assert_eq!(span_id.len(), 16);
    let timestamp = handler_line["timestamp"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(timestamp).is_ok() && timestamp.ends_with('Z'), "{timestamp}");

    // The server span continues the caller's trace, is named by the route template, and is the
    // span the log line points at.
    let spans = telemetry.spans.get_finished_spans().unwrap();
    let server_span = spans.iter().find(|span| span.name == "GET /v1/tasks/{id}").expect("server span");
    assert_eq!(server_span.span_context.trace_id(), TraceId::from_hex(caller_trace).unwrap());
    assert_eq!(server_span.span_context.span_id().to_string(), span_id);
    assert_eq!(server_span.span_kind, opentelemetry::trace::SpanKind::Server);
    let attribute =
        |key: &str| server_span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string());
    assert_eq!(attribute("http.route").as_deref(), Some("/v1/tasks/{id}"));
    assert_eq!(attribute("http.response.status_code").as_deref(), Some("200"));
    assert_eq!(attribute("request_id").as_deref(), Some("req-1"));
    // What each request's span leaves out for its cost: per-span thread, code location and target attributes, and
    // the access line as an event (the span holds its facts). The handler's own line is still a span event.
    for costly in ["thread.id", "thread.name", "code.file.path", "code.line.number", "target"] {
        assert_eq!(attribute(costly), None, "{costly} on the server span");
    }
    let events: Vec<&str> = server_span.events.iter().map(|event| event.name.as_ref()).collect();
    assert!(events.contains(&"loading task"), "{events:?}");
    assert!(!events.contains(&"request completed"), "{events:?}");
}

#[tokio::test]
async fn every_request_gets_exactly_one_access_line_without_headers_or_bodies() {
    let telemetry = test_telemetry("info");
    let router = Router::new().route("/v1/echo", post(|body: String| async move { body }));
    let server = start(router).await;
    let response = http_client()
        .post(server.url("/v1/echo"))
        .header("authorization", "Bearer access-line-secret-token")
        .header("x-request-id", "access-1")
        .body("body-marker")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;

    let access: Vec<Value> = telemetry
        .logs
        .with_message("request completed")
        .into_iter()
        .filter(|line| line["request_id"] == "access-1")
        .collect();
    assert_eq!(access.len(), 1, "{access:?}");
    let line = &access[0];
    assert_eq!(
        (line["method"].as_str(), line["route"].as_str(), line["status"].as_u64()),
        (Some("POST"), Some("/v1/echo"), Some(200))
    );
    assert!(line["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(line["target"], "http_access");
    let text = telemetry.logs.text();
    assert!(!text.contains("access-line-secret-token") && !text.contains("body-marker"), "{text}");
}

#[tokio::test]
async fn secrets_and_personal_data_never_reach_the_log() {
    const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.aGVsbG8tc2lnbmF0dXJlLXZhbHVl";
    const EMAIL: &str = "alice.secret@example.org";
    let telemetry = test_telemetry("info");
    // A careless handler that logs everything it gets: headers, the raw body, a named field.
    let router = Router::new().route(
        "/v1/me/notification-settings",
        post(|headers: HeaderMap, body: String| async move {
            tracing::info!(?headers, body = %body, "received settings");
            let parsed: Value = serde_json::from_str(&body).unwrap();
            tracing::warn!(email = parsed["email"].as_str(), token = TOKEN, "storing settings");
            tracing::error!("could not notify {} with Bearer {}", EMAIL, TOKEN);
            StatusCode::NO_CONTENT
        }),
    );
    let server =
        TestServer::start(instrument(router, &HttpConfig { body_limit_bytes: 4096, ..config() }), config()).await;
    let response = http_client()
        .post(server.url("/v1/me/notification-settings"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"email":"{EMAIL}","webhook_url":"https://hooks.example.org/x"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    server.stop().await;

    let text = telemetry.logs.text();
    assert_eq!(telemetry.logs.with_message("received settings").len(), 1, "the handler did log: {text}");
    assert!(!text.contains(TOKEN), "token leaked: {text}");
    assert!(!text.contains("aGVsbG8tc2lnbmF0dXJlLXZhbHVl"), "token signature leaked: {text}");
    assert!(!text.contains(EMAIL) && !text.contains("alice.secret"), "email leaked: {text}");
    assert!(text.contains("[redacted]"));
    // Non-secret content survives, so redaction is targeted rather than blanket.
    assert!(text.contains("hooks.example.org"), "{text}");
}

#[tokio::test]
async fn metrics_label_routes_by_template_never_by_raw_path() {
    let _telemetry = test_telemetry("info");
    let handle = observability::metrics::install().unwrap();
    let router = Router::new()
        .route("/v1/route-label-test/{id}", get(|| async { "ok" }))
        .merge(observability::metrics::router(handle.clone()));
    let server = start(router).await;
    let client = http_client();
    let raw_id = "0192f1b4-7c1e-7d2a-9b3c-5a6f7e8d9c0b";
    for _ in 0..3 {
        client.get(server.url(&format!("/v1/route-label-test/{raw_id}"))).send().await.unwrap();
    }
    let unmatched_path = "/no/such/route-label-test/8c1f";
    let missing = client.get(server.url(unmatched_path)).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let scraped = client.get(server.url("/metrics")).send().await.unwrap();
    assert!(scraped.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let rendered = scraped.text().await.unwrap();
    server.stop().await;

    let count = metric_value(
        &rendered,
        &format!("{HTTP_SERVER_REQUEST_DURATION_SECONDS}_count"),
        &[
            ("http_route", "/v1/route-label-test/{id}"),
            ("http_request_method", "GET"),
            ("http_response_status_code", "200"),
        ],
    );
    assert_eq!(count, Some(3.0), "{rendered}");
    let bucket = metric_value(
        &rendered,
        &format!("{HTTP_SERVER_REQUEST_DURATION_SECONDS}_bucket"),
        &[("http_route", "/v1/route-label-test/{id}"), ("le", "0.005")],
    );
    assert!(bucket.is_some(), "explicit buckets missing: {rendered}");
    assert!(
        metric_value(
            &rendered,
            &format!("{HTTP_SERVER_REQUEST_DURATION_SECONDS}_count"),
            &[("http_route", "unmatched"), ("http_response_status_code", "404")]
        )
        .is_some(),
        "{rendered}"
    );
    assert!(
        !rendered.contains(raw_id) && !rendered.contains("route-label-test/8c1f"),
        "raw path in metrics: {rendered}"
    );
    assert!(rendered.contains(HTTP_SERVER_ACTIVE_REQUESTS), "{rendered}");
}

async fn assert_problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], PROBLEM_JSON);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    body
}

#[tokio::test]
async fn oversized_bodies_get_413_problem_whether_announced_or_streamed() {
    let _telemetry = test_telemetry("info");
    let router = Router::new()
        .route("/v1/text", post(|body: String| async move { body.len().to_string() }))
        .route("/v1/json", post(|axum::Json(body): axum::Json<Value>| async move { body.to_string() }));
    let server = start(router).await;
    let client = http_client();

    let announced = client.post(server.url("/v1/text")).body("x".repeat(65)).send().await.unwrap();
    assert_problem(announced, StatusCode::PAYLOAD_TOO_LARGE).await;

    // No Content-Length: the limit must bite while the handler reads the chunked stream.
    let mut connection = RawConnection::open(server.addr).await;
    let mut request =
        b"POST /v1/json HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..10 {
        request.extend_from_slice(b"a\r\n0123456789\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    connection.send(&request).await;
    let streamed = connection.read_response().await;
    assert_eq!(streamed.status, 413, "{streamed:?}");
    assert_eq!(streamed.header("content-type"), Some(PROBLEM_JSON));

    let within = client.post(server.url("/v1/text")).body("x".repeat(64)).send().await.unwrap();
    assert_eq!(within.text().await.unwrap(), "64");
    server.stop().await;
}

#[tokio::test]
async fn slow_handlers_get_a_504_problem() {
    let telemetry = test_telemetry("info");
    let router = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "too late"
        }),
    );
    let server = start(router).await;
    let started = std::time::Instant::now();
    let response = http_client().get(server.url("/slow")).send().await.unwrap();
    let body = assert_problem(response, StatusCode::GATEWAY_TIMEOUT).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(body["detail"].as_str().unwrap().contains("300 ms"));
    server.stop().await;
    assert_exception_on(&telemetry, "GET /slow", "RequestTimedOut", "300 ms").await;
}

/// The request span `name` ended with an exception event of `type_suffix` whose message mentions `message`.
async fn assert_exception_on(telemetry: &TestTelemetry, name: &str, type_suffix: &str, message: &str) {
    eventually("the request span is exported", || {
        telemetry.spans.get_finished_spans().unwrap().iter().any(|span| span.name == name)
    })
    .await;
    let spans = telemetry.spans.get_finished_spans().unwrap();
    let span = spans.iter().find(|span| span.name == name).expect("the request span");
    let exception = span.events.iter().find(|event| event.name == "exception").expect("an exception event");
    let attribute = |key: &str| {
        exception.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string()).unwrap_or_default()
    };
    assert!(attribute("exception.type").ends_with(type_suffix), "{exception:?}");
    assert!(attribute("exception.message").contains(message), "{exception:?}");
    assert!(matches!(span.status, opentelemetry::trace::Status::Error { .. }), "{:?}", span.status);
}

async fn explode() -> &'static str {
    panic!("handler exploded")
}

#[tokio::test]
async fn a_panicking_handler_answers_500_problem_logs_it_and_keeps_the_connection() {
    let telemetry = test_telemetry("info");
    let router = Router::new().route("/boom", get(explode)).route("/fine", get(|| async { "fine" }));
    let server = start(router).await;
    // Both requests on one connection: the panic must not drop it.
    let mut connection = RawConnection::open(server.addr).await;
    connection.send(b"GET /boom HTTP/1.1\r\nhost: test\r\nx-request-id: panic-1\r\n\r\n").await;
    let response = connection.read_response().await;
    assert_eq!(response.status, 500);
    assert_eq!(response.header("content-type"), Some(PROBLEM_JSON));
    let body: Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(body["status"], 500);
    assert!(!response.body.contains("exploded"), "panic message leaked to the client: {}", response.body);
    connection.send(b"GET /fine HTTP/1.1\r\nhost: test\r\n\r\n").await;
    let after = connection.read_response().await;
    assert_eq!((after.status, after.body.as_str()), (200, "fine"));
    drop(connection);
    server.stop().await;

    let panic_line = telemetry.logs.with_message("request handler panicked").pop().expect("panic logged");
    assert_eq!(panic_line["level"], "error");
    assert_eq!(panic_line["panic"], "handler exploded");
    assert_eq!(panic_line["request_id"], "panic-1");
    let access = telemetry.logs.with_message("request completed");
    assert!(access.iter().any(|line| line["request_id"] == "panic-1" && line["status"] == 500), "{access:?}");
    assert_exception_on(&telemetry, "GET /boom", "HandlerPanicked", "handler exploded").await;
}

#[tokio::test]
async fn shutdown_stops_accepting_and_drains_in_flight_requests() {
    let _telemetry = test_telemetry("info");
    let entered = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let router = {
        let entered = entered.clone();
        let release = release.clone();
        Router::new().route(
            "/work",
            get(move || {
                let entered = entered.clone();
                let release = release.clone();
                async move {
                    entered.fetch_add(1, Ordering::SeqCst);
                    release.notified().await;
                    "done"
                }
            }),
        )
    };
    let config = HttpConfig { request_timeout: Duration::from_secs(30), ..config() };
    let server = TestServer::start(instrument(router, &config), config.clone()).await;
    let url = server.url("/work");
    let in_flight = tokio::spawn(async move { http_client().get(url).send().await.unwrap().text().await.unwrap() });
    eventually("request reached the handler", || entered.load(Ordering::SeqCst) == 1).await;

    server.shutdown.trigger();
    // New connections are refused once shutdown began.
    let addr = server.addr;
    let mut refused = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "listener still accepting after shutdown");

    // The in-flight request still completes.
    release.notify_one();
    assert_eq!(tokio::time::timeout(Duration::from_secs(10), in_flight).await.unwrap().unwrap(), "done");
    server.stop().await;
}

#[tokio::test]
async fn drain_is_bounded_by_the_drain_timeout() {
    let _telemetry = test_telemetry("info");
    let entered = Arc::new(AtomicUsize::new(0));
    let router = {
        let entered = entered.clone();
        Router::new().route(
            "/stuck",
            get(move || {
                let entered = entered.clone();
                async move {
                    entered.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                    "never"
                }
            }),
        )
    };
    let config = HttpConfig {
        request_timeout: Duration::from_secs(60),
        body_limit_bytes: 64,
        drain_timeout: Duration::from_millis(200),
    };
    let server = TestServer::start(instrument(router, &config), config.clone()).await;
    let url = server.url("/stuck");
    let _stuck = tokio::spawn(async move { http_client().get(url).send().await });
    eventually("request reached the handler", || entered.load(Ordering::SeqCst) == 1).await;
    let started = std::time::Instant::now();
    server.stop().await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(10), "{took:?}");
}
