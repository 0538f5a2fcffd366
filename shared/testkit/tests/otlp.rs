//! The OTLP receiver against real HTTP requests: hand-built exports in both encodings, and the
//! OpenTelemetry SDK exporter the services use.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use opentelemetry_sdk::trace::SdkTracerProvider;
use prost::Message as _;
use testkit::otlp::OtlpReceiver;
use testkit::wait::DEFAULT_TIMEOUT;

const TRACE_ID: [u8; 16] =
    [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36];
const SPAN_ID: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];
const PARENT_ID: [u8; 8] = [0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8];

fn attribute(key: &str, value: Value) -> opentelemetry_proto::tonic::common::v1::KeyValue {
    opentelemetry_proto::tonic::common::v1::KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn export_request() -> ExportTraceServiceRequest {
    let span = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: SPAN_ID.to_vec(),
        parent_span_id: PARENT_ID.to_vec(),
        name: "GET /v1/tasks/{id}".to_owned(),
        attributes: vec![
            attribute("http.route", Value::StringValue("/v1/tasks/{id}".to_owned())),
            attribute("http.response.status_code", Value::IntValue(200)),
            attribute("error", Value::BoolValue(false)),
            attribute(
                "labels",
                Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue { value: Some(Value::StringValue("a".to_owned())) },
                        AnyValue { value: Some(Value::StringValue("b".to_owned())) },
                    ],
                }),
            ),
        ],
        ..Span::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attribute("service.name", Value::StringValue("backend".to_owned()))],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans { spans: vec![span], ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }],
    }
}

fn assert_is_the_exported_span(span: &testkit::otlp::ReceivedSpan) {
    assert_eq!(span.trace_id_hex, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(span.span_id_hex, "00f067aa0ba902b7");
    assert_eq!(span.parent_span_id_hex.as_deref(), Some("53995c3f42cd8ad8"));
    assert_eq!(span.service_name.as_deref(), Some("backend"));
    assert_eq!(span.attribute("http.route"), Some("/v1/tasks/{id}"));
    assert_eq!(span.attribute("http.response.status_code"), Some("200"));
    assert_eq!(span.attribute("error"), Some("false"));
    assert_eq!(span.attribute("labels"), Some("[a, b]"));
}

#[tokio::test]
async fn a_protobuf_export_is_decoded_into_spans() {
    let receiver = OtlpReceiver::start().await.expect("start the receiver");
    let response = reqwest::Client::new()
        .post(receiver.traces_endpoint())
        .header("content-type", "application/x-protobuf")
        .body(export_request().encode_to_vec())
        .send()
        .await
        .expect("POST the export");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let body = response.bytes().await.expect("response body");
    ExportTraceServiceResponse::decode(body).expect("a valid ExportTraceServiceResponse");

    let span = receiver
        .wait_for_span(|span| span.name == "GET /v1/tasks/{id}", DEFAULT_TIMEOUT)
        .await
        .expect("the span arrives");
    assert_is_the_exported_span(&span);
    assert_eq!(receiver.spans(), vec![span]);
}

#[tokio::test]
async fn a_json_export_is_decoded_into_the_same_spans() {
    let receiver = OtlpReceiver::start().await.expect("start the receiver");
    let body = serde_json::to_vec(&export_request()).expect("OTLP/JSON encoding");
    let response = reqwest::Client::new()
        .post(receiver.traces_endpoint())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST the export");
    assert_eq!(response.status(), 200);

    let span = receiver
        .wait_for_span(|span| span.name == "GET /v1/tasks/{id}", DEFAULT_TIMEOUT)
        .await
        .expect("the span arrives");
    assert_is_the_exported_span(&span);
}

#[tokio::test]
async fn bad_exports_are_refused_and_record_nothing() {
    let receiver = OtlpReceiver::start().await.expect("start the receiver");
    let client = reqwest::Client::new();
    let wrong_type = client
        .post(receiver.traces_endpoint())
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("POST");
    assert_eq!(wrong_type.status(), 415);
    let garbage = client
        .post(receiver.traces_endpoint())
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await
        .expect("POST");
    assert_eq!(garbage.status(), 400);
    assert!(receiver.spans().is_empty());
    assert_eq!(receiver.wait_for_span(|_| true, Duration::from_millis(100)).await, None);
}

/// The exporter configuration the services use (HTTP/protobuf, blocking reqwest client, batch
/// processor) delivers to the receiver, and the ids it reports match the SDK's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_exporter_the_services_use_is_received() {
    let receiver = OtlpReceiver::start().await.expect("start the receiver");
    let endpoint = receiver.traces_endpoint();
    // The blocking HTTP client must be built and shut down off the async runtime.
    let (trace_id, span_id) = tokio::task::spawn_blocking(move || {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .build()
            .expect("build the exporter");
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(opentelemetry_sdk::Resource::builder().with_service_name("testkit-probe").build())
            .build();
        let tracer = provider.tracer("testkit");
        let mut span = tracer.start("probe span");
        span.set_attribute(KeyValue::new("probe.count", 3));
        let context = span.span_context().clone();
        span.end();
        provider.shutdown().expect("flush and shut down the provider");
        (context.trace_id().to_string(), context.span_id().to_string())
    })
    .await
    .expect("the exporting thread");

    let span = receiver
        .wait_for_span(|span| span.name == "probe span", DEFAULT_TIMEOUT)
        .await
        .expect("the SDK's span arrives");
    assert_eq!(span.trace_id_hex, trace_id);
    assert_eq!(span.span_id_hex, span_id);
    assert_eq!(span.parent_span_id_hex, None);
    assert_eq!(span.service_name.as_deref(), Some("testkit-probe"));
    assert_eq!(span.attribute("probe.count"), Some("3"));
}
