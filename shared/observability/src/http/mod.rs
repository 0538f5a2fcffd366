//! The HTTP server layer every Taskwatch service wraps its axum router in.
//!
//! [`instrument`] adds, outermost first:
//! 1. request id — accept a sane `x-request-id` or generate a UUIDv7, echo it on the response
//!    (`request_id`);
//! 2. observation — a server span named `"{METHOD} {route}"` continuing the caller's `traceparent` when the
//!    request's trace is recorded ([`crate::edge_sampling`]), RED metrics labelled by route *template*, one access
//!    log line, at info when the request failed, was slow or is traced, at debug otherwise (`observe`);
//! 3. panic → 500 problem+json and an error line, timeout → 504 problem+json, body limit → 413
//!    problem+json (`guard`);
//! 4. demo faults on API routes, when a [fault switch](crate::faults) is installed and on: latency and
//!    5xx answers, innermost so the RED metrics, spans and the timeout see them like real ones.
//!
//! [`serve`] runs the router until [`Shutdown`] fires, then drains in-flight requests within a bound.

mod guard;
mod observe;
mod request_id;

use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::Response;

pub use self::observe::ACCESS_LOG_TARGET;
pub use self::request_id::{REQUEST_ID_HEADER, RequestId};
use crate::config::{DurationValue, Env};
use crate::shutdown::Shutdown;

/// Limits of the HTTP server layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// A request still running after this gets 504 and its handler is cancelled.
    pub request_timeout: Duration,
    /// Larger request bodies get 413, whether announced by `Content-Length` or streamed.
    pub body_limit_bytes: usize,
    /// After shutdown is requested, in-flight requests get this long to finish.
    pub drain_timeout: Duration,
}

impl HttpConfig {
    /// Reads `HTTP_REQUEST_TIMEOUT` (default `10s`), `HTTP_BODY_LIMIT_BYTES` (default 64 KiB) and
    /// `HTTP_DRAIN_TIMEOUT` (default `20s`), recording problems in `env`.
    pub fn from_env(env: &mut Env) -> Self {
        let defaults = Self::default();
        let request_timeout =
            env.with_default("HTTP_REQUEST_TIMEOUT", DurationValue::new(defaults.request_timeout)).get();
        let body_limit_bytes = env.with_default("HTTP_BODY_LIMIT_BYTES", defaults.body_limit_bytes);
        let drain_timeout = env.with_default("HTTP_DRAIN_TIMEOUT", DurationValue::new(defaults.drain_timeout)).get();
        if request_timeout.is_zero() {
            env.invalid("HTTP_REQUEST_TIMEOUT", "must be greater than zero");
        }
        if body_limit_bytes == 0 {
            env.invalid("HTTP_BODY_LIMIT_BYTES", "must be greater than zero");
        }
        Self { request_timeout, body_limit_bytes, drain_timeout }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            body_limit_bytes: 64 * 1024,
            drain_timeout: Duration::from_secs(20),
        }
    }
}

/// Wraps every route (and the fallback) of `router` in the server layer. Call it on the finished
/// router, after all routes are added, so every route is covered.
pub fn instrument<S>(router: Router<S>, config: &HttpConfig) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let limits = Limits { request_timeout: config.request_timeout, body_limit_bytes: config.body_limit_bytes };
    router
        // Axum's own extractors otherwise apply a fixed 2 MiB limit of their own.
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(limits, server_layer))
}

/// What [`server_layer`] enforces.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// [`HttpConfig::request_timeout`].
    request_timeout: Duration,
    /// [`HttpConfig::body_limit_bytes`].
    body_limit_bytes: usize,
}

/// The whole server layer as one middleware, its steps in the order listed in the module documentation.
///
/// One middleware rather than one per step: each `from_fn` layer clones the whole stack below it and boxes its
/// future on every request, so eight layers cost a bare axum read about 28 µs, five about 10 µs (BENCHMARKS.md).
async fn server_layer(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    request_id::assign_request_id(request, |request| {
        observe::observe_request(request, |request| {
            let handled = guard::limit_body(limits.body_limit_bytes, request, |request| {
                crate::faults::inject_http_faults(request, next)
            });
            guard::catch_panic(guard::enforce_timeout(limits.request_timeout, handled))
        })
    })
    .await
}

/// Serves `router` until `shutdown` fires; then stops accepting, lets in-flight requests finish
/// for at most `config.drain_timeout`, and returns.
///
/// Connection info ([`axum::extract::ConnectInfo<SocketAddr>`]) is available to handlers.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: Shutdown,
    config: &HttpConfig,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(%address, "listening");
    let stop_accepting = shutdown.clone();
    let server = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move { stop_accepting.requested().await })
        .into_future();
    let mut server = std::pin::pin!(server);
    tokio::select! {
        result = &mut server => return result,
        () = shutdown.requested() => {}
    }
    let drain_ms = u64::try_from(config.drain_timeout.as_millis()).unwrap_or(u64::MAX);
    tracing::info!(drain_timeout_ms = drain_ms, "shutdown requested; draining in-flight requests");
    match tokio::time::timeout(config.drain_timeout, server).await {
        Ok(result) => {
            tracing::info!("all connections drained");
            result
        }
        Err(_) => {
            // Returning lets the caller flush telemetry and exit; leftover connections die with the runtime.
            tracing::warn!(drain_timeout_ms = drain_ms, "drain timeout elapsed; abandoning remaining connections");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_config_from_env_uses_defaults_and_names_bad_variables() {
        let defaults = Env::from_pairs([]).load(|env| Some(HttpConfig::from_env(env))).unwrap();
        assert_eq!(defaults, HttpConfig::default());

        let pairs = [("HTTP_REQUEST_TIMEOUT", "0s"), ("HTTP_BODY_LIMIT_BYTES", "1MB"), ("HTTP_DRAIN_TIMEOUT", "5s")];
        let env = Env::from_pairs(pairs.map(|(name, value)| (name.to_owned(), value.to_owned())));
        let error = env.load(|env| Some(HttpConfig::from_env(env))).unwrap_err();
        let names: Vec<&str> = error.problems.iter().map(|problem| problem.name()).collect();
        assert_eq!(names, ["HTTP_BODY_LIMIT_BYTES", "HTTP_REQUEST_TIMEOUT"]);
    }
}
