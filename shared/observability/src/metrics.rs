//! The process-wide Prometheus recorder and the `/metrics` endpoint.
//!
//! Uses `metrics-exporter-prometheus` without its HTTP listener: the service's own axum server serves
//! `/metrics`, and a background thread runs the recorder's upkeep (histogram bucket rotation).
//!
//! Every service also exports its process's resources (the USE view of a service), read from `/proc` by
//! `metrics-process` at each scrape: `process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_virtual_memory_max_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_threads` and `process_start_time_seconds`. The `metrics` facade counts in whole numbers, so the CPU
//! counter advances in whole seconds: read it as a rate over minutes, not seconds.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
pub use metrics_exporter_prometheus::PrometheusHandle;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// Bucket upper bounds (seconds) for every `*_seconds` histogram: fine-grained where a 2-core API
/// spends its time (5–100 ms) and up to the 10 s request timeout.
pub const SECONDS_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// Bucket upper bounds (seconds) for histograms of how late something happened rather than how long a call
/// took: names ending in `_delay_seconds`, `_latency_seconds` or `_lag_seconds` (a reminder fired after its
/// time, a notification delivered after the reminder was due, an outbox row published after it was written).
/// Normal values are sub-second to seconds; outages push them to minutes, and an SLO on "within 30 s" needs a
/// bucket boundary there.
pub const DELAY_SECONDS_BUCKETS: &[f64] =
    &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0];

/// Name suffixes that select [`DELAY_SECONDS_BUCKETS`].
pub const DELAY_SUFFIXES: [&str; 3] = ["_delay_seconds", "_latency_seconds", "_lag_seconds"];

/// The Prometheus text exposition content type.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The OpenMetrics text exposition content type.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Why the recorder could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The exporter refused one of this crate's bucket lists (it rejects an empty one): a bug, not configuration.
    #[error("invalid histogram buckets: {0}")]
    Buckets(String),
    /// Something else set the global `metrics` recorder first; calling [`install`] again is fine (same handle).
    #[error("another metrics recorder is already installed in this process")]
    RecorderTaken,
    /// The OS could not spawn the `metrics-upkeep` thread that rotates histogram buckets.
    #[error("could not start the metrics upkeep thread: {0}")]
    Upkeep(#[source] std::io::Error),
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
/// Reads the process's resource usage into the `process_*` metrics; set once the recorder is installed.
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();
static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Installs the recorder once per process and starts its upkeep; later calls return the same handle,
/// so tests and `init` can both call it.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    // Serialise first-time installation so two racing callers cannot both try to set the global.
    let _installing = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    // The exporter tries suffix matchers in lexical order, and every delay suffix sorts before `_seconds`
    // (`_d…`, `_l…` < `_s…`), so the more specific buckets win; a test pins that.
    let mut builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
        .map_err(|error| MetricsError::Buckets(error.to_string()))?;
    for suffix in DELAY_SUFFIXES {
        builder = builder
            .set_buckets_for_metric(Matcher::Suffix(suffix.to_owned()), DELAY_SECONDS_BUCKETS)
            .map_err(|error| MetricsError::Buckets(error.to_string()))?;
    }
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::RecorderTaken)?;
    crate::metric_names::describe_all();
    let process = PROCESS.get_or_init(metrics_process::Collector::default);
    process.describe();
    // The first sample, so the series exist from the first scrape.
    process.collect();
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        })
        .map_err(MetricsError::Upkeep)?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// `GET /metrics`: every metric of `handle` and the exemplar histograms ([`crate::exemplars`]), the `process_*`
/// metrics read just before. In OpenMetrics when the scraper accepts it (Prometheus asks for it first, and reads
/// exemplars only from it), else in the Prometheus text format.
pub fn router<S>(handle: PrometheusHandle) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| {
            if let Some(process) = PROCESS.get() {
                process.collect();
            }
            let openmetrics = headers
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .any(|accept| accept.contains("application/openmetrics-text"));
            let (content_type, body) = if openmetrics {
                (OPENMETRICS_CONTENT_TYPE, scrape_openmetrics(&handle))
            } else {
                (PROMETHEUS_CONTENT_TYPE, scrape_text(&handle))
            };
            async move { ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response() }
        }),
    )
}

/// What `/metrics` answers a scraper that does not ask for OpenMetrics: every metric of `handle`, then the exemplar
/// histograms in the same Prometheus text format. Also for tests that read the metrics without serving them.
pub fn scrape_text(handle: &PrometheusHandle) -> String {
    let mut body = handle.render();
    // Writing into a String cannot fail.
    let _ = crate::exemplars::render_text(&mut body);
    body
}

/// What `/metrics` answers a scraper that asks for OpenMetrics (Prometheus does): exemplars included. Also for tests.
pub fn scrape_openmetrics(handle: &PrometheusHandle) -> String {
    render_openmetrics(&handle.render())
}

/// The exporter's text made OpenMetrics, then the exemplar histograms and `# EOF`. OpenMetrics allows no blank line
/// (the exporter ends each family with one; Prometheus rejects the whole scrape over it) and names a counter's
/// family without its `_total` suffix, which only its samples carry.
fn render_openmetrics(exporter_text: &str) -> String {
    let counters: Vec<&str> = exporter_text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .filter(|name| name.ends_with("_total"))
        .collect();
    let mut body = String::with_capacity(exporter_text.len() + 4096);
    for line in exporter_text.lines().filter(|line| !line.trim().is_empty()) {
        let family = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let name = line.strip_prefix(prefix)?.split(' ').next()?;
            counters.contains(&name).then_some((prefix, name))
        });
        match family {
            Some((prefix, name)) => {
                body.push_str(prefix);
                body.push_str(name.strip_suffix("_total").unwrap_or(name));
                body.push_str(&line[prefix.len() + name.len()..]);
            }
            None => body.push_str(line),
        }
        body.push('\n');
    }
    // Writing into a String cannot fail.
    let _ = crate::exemplars::render_openmetrics(&mut body);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket_bounds(rendered: &str, metric: &str) -> Vec<String> {
        let prefix = format!("{metric}_bucket{{le=\"");
        rendered
            .lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn delay_histograms_get_the_long_buckets_and_durations_the_short_ones() {
        let handle = install().unwrap();
        metrics::histogram!("bucket_test_call_duration_seconds").record(0.01);
        for suffix in DELAY_SUFFIXES {
            metrics::histogram!(format!("bucket_test{suffix}")).record(42.0);
        }
        let rendered = handle.render();

        let short = bucket_bounds(&rendered, "bucket_test_call_duration_seconds");
        assert_eq!(short.len(), SECONDS_BUCKETS.len() + 1, "{rendered}");
        assert_eq!(short.last().map(String::as_str), Some("+Inf"));
        assert!(short.contains(&"10".to_owned()) && !short.contains(&"300".to_owned()), "{short:?}");
        for suffix in DELAY_SUFFIXES {
            let long = bucket_bounds(&rendered, &format!("bucket_test{suffix}"));
            assert_eq!(long.len(), DELAY_SECONDS_BUCKETS.len() + 1, "{suffix}: {rendered}");
            assert!(long.contains(&"30".to_owned()) && long.contains(&"1800".to_owned()), "{suffix}: {long:?}");
        }
    }

    #[tokio::test]
    async fn every_scrape_reads_this_process_resources() {
        use http_body_util::BodyExt as _;
        use tower::ServiceExt as _;

        let app: Router = router(install().unwrap());
        let scrape = || async {
            let request = axum::http::Request::get("/metrics").body(axum::body::Body::empty()).unwrap();
            let body = app.clone().oneshot(request).await.unwrap().into_body().collect().await.unwrap().to_bytes();
            String::from_utf8(body.to_vec()).unwrap()
        };
        let first = scrape().await;
        let resident = testkit::exposition::metric_value(&first, "process_resident_memory_bytes", &[]).unwrap();
        assert!(resident > 1_000_000.0, "a running test binary holds more than 1 MB: {resident}");
        assert!(testkit::exposition::metric_value(&first, "process_threads", &[]).unwrap() >= 2.0, "{first}");
        assert!(testkit::exposition::metric_value(&first, "process_open_fds", &[]).unwrap() >= 3.0, "{first}");
        assert!(first.contains("# TYPE process_cpu_seconds_total counter"), "{first}");

        // Spin until the counter has grown by a whole CPU second (its resolution, see the module docs); a busy
        // machine only makes that take longer.
        let before = testkit::exposition::metric_value(&first, "process_cpu_seconds_total", &[]).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let spun = std::time::Instant::now();
            while spun.elapsed() < Duration::from_millis(100) {
                std::hint::black_box(spun.elapsed());
            }
            let now = testkit::exposition::metric_value(&scrape().await, "process_cpu_seconds_total", &[]).unwrap();
            if now >= before + 1.0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "CPU seconds stayed at {now} (from {before}) for 60 s");
        }
    }

    #[test]
    fn openmetrics_has_no_blank_line_names_counter_families_without_total_and_ends_with_eof() {
        let handle = install().unwrap();
        metrics::counter!("format_test_events_total").increment(2);
        metrics::histogram!("format_test_call_duration_seconds").record(0.2);
        let labels = crate::exemplars::HttpServerLabels {
            http_request_method: "GET",
            http_route: "/format-test".to_owned(),
            http_response_status_code: "200".to_owned(),
        };
        crate::exemplars::observe_http_server(&labels, 0.03, None);

        let body = render_openmetrics(&handle.render());
        assert!(body.ends_with("# EOF\n"), "{body}");
        assert_eq!(body.matches("# EOF").count(), 1);
        assert!(!body.lines().any(|line| line.trim().is_empty()), "a blank line:\n{body}");
        assert!(body.contains("# TYPE format_test_events counter\n"), "{body}");
        assert!(body.contains("\nformat_test_events_total 2\n"), "{body}");
        assert!(body.contains("# TYPE format_test_call_duration_seconds histogram\n"), "{body}");
        assert!(body.contains("# TYPE http_server_request_duration_seconds histogram\n"), "{body}");
        assert!(
            body.contains("# HELP http_server_request_duration_seconds Duration of HTTP server requests"),
            "the exemplar family has the registry's help text: {body}"
        );
        // Every family once: nothing recorded both through the facade and the exemplar registry.
        let mut families: Vec<&str> = body.lines().filter_map(|line| line.strip_prefix("# TYPE ")).collect();
        let count = families.len();
        families.sort_unstable();
        families.dedup();
        assert_eq!(families.len(), count, "a family appears twice:\n{body}");

        let text = scrape_text(&handle);
        assert!(!text.contains("# EOF"), "{text}");
        let route = [("http_route", "/format-test")];
        let count_samples =
            testkit::exposition::metric_value(&text, "http_server_request_duration_seconds_count", &route);
        assert_eq!(count_samples, Some(1.0), "{text}");
    }
}
