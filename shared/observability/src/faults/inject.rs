//! The HTTP server hook: added latency and injected 5xx answers on API routes.

use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{HttpFault, installed};
use crate::problem::Problem;

/// Routes that never get HTTP faults: probes and scrapes must keep telling the truth, and the switch must
/// stay reachable to turn the fault off again.
const EXEMPT_PREFIXES: [&str; 3] = ["/health/", "/metrics", "/admin/"];

/// The innermost step of [`crate::instrument`]'s server layer: a no-op unless a switch is installed, enabled and
/// has an HTTP fault on.
pub(crate) async fn inject_http_faults(request: Request, next: Next) -> Response {
    let Some(fault) = installed().and_then(|faults| faults.http()) else {
        return next.run(request).await;
    };
    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    // Unmatched paths are 404s whatever happens; leaving them alone keeps the fault on real routes.
    if route.is_none_or(|route| EXEMPT_PREFIXES.iter().any(|prefix| route.starts_with(prefix))) {
        return next.run(request).await;
    }
    let delay = added_latency(&fault);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if fault.has_errors() && rand::random_range(0.0..1.0) < fault.error_ratio {
        let status = StatusCode::from_u16(fault.error_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        if status.is_server_error() {
            // As a real failure would: the demo's injected 5xx shows in the trace (and the error reports).
            crate::record_exception(&tracing::Span::current(), &InjectedFault(status));
        }
        return Problem::fault_injected(status)
            .with_detail("injected by the fault switch (/admin/faults)")
            .with_extension("fault", "http_errors")
            .into_response();
    }
    next.run(request).await
}

/// An error the HTTP fault switch made up: the exception its 5xx records.
#[derive(Debug, thiserror::Error)]
#[error("injected by the fault switch (/admin/faults): {0}")]
struct InjectedFault(StatusCode);

/// `latency` plus a uniformly random share of `jitter`.
fn added_latency(fault: &HttpFault) -> Duration {
    let jitter_nanos = u64::try_from(fault.jitter.as_nanos()).unwrap_or(u64::MAX);
    let jitter = if jitter_nanos == 0 { 0 } else { rand::random_range(0..=jitter_nanos) };
    fault.latency.saturating_add(Duration::from_nanos(jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_stays_within_fixed_plus_jitter() {
        let fault = HttpFault {
            latency: Duration::from_millis(100),
            jitter: Duration::from_millis(50),
            error_ratio: 0.0,
            error_status: 503,
        };
        for _ in 0..100 {
            let delay = added_latency(&fault);
            assert!((Duration::from_millis(100)..=Duration::from_millis(150)).contains(&delay), "{delay:?}");
        }
        let fixed = HttpFault { jitter: Duration::ZERO, ..fault };
        assert_eq!(added_latency(&fixed), Duration::from_millis(100));
    }
}
