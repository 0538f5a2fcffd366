//! Head sampling at the HTTP edge, over real HTTP: a dropped trace builds no span, yet its logs and what it passes on
//! carry its trace context; a kept new trace is exported with the trace id it was decided on.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::get;
use common::{TestServer, TestTelemetry, http_client, test_telemetry_with};
use futures::StreamExt as _;
use observability::http::{HttpConfig, instrument};
use observability::trace_headers;
use serde_json::Value;

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn config() -> HttpConfig {
    HttpConfig {
        request_timeout: Duration::from_secs(5),
        body_limit_bytes: 1024,
        drain_timeout: Duration::from_secs(5),
    }
}

/// A handler that logs, opens a child span, and answers with the `traceparent` it would pass on.
fn passes_its_trace_on() -> Router {
    Router::new().route(
        "/v1/work",
        get(|| async {
            tracing::info!("working");
            let child = tracing::info_span!("child.step");
            let _entered = child.enter();
            tracing::info!("inside the child");
            trace_headers::current().remove("traceparent").unwrap_or_default()
        }),
    )
}

async fn exported_span_names(telemetry: &TestTelemetry) -> Vec<String> {
    telemetry.provider.force_flush().unwrap();
    telemetry.spans.get_finished_spans().unwrap().into_iter().map(|span| span.name.to_string()).collect()
}

#[tokio::test]
async fn a_dropped_trace_builds_no_span_but_its_logs_and_calls_carry_the_callers_trace() {
    // Parent-based (the default): a caller that did not sample is followed.
    let telemetry = test_telemetry_with("info,http_access=debug", &[]);
    let server = TestServer::start(instrument(passes_its_trace_on(), &config()), config()).await;
    let response = http_client()
        .get(server.url("/v1/work"))
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-00"))
        .header("x-request-id", "untraced-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let passed_on = response.text().await.unwrap();
    server.stop().await;

    // What it calls continues the caller's trace, unsampled, from a span id of the request's own.
    let parts: Vec<&str> = passed_on.split('-').collect();
    assert_eq!(parts.len(), 4, "traceparent {passed_on:?}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", CALLER_TRACE, "00"), "{passed_on}");
    let request_span = parts[2];
    assert_ne!(request_span, CALLER_SPAN);

    // Its log lines, the child span's included, name that trace and span, and the request.
    for message in ["working", "inside the child", "request completed"] {
        let line = telemetry.logs.with_message(message).pop().unwrap_or_else(|| panic!("no {message:?} line"));
        assert_eq!(line["trace_id"], CALLER_TRACE, "{line}");
        assert_eq!(line["span_id"], request_span, "{line}");
        assert_eq!(line["request_id"], "untraced-1", "{line}");
    }
    // A fast success of a dropped trace is logged at debug only.
    assert_eq!(telemetry.logs.with_message("request completed").pop().unwrap()["level"], "debug");

    // And nothing was built for OpenTelemetry.
    assert_eq!(exported_span_names(&telemetry).await, Vec::<String>::new());
}

#[tokio::test]
async fn spans_made_while_a_dropped_traces_body_streams_are_not_exported() {
    let telemetry = test_telemetry_with("info", &[]);
    let router = Router::new().route(
        "/v1/stream",
        get(|| async {
            // As the task stream does: each send's span is a child of the request's, made as the body is polled.
            let request = tracing::Span::current();
            let chunks = futures::stream::iter(0..3).map(move |index| {
                let _send = tracing::info_span!(parent: &request, "stream.send", index).entered();
                Ok::<_, Infallible>(Bytes::from(format!("chunk {index}\n")))
            });
            Body::from_stream(chunks)
        }),
    );
    let server = TestServer::start(instrument(router, &config()), config()).await;
    let client = http_client();
    let untraced = client
        .get(server.url("/v1/stream"))
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-00"))
        .send()
        .await
        .unwrap();
    assert_eq!(untraced.text().await.unwrap().lines().count(), 3);
    assert_eq!(exported_span_names(&telemetry).await, Vec::<String>::new());

    // The same stream in a kept trace has its sends under the server span.
    let traced = client
        .get(server.url("/v1/stream"))
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(traced.text().await.unwrap().lines().count(), 3);
    server.stop().await;
    let names = exported_span_names(&telemetry).await;
    assert_eq!(names.iter().filter(|name| *name == "stream.send").count(), 3, "{names:?}");
    assert!(names.contains(&"GET /v1/stream".to_owned()), "{names:?}");
}

#[tokio::test]
async fn a_new_trace_is_kept_as_the_ratio_decides_and_exported_under_the_id_it_was_decided_on() {
    let telemetry =
        test_telemetry_with("info", &[("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0.5")]);
    let server = TestServer::start(instrument(passes_its_trace_on(), &config()), config()).await;
    let client = http_client();
    let (mut kept, mut dropped) = (BTreeSet::new(), BTreeSet::new());
    for _ in 0..40 {
        let passed_on = client.get(server.url("/v1/work")).send().await.unwrap().text().await.unwrap();
        let parts: Vec<&str> = passed_on.split('-').collect();
        assert_eq!(parts.len(), 4, "traceparent {passed_on:?}");
        match parts[3] {
            "01" => kept.insert(parts[1].to_owned()),
            "00" => dropped.insert(parts[1].to_owned()),
            flags => panic!("flags {flags}"),
        };
    }
    server.stop().await;
    // Forty coin flips all alike would be one chance in 2^39.
    assert!(!kept.is_empty() && !dropped.is_empty(), "{} kept, {} dropped", kept.len(), dropped.len());

    // Exactly the kept traces were exported, each under the id the edge decided on (the SDK, sampling that id
    // again, agreed every time), and each has its info access line; the dropped ones have none at info.
    telemetry.provider.force_flush().unwrap();
    let exported: BTreeSet<String> = telemetry
        .spans
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|span| span.name == "GET /v1/work")
        .map(|span| span.span_context.trace_id().to_string())
        .collect();
    assert_eq!(exported, kept);
    let logged: BTreeSet<String> = telemetry
        .logs
        .with_message("request completed")
        .iter()
        .map(|line: &Value| line["trace_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logged, kept);
}
