//! Per request: its trace decided at the edge (a server span, or none), RED metrics and one access log line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use opentelemetry_http::HeaderExtractor;
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::request_id::RequestId;
use crate::edge_sampling::{self, EdgeDecision, EdgeSampler, Untraced, UntracedRequest};
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

pub(super) async fn observe_request<F>(request: Request, next: impl FnOnce(Request) -> F) -> Response
where
    F: Future<Output = Response>,
{
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned());
    let request_id = request.extensions().get::<RequestId>().map(|id| id.as_str().to_owned()).unwrap_or_default();
    let quiet = route.as_deref().is_some_and(|route| QUIET_ROUTES.iter().any(|quiet| route.starts_with(quiet)));
    let trace =
        if quiet { RequestTrace::Quiet } else { RequestTrace::decide(&request, method, route.as_deref(), request_id) };
    let route = route.unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());

    let _in_flight = InFlight::start(method);
    let response = match &trace {
        RequestTrace::Quiet => next(request).await,
        RequestTrace::Traced(span) => next(request).instrument(span.clone()).await,
        RequestTrace::Untraced(untraced) => {
            let response = Untraced::new(next(request), untraced.clone()).await;
            // An SSE stream's sends run as the body is polled, after the handler returned.
            response.map(|body| Body::new(Untraced::new(body, untraced.clone())))
        }
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
        RequestTrace::Quiet | RequestTrace::Untraced(_) => None,
    };
    let labels = HttpServerLabels {
        http_request_method: method,
        http_route: route,
        http_response_status_code: status.as_str().to_owned(),
    };
    exemplars::observe_http_server(&labels, duration.as_secs_f64(), recorded);

    let line = AccessLine { method, route: &labels.http_route, status, duration };
    match &trace {
        RequestTrace::Quiet => line.write(&tracing::Span::none(), Importance::Quiet),
        RequestTrace::Traced(span) => line.write(span, Importance::Traced),
        RequestTrace::Untraced(untraced) => {
            edge_sampling::untraced(untraced, || line.write(&tracing::Span::none(), Importance::Untraced));
        }
    }
    response
}

/// A request's trace, as the edge decided it.
enum RequestTrace {
    /// A probe or scrape: no trace.
    Quiet,
    /// A kept trace: the server span, recorded by OpenTelemetry.
    Traced(tracing::Span),
    /// A dropped trace: no span, only the request's ids ([`crate::edge_sampling`]).
    Untraced(Arc<UntracedRequest>),
}

impl RequestTrace {
    /// The trace of `request`, continuing its caller's `traceparent`, as the subscriber's edge sampler decides.
    fn decide(request: &Request, method: &'static str, route: Option<&str>, request_id: String) -> Self {
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(request.headers()))
        });
        match EdgeSampler::decide_current(&parent) {
            EdgeDecision::Traced { new_trace_id } => {
                let span = server_span(request, method, route, &request_id);
                // Fails only when no OpenTelemetry layer is installed, in which case there is nothing to link.
                let _ = span.set_parent(parent);
                if let Some(trace_id) = new_trace_id {
                    edge_sampling::start_with_trace_id(&span, trace_id);
                }
                Self::Traced(span)
            }
            EdgeDecision::Untraced(context) => Self::Untraced(Arc::new(UntracedRequest { request_id, context })),
        }
    }
}

/// How much a request's access line matters, for its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Importance {
    /// A probe or scrape.
    Quiet,
    /// A request whose trace is recorded: its line links to it.
    Traced,
    /// A request whose trace is dropped.
    Untraced,
}

/// The facts of one access line.
struct AccessLine<'a> {
    /// The bounded method label.
    method: &'static str,
    /// The route template, or [`UNMATCHED_ROUTE`].
    route: &'a str,
    /// The response's status.
    status: StatusCode,
    /// From the request's arrival to its response.
    duration: Duration,
}

impl AccessLine<'_> {
    /// Logs the line in `span`. Info for what someone may look for: a failed or slow request, and one whose trace
    /// is kept. A fast success of an untraced request is at debug (`RUST_LOG=info,http_access=debug` logs them
    /// all): the RED metrics count it, and at one trace in ten its line was most of what telemetry cost.
    fn write(&self, span: &tracing::Span, importance: Importance) {
        let Self { method, route, status, duration } = *self;
        let duration_ms = (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0;
        let status_code = status.as_u16();
        let worth_info = importance == Importance::Traced || status.is_client_error() || duration >= SLOW_REQUEST;
        if status.is_server_error() {
            tracing::warn!(target: ACCESS_LOG_TARGET, parent: span, method, route, status = status_code, duration_ms, "request completed");
        } else if importance != Importance::Quiet && worth_info {
            tracing::info!(target: ACCESS_LOG_TARGET, parent: span, method, route, status = status_code, duration_ms, "request completed");
        } else {
            tracing::debug!(target: ACCESS_LOG_TARGET, parent: span, method, route, status = status_code, duration_ms, "request completed");
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
    /// The method's gauge, looked up once: each lookup builds the labelled key and searches the registry.
    gauge: metrics::Gauge,
}

impl InFlight {
    fn start(method: &'static str) -> Self {
        let gauge = metrics::gauge!(HTTP_SERVER_ACTIVE_REQUESTS, "http_request_method" => method);
        gauge.increment(1.0);
        Self { gauge }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.decrement(1.0);
    }
}
