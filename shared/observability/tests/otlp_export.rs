//! Spans leave the process over OTLP/HTTP protobuf to the configured endpoint, with the resource
//! the `OTEL_*` variables describe. The receiver is a real HTTP server decoding the real protobuf.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use common::TestServer;
use observability::ServiceInfo;
use observability::config::Env;
use observability::http::HttpConfig;
use observability::otel::{TraceExport, TraceSettings};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;

type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

async fn receive(State(received): State<Received>, body: Bytes) -> &'static str {
    received.lock().unwrap().push(ExportTraceServiceRequest::decode(body).unwrap());
    ""
}

#[tokio::test]
async fn spans_are_exported_to_the_configured_endpoint_with_the_configured_resource() {
    let received = Received::default();
    let router = Router::new().route("/v1/traces", post(receive)).with_state(received.clone());
    let collector = TestServer::start(router, HttpConfig::default()).await;

    let pairs = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url("")),
        ("OTEL_SERVICE_NAME", "exporter-test".to_owned()),
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test".to_owned()),
    ];
    let env = Env::from_pairs(pairs.map(|(name, value)| (name.to_owned(), value)));
    let service = ServiceInfo { name: "ignored-default", version: "9.9.9" };
    let settings = env.load(|env| Some(TraceSettings::from_env(env, service))).unwrap();
    assert!(matches!(settings.export, TraceExport::Otlp { .. }));
    let provider = settings.tracer_provider().unwrap();

    let mut span = provider.tracer("otlp-test").start("exported operation");
    let trace_id = span.span_context().trace_id();
    span.end();
    // The blocking exporter must not run on the runtime: flush from the blocking pool, as
    // `TelemetryGuard::shutdown` does.
    let flush = tokio::task::spawn_blocking(move || provider.shutdown());
    tokio::time::timeout(Duration::from_secs(30), flush).await.unwrap().unwrap().unwrap();
    collector.stop().await;

    let requests = received.lock().unwrap();
    let resource_spans: Vec<_> = requests.iter().flat_map(|request| &request.resource_spans).collect();
    let span = resource_spans
        .iter()
        .flat_map(|resource| &resource.scope_spans)
        .flat_map(|scope| &scope.spans)
        .find(|span| span.name == "exported operation")
        .expect("span received");
    assert_eq!(span.trace_id, trace_id.to_bytes().to_vec());

    let attributes = &resource_spans[0].resource.as_ref().unwrap().attributes;
    let attribute = |key: &str| {
        attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(value) => Some(value.clone()),
            _ => None,
        })
    };
    assert_eq!(attribute("service.name").as_deref(), Some("exporter-test"));
    assert_eq!(attribute("service.version").as_deref(), Some("9.9.9"));
    assert_eq!(attribute("deployment.environment").as_deref(), Some("test"));
}
