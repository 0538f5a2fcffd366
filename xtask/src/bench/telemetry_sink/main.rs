//! `bench-telemetry-sink`: the monitoring side of `cargo xtask bench` with telemetry on.
//!
//! A real deployment sends the backend's spans to a collector and has Prometheus scrape its `/metrics`; both
//! run in other processes, and the backend pays for encoding, sending and rendering, not for what happens
//! after. This process stands in for both: it accepts OTLP/HTTP trace exports, decodes each one fully and
//! counts its spans (keeping nothing else, so memory stays flat however long the run), and scrapes the
//! metrics endpoint at a fixed interval.
//!
//! Protocol with `cargo xtask bench` (xtask/src/bench/sink.rs), over stdout:
//! - first line: `listening on http://127.0.0.1:PORT` once the OTLP endpoint accepts exports;
//! - on SIGTERM or SIGINT: stops, then prints one JSON line of totals (see [`Totals`]) and exits 0.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::Parser;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use tokio::signal::unix::{SignalKind, signal};

const TRACES_PATH: &str = "/v1/traces";
const PROTOBUF: &str = "application/x-protobuf";
/// Far above a batch of 512 spans (the SDK's default batch size), so no export is refused for its size.
const MAX_EXPORT_BYTES: usize = 32 * 1024 * 1024;
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Parser)]
#[command(name = "bench-telemetry-sink", about = "Counts OTLP trace exports and scrapes a /metrics endpoint")]
struct Args {
    /// The Prometheus endpoint to scrape, e.g. http://127.0.0.1:8080/metrics.
    #[arg(long)]
    scrape_url: String,
    /// Milliseconds between scrapes.
    #[arg(long, default_value_t = 1000)]
    scrape_interval_ms: u64,
}

/// What the sink saw; printed as JSON when it stops.
#[derive(Debug, Default)]
struct Totals {
    /// Trace export requests that decoded.
    export_requests: AtomicU64,
    /// Spans in those requests.
    spans: AtomicU64,
    /// Those of kind SERVER: one per HTTP request the service handled.
    server_spans: AtomicU64,
    /// Bytes of those request bodies.
    export_bytes: AtomicU64,
    /// Export requests refused: undecodable, compressed or of another content type.
    rejected_exports: AtomicU64,
    /// Successful scrapes (HTTP 200).
    scrapes: AtomicU64,
    /// Scrapes that failed after the first success (before it, the service is still starting).
    failed_scrapes: AtomicU64,
    /// Size of the last successful scrape's exposition.
    last_scrape_bytes: AtomicU64,
    /// Sample lines (not comments) in the last successful scrape.
    last_scrape_samples: AtomicU64,
}

impl Totals {
    fn to_json(&self) -> serde_json::Value {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        serde_json::json!({
            "export_requests": read(&self.export_requests),
            "spans": read(&self.spans),
            "server_spans": read(&self.server_spans),
            "export_bytes": read(&self.export_bytes),
            "rejected_exports": read(&self.rejected_exports),
            "scrapes": read(&self.scrapes),
            "failed_scrapes": read(&self.failed_scrapes),
            "last_scrape_bytes": read(&self.last_scrape_bytes),
            "last_scrape_samples": read(&self.last_scrape_samples),
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-telemetry-sink: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let totals = Arc::new(Totals::default());
    // Installed before anything can go wrong, so xtask's SIGTERM always ends in the totals line.
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;

    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .context("binding the OTLP endpoint")?;
    let address = listener.local_addr().context("reading the OTLP endpoint's address")?;
    let app = otlp_router(Arc::clone(&totals));

    let scraper = tokio::spawn(scrape_forever(
        args.scrape_url,
        Duration::from_millis(args.scrape_interval_ms.max(1)),
        Arc::clone(&totals),
    ));
    println!("listening on http://{address}");

    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
        .await
        .context("serving OTLP")?;
    scraper.abort();
    println!("{}", totals.to_json());
    Ok(())
}

fn otlp_router(totals: Arc<Totals>) -> Router {
    Router::new()
        .route(TRACES_PATH, post(receive_traces))
        .layer(DefaultBodyLimit::max(MAX_EXPORT_BYTES))
        .with_state(totals)
}

async fn receive_traces(State(totals): State<Arc<Totals>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers.get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if media_type != PROTOBUF || headers.contains_key(CONTENT_ENCODING) {
        totals.rejected_exports.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("expected uncompressed {PROTOBUF}")).into_response();
    }
    let request = match ExportTraceServiceRequest::decode(body.as_ref()) {
        Ok(request) => request,
        Err(error) => {
            totals.rejected_exports.fetch_add(1, Ordering::Relaxed);
            return (StatusCode::BAD_REQUEST, format!("undecodable export: {error}")).into_response();
        }
    };
    let spans = request.resource_spans.iter().flat_map(|resource| &resource.scope_spans).flat_map(|scope| &scope.spans);
    let (mut all, mut server) = (0u64, 0u64);
    for span in spans {
        all += 1;
        server += u64::from(span.kind == SpanKind::Server as i32);
    }
    totals.export_requests.fetch_add(1, Ordering::Relaxed);
    totals.spans.fetch_add(all, Ordering::Relaxed);
    totals.server_spans.fetch_add(server, Ordering::Relaxed);
    totals.export_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    ([(CONTENT_TYPE, PROTOBUF)], ExportTraceServiceResponse::default().encode_to_vec()).into_response()
}

/// Scrapes like Prometheus does: one GET per interval, the exposition read in full.
async fn scrape_forever(url: String, interval: Duration, totals: Arc<Totals>) {
    let client = match reqwest::Client::builder().timeout(SCRAPE_TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            eprintln!("bench-telemetry-sink: cannot build the scrape client: {error}");
            return;
        }
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen_up = false;
    loop {
        ticks.tick().await;
        match scrape(&client, &url).await {
            Ok(exposition) => {
                seen_up = true;
                totals.scrapes.fetch_add(1, Ordering::Relaxed);
                totals.last_scrape_bytes.store(exposition.len() as u64, Ordering::Relaxed);
                let samples = exposition.lines().filter(|line| !line.is_empty() && !line.starts_with('#')).count();
                totals.last_scrape_samples.store(samples as u64, Ordering::Relaxed);
            }
            Err(error) if seen_up => {
                totals.failed_scrapes.fetch_add(1, Ordering::Relaxed);
                eprintln!("bench-telemetry-sink: scrape failed: {error:#}");
            }
            Err(_) => {}
        }
    }
}

async fn scrape(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let response = client.get(url).send().await?.error_for_status()?;
    Ok(response.text().await?)
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    async fn serve_in_background(app: Router) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        address
    }

    fn span(kind: SpanKind) -> Span {
        Span { name: "GET /v1/tasks".to_owned(), kind: kind as i32, ..Span::default() }
    }

    #[tokio::test]
    async fn exports_are_decoded_and_their_spans_counted() {
        let totals = Arc::new(Totals::default());
        let address = serve_in_background(otlp_router(Arc::clone(&totals))).await;
        let export = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span(SpanKind::Server), span(SpanKind::Internal), span(SpanKind::Server)],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        let client = reqwest::Client::new();
        let url = format!("http://{address}{TRACES_PATH}");
        let accepted = client
            .post(&url)
            .header(CONTENT_TYPE, PROTOBUF)
            .body(export.encode_to_vec())
            .send()
            .await
            .expect("export sent");
        assert_eq!(accepted.status(), StatusCode::OK);
        let answer = ExportTraceServiceResponse::decode(accepted.bytes().await.expect("body")).expect("OTLP answer");
        assert_eq!(answer, ExportTraceServiceResponse::default());

        let json = client.post(&url).header(CONTENT_TYPE, "application/json").body("{}").send().await.expect("sent");
        assert_eq!(json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let garbage = client.post(&url).header(CONTENT_TYPE, PROTOBUF).body(vec![0xff; 7]).send().await.expect("sent");
        assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);

        let totals = totals.to_json();
        assert_eq!(totals["export_requests"], 1);
        assert_eq!(totals["spans"], 3);
        assert_eq!(totals["server_spans"], 2);
        assert_eq!(totals["rejected_exports"], 2);
    }

    #[tokio::test]
    async fn scrapes_count_once_the_endpoint_is_up() {
        let exposition = "# TYPE up gauge\nup 1\nrequests_total{route=\"/\"} 3\n";
        let address =
            serve_in_background(Router::new().route("/metrics", get(move || async move { exposition }))).await;
        let totals = Arc::new(Totals::default());
        let scraper = tokio::spawn(scrape_forever(
            format!("http://{address}/metrics"),
            Duration::from_millis(10),
            Arc::clone(&totals),
        ));
        let scraped = testkit::wait::until(testkit::wait::DEFAULT_TIMEOUT, || async {
            totals.scrapes.load(Ordering::Relaxed) >= 3
        })
        .await;
        assert!(scraped.is_ok(), "fewer than 3 scrapes: {}", totals.to_json());
        scraper.abort();
        assert_eq!(totals.last_scrape_samples.load(Ordering::Relaxed), 2);
        assert_eq!(totals.last_scrape_bytes.load(Ordering::Relaxed), exposition.len() as u64);
        assert_eq!(totals.failed_scrapes.load(Ordering::Relaxed), 0);
    }
}
