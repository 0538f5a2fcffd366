//! An in-test OTLP/HTTP trace receiver: point a service's `OTEL_EXPORTER_OTLP_ENDPOINT` at it and
//! assert on the spans it exported.

mod span;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use tokio::task::JoinHandle;

pub use span::{ReceivedEvent, ReceivedLink, ReceivedSpan};

use crate::Error;
use crate::collected::Collected;

/// Where OTLP/HTTP exporters send traces, relative to the endpoint.
pub const TRACES_PATH: &str = "/v1/traces";

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// An OTLP/HTTP trace receiver on 127.0.0.1 and a free port, accepting `POST /v1/traces` as protobuf
/// (what the services' exporter sends) or JSON. It runs on the current Tokio runtime and stops when
/// dropped.
///
/// ```no_run
/// # async fn demo() -> Result<(), testkit::Error> {
/// use std::time::Duration;
/// let receiver = testkit::otlp::OtlpReceiver::start().await?;
/// // spawn the service with OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint(), call it, then:
/// let span = receiver
///     .wait_for_span(|span| span.name == "GET /v1/tasks/{id}", Duration::from_secs(30))
///     .await
///     .expect("the service exported its request span");
/// println!("trace {}", span.trace_id_hex);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OtlpReceiver {
    address: SocketAddr,
    spans: Arc<Collected<ReceivedSpan>>,
    server: JoinHandle<()>,
}

impl OtlpReceiver {
    /// Binds a free port on 127.0.0.1 and starts serving.
    pub async fn start() -> Result<Self, Error> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(Error::io("binding the OTLP receiver to 127.0.0.1"))?;
        let address = listener.local_addr().map_err(Error::io("reading the OTLP receiver's address"))?;
        let spans = Arc::new(Collected::new());
        let app = Router::new().route(TRACES_PATH, post(receive_traces)).with_state(Arc::clone(&spans));
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("testkit: the OTLP receiver stopped: {error}");
            }
        });
        Ok(Self { address, spans, server })
    }

    /// The base URL (`http://127.0.0.1:PORT`) for `OTEL_EXPORTER_OTLP_ENDPOINT`; exporters append
    /// [`TRACES_PATH`] themselves.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The full traces URL, for `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is by exporters).
    pub fn traces_endpoint(&self) -> String {
        format!("{}{TRACES_PATH}", self.endpoint())
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.snapshot()
    }

    /// Waits for the first span (already received or still to come) matching `predicate`; `None`
    /// when `timeout` passes first. Exporters batch, so allow for their flush interval.
    pub async fn wait_for_span(
        &self,
        predicate: impl Fn(&ReceivedSpan) -> bool,
        timeout: Duration,
    ) -> Option<ReceivedSpan> {
        self.spans.wait_for(predicate, timeout).await
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Debug, Clone, Copy)]
enum Encoding {
    Protobuf,
    Json,
}

async fn receive_traces(
    State(spans): State<Arc<Collected<ReceivedSpan>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let encoding = match media_type(&headers).as_deref() {
        Some(PROTOBUF) => Encoding::Protobuf,
        Some(JSON) => Encoding::Json,
        other => {
            return reject(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("expected {PROTOBUF} or {JSON}, got {other:?}"));
        }
    };
    if let Some(coding) = headers.get(CONTENT_ENCODING)
        && coding != "identity"
    {
        return reject(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("compressed bodies are not supported ({coding:?})"));
    }
    let request = match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body).map_err(|e| e.to_string()),
        Encoding::Json => serde_json::from_slice(&body).map_err(|e| e.to_string()),
    };
    match request {
        Ok(request) => {
            spans.extend(span::flatten(request));
            accepted(encoding)
        }
        Err(reason) => reject(StatusCode::BAD_REQUEST, format!("undecodable ExportTraceServiceRequest: {reason}")),
    }
}

/// The `Content-Type` without parameters, lowercased.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or(value);
    Some(essence.trim().to_ascii_lowercase())
}

/// A full success answers with an empty `ExportTraceServiceResponse` in the request's encoding.
fn accepted(encoding: Encoding) -> Response {
    let (content_type, body) = match encoding {
        Encoding::Protobuf => (PROTOBUF, ExportTraceServiceResponse::default().encode_to_vec()),
        Encoding::Json => (JSON, b"{}".to_vec()),
    };
    (StatusCode::OK, [(CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response()
}

fn reject(status: StatusCode, reason: String) -> Response {
    (status, reason).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_ignores_parameters_and_case() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("Application/JSON; charset=utf-8"));
        assert_eq!(media_type(&headers).as_deref(), Some(JSON));
        assert_eq!(media_type(&HeaderMap::new()), None);
    }
}
