//! Per request: its trace decided at the edge (a server span, or none), RED metrics and one access log line.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry_http::HeaderExtractor;
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::request_id::RequestId;
use crate::edge_sampling::{self, EdgeDecision, EdgeSampler, Untraced};
use crate::exemplars::{self, HttpServerLabels, RecordedTrace};
use crate::metric_names::HTTP_SERVER_ACTIVE_REQUESTS;

/// The `http_route` label of requests no route matched: a constant, never the raw path, so a
/// scanner probing random URLs cannot blow up the metric's cardinality.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The target of the one access line per request: log pipelines select on it, and the trace layer leaves it out
/// (the server span holds the same facts).
pub const ACCESS_LOG_TARGET: &str = "http_access";

/// Probes and scrapes: every few seconds from each kubelet and Prometheus, they would be most of the log and
/// trace volume while saying nothing about the service's work. Their access lines are logged at debug and they get
/// no span (so no trace, whatever the sampler or the caller's `traceparent` says); their metrics are kept.
const QUIET_ROUTES: &[&str] = &["/health/", "/metrics"];

/// A request slower than this gets an info access line even when it succeeded untraced: the p95 the latency alert
/// (`TaskwatchHighLatency`) fires on.
const SLOW_REQUEST: Duration = Duration::from_millis(500);

pub(super) async fn observe_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned());
    let request_id = request.extensions().get::<RequestId>().map(|id| id.as_str().to_owned()).unwrap_or_default();
    let quiet = route.as_deref().is_some_and(|route| QUIET_ROUTES.iter().any(|quiet| route.starts_with(quiet)));
    let trace =
        if quiet { RequestTrace::None } else { RequestTrace::decide(&request, method, route.as_deref(), &request_id) };
    let route = route.unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());

    let _in_flight = InFlight::start(method);
    let span = trace.span();
    let response = match &trace {
        RequestTrace::Untraced(_) => {
            let response = Untraced::new(next.run(request).instrument(span.clone())).await;
            // An SSE stream's sends run as the body is polled, after the handler returned.
            response.map(|body| Body::new(Untraced::new(body)))
        }
        RequestTrace::None | RequestTrace::Traced(_) => next.run(request).instrument(span.clone()).await,
    };
    let duration = started.elapsed();

    let status = response.status();
    let recorded = match &trace {
        RequestTrace::Traced(span) => {
            span.record("http.response.status_code", status.as_u16());
            if status.is_server_error() {
                // Server spans mark only 5xx as errors (OTel HTTP semconv): a 404 is the client's problem.
                span.record("otel.status_code", "error");
                span.record("error.type", status.as_str());
            }
            RecordedTrace::of_span(span)
        }
        RequestTrace::None | RequestTrace::Untraced(_) => None,
    };
    let labels = HttpServerLabels {
        http_request_method: method,
        http_route: route.clone(),
        http_response_status_code: status.as_str().to_owned(),
    };
    exemplars::observe_http_server(&labels, duration.as_secs_f64(), recorded);

    let duration_ms = (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    let status_code = status.as_u16();
    // Info for what someone may look for: a failed or slow request, and one whose trace is kept (its line links
    // to it). A fast success of an untraced request is at debug (`RUST_LOG=info,http_access=debug` logs them all):
    // the RED metrics count it, and at one trace in ten its line was most of the cost of telemetry.
    if status.is_server_error() {
        tracing::warn!(target: ACCESS_LOG_TARGET, parent: &span, method, route, status = status_code, duration_ms, "request completed");
    } else if !quiet
        && (matches!(trace, RequestTrace::Traced(_)) || status.is_client_error() || duration >= SLOW_REQUEST)
    {
        tracing::info!(target: ACCESS_LOG_TARGET, parent: &span, method, route, status = status_code, duration_ms, "request completed");
    } else {
        tracing::debug!(target: ACCESS_LOG_TARGET, parent: &span, method, route, status = status_code, duration_ms, "request completed");
    }
    response
}

/// A request's span, by what the edge decided about its trace.
enum RequestTrace {
    /// A probe or scrape: no span.
    None,
    /// A kept trace: the server span, recorded by OpenTelemetry.
    Traced(tracing::Span),
    /// A dropped trace: a span for its log lines only, carrying its trace context ([`crate::edge_sampling`]).
    Untraced(tracing::Span),
}

impl RequestTrace {
    /// The span of `request`, continuing its caller's `traceparent`, as the subscriber's edge sampler decides.
    fn decide(request: &Request, method: &'static str, route: Option<&str>, request_id: &str) -> Self {
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(request.headers()))
        });
        match EdgeSampler::decide_current(&parent) {
            EdgeDecision::Traced { new_trace_id } => {
                let span = server_span(request, method, route, request_id);
                // Fails only when no OpenTelemetry layer is installed, in which case there is nothing to link.
                let _ = span.set_parent(parent);
                if let Some(trace_id) = new_trace_id {
                    edge_sampling::start_with_trace_id(&span, trace_id);
                }
                Self::Traced(span)
            }
            EdgeDecision::Untraced(context) => {
                let span = edge_sampling::untraced(|| tracing::info_span!("http.server.request", request_id));
                edge_sampling::attach_untraced(&span, context);
                Self::Untraced(span)
            }
        }
    }

    /// The span the request runs in.
    fn span(&self) -> tracing::Span {
        match self {
            Self::None => tracing::Span::none(),
            Self::Traced(span) | Self::Untraced(span) => span.clone(),
        }
    }
}

fn server_span(request: &Request, method: &'static str, route: Option<&str>, request_id: &str) -> tracing::Span {
    // OTel semconv span name: "{method} {route}", or just the method when no route matched.
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    tracing::info_span!(
        "http.server.request",
        otel.name = %name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = route,
        http.response.status_code = Empty,
        url.path = request.uri().path(),
        url.scheme = "http",
        network.protocol.version = protocol_version(request),
        error.type = Empty,
        request_id,
    )
}

/// Bounded method label: the standard methods, everything else `_OTHER` (OTel semconv).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

fn protocol_version(request: &Request) -> &'static str {
    match request.version() {
        axum::http::Version::HTTP_09 => "0.9",
        axum::http::Version::HTTP_10 => "1.0",
        axum::http::Version::HTTP_2 => "2",
        axum::http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// Counts a request in `http_server_active_requests` for as long as it lives, including when the
/// client disconnects and the request future is dropped half-way.
struct InFlight {
    method: &'static str,
}

impl InFlight {
    fn start(method: &'static str) -> Self {
        metrics::gauge!(HTTP_SERVER_ACTIVE_REQUESTS, "http_request_method" => method).increment(1.0);
        Self { method }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(HTTP_SERVER_ACTIVE_REQUESTS, "http_request_method" => self.method).decrement(1.0);
    }
}
