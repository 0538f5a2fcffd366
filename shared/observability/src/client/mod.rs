//! A circuit-broken HTTP client for service-to-service calls.
//!
//! One [`ServiceClient`] per downstream. Every call gets a per-attempt timeout, a client span whose
//! context travels in `traceparent`/`tracestate`, and a duration metric. Failures (5xx, timeouts,
//! connection errors) count towards the breaker; 4xx answers do not, because they say the downstream
//! is healthy and the *request* is wrong. Reads are retried with jittered exponential backoff and
//! may fall back to a short-lived cache; writes are retried only when they carry an
//! `Idempotency-Key`, and fail fast while the circuit is open.
//!
//! The breaker is the shared [`crate::breaker`] state machine; only [`BreakerState`] and [`ClientError`] are public.

mod breaker;
mod cache;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderName};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use opentelemetry_http::HeaderInjector;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument as _;
use tracing::field::Empty;
use url::Url;

use self::breaker::Breaker;
use self::cache::{CacheKey, FallbackCache};
use crate::backoff::Backoff;
pub use crate::breaker::BreakerState;
use crate::error_chain::error_chain;
use crate::metric_names::{CLIENT_FALLBACK_CACHE_HITS_TOTAL, HTTP_CLIENT_REQUEST_DURATION_SECONDS};

/// The header that makes a write safe to retry.
pub const IDEMPOTENCY_KEY_HEADER: HeaderName = HeaderName::from_static("idempotency-key");

/// Longest single backoff sleep, however many retries are configured.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The retry schedule of calls: from `first` (clamped into 1 ms–10 s), doubling, below [`MAX_BACKOFF`].
pub fn retry_backoff(first: Duration) -> Backoff {
    Backoff::clamped(first, MAX_BACKOFF)
}

/// How to reach one downstream service and how hard to try.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Bounded name used in metrics, logs and errors, e.g. `"backend"`.
    pub downstream: &'static str,
    /// Scheme, host, port and optional path prefix; request paths are appended to it.
    pub base_url: Url,
    /// Limit for one attempt (connect + response + body).
    pub timeout: Duration,
    /// Extra attempts after the first, for retryable requests.
    pub max_retries: u32,
    /// Delays between retries: from the first (see [`retry_backoff`]), doubling, with jitter, below 10 s.
    pub backoff: Backoff,
    /// Consecutive failures that open the circuit (at least 1).
    pub failure_threshold: u32,
    /// How long the circuit stays open before one trial call is let through.
    pub open_for: Duration,
    /// Serve the last good GET answer this long when the downstream fails; `None` disables it.
    pub cache_ttl: Option<Duration>,
}

impl ClientConfig {
    /// Reasonable defaults for an in-cluster call: 2 s timeout, 2 retries from 50 ms, open after 5
    /// consecutive failures for 10 s, no fallback cache.
    pub fn new(downstream: &'static str, base_url: Url) -> Self {
        Self {
            downstream,
            base_url,
            timeout: Duration::from_secs(2),
            max_retries: 2,
            backoff: retry_backoff(Duration::from_millis(50)),
            failure_threshold: 5,
            open_for: Duration::from_secs(10),
            cache_ttl: None,
        }
    }

    /// Reads how to reach `downstream` from variables named after `prefix` (e.g. `BACKEND`), inside the caller's
    /// [`Env::load`](crate::config::Env::load) so every bad variable is reported together:
    ///
    /// | Variable | Default | Meaning |
    /// |---|---|---|
    /// | `{PREFIX}_URL` | required | `http://` or `https://` base URL |
    /// | `{PREFIX}_TIMEOUT` | `2s` | limit of one attempt (above zero) |
    /// | `{PREFIX}_MAX_RETRIES` | `2` | extra attempts for idempotent calls (jittered backoff from 100 ms) |
    /// | `{PREFIX}_BREAKER_FAILURE_THRESHOLD` | `5` | consecutive failures that open the circuit (at least 1) |
    /// | `{PREFIX}_BREAKER_OPEN_FOR` | `10s` | how long the circuit stays open before a trial call |
    ///
    /// The fallback cache stays off; a caller that reads may turn it on.
    pub fn from_env(env: &mut crate::config::Env, downstream: &'static str, prefix: &str) -> Option<Self> {
        use crate::config::DurationValue;
        let name = |suffix: &str| format!("{prefix}_{suffix}");
        let url = env.required::<Url>(&name("URL"));
        let timeout = env.with_default(&name("TIMEOUT"), DurationValue::from_secs(2)).get();
        let max_retries = env.with_default(&name("MAX_RETRIES"), 2u32);
        let failure_threshold = env.with_default(&name("BREAKER_FAILURE_THRESHOLD"), 5u32);
        let open_for = env.with_default(&name("BREAKER_OPEN_FOR"), DurationValue::from_secs(10)).get();
        if timeout.is_zero() {
            env.invalid(&name("TIMEOUT"), "must be above zero");
        }
        if failure_threshold == 0 {
            env.invalid(&name("BREAKER_FAILURE_THRESHOLD"), "must be at least 1");
        }
        if url.as_ref().is_some_and(|url| !matches!(url.scheme(), "http" | "https")) {
            env.invalid(&name("URL"), "must be an http:// or https:// URL");
        }
        Some(Self {
            timeout,
            max_retries,
            backoff: retry_backoff(Duration::from_millis(100)),
            failure_threshold,
            open_for,
            ..Self::new(downstream, url?)
        })
    }
}

/// Why a call did not produce the expected value.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The breaker refused the call (open, or half-open with its trial in flight), before the first attempt or
    /// between retries; nothing was sent. Reads may still be served from the fallback cache.
    #[error("circuit to {downstream} is open; call rejected without a network attempt")]
    CircuitOpen {
        /// The [`ClientConfig::downstream`] called.
        downstream: &'static str,
    },
    /// The last attempt did not connect or finish (status and body) within the per-attempt limit.
    #[error("{downstream} did not answer within {} ms", timeout.as_millis())]
    Timeout {
        /// The [`ClientConfig::downstream`] called.
        downstream: &'static str,
        /// The per-attempt limit that ran out ([`ClientConfig::timeout`]).
        timeout: Duration,
    },
    /// The last attempt failed below HTTP: refused or reset connection, DNS or TLS failure, a body cut short, or an
    /// outage injected by the fault switch.
    #[error("could not reach {downstream}: {message}")]
    Transport {
        /// The [`ClientConfig::downstream`] called.
        downstream: &'static str,
        /// The transport error with its chain of causes, for logs.
        message: String,
    },
    /// The downstream answered with a non-2xx status: a 5xx counts against the breaker and is retried, a 4xx is
    /// neither.
    #[error("{downstream} answered {status}")]
    Status {
        /// The [`ClientConfig::downstream`] called.
        downstream: &'static str,
        /// The status of the last answer, never a success.
        status: StatusCode,
        /// The problem+json body, when the downstream sent one.
        problem: Option<Value>,
    },
    /// A 2xx body is not JSON of the expected type (also for a body served from the fallback cache).
    #[error("unexpected response body from {downstream}: {message}")]
    Decode {
        /// The [`ClientConfig::downstream`] called.
        downstream: &'static str,
        /// The JSON error, with the position where decoding stopped.
        message: String,
    },
    /// The request could not be built, so nothing was sent: a path not starting with `/`, a body that does not
    /// serialise, or an idempotency key that is not a valid header value.
    #[error("invalid request to {downstream}: {message}")]
    InvalidRequest {
        /// The [`ClientConfig::downstream`] called.
        downstream: &'static str,
        /// What is wrong with the request.
        message: String,
    },
    /// [`ServiceClient::new`] refused the [`ClientConfig`] (the message says which setting) or could not build the
    /// HTTP client.
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// Whether the downstream (not the request) is at fault, i.e. trying again later may succeed.
    pub fn is_downstream_failure(&self) -> bool {
        match self {
            Self::CircuitOpen { .. } | Self::Timeout { .. } | Self::Transport { .. } => true,
            Self::Status { status, .. } => status.is_server_error(),
            Self::Decode { .. } | Self::InvalidRequest { .. } | Self::Config(_) => false,
        }
    }
}

/// A client for one downstream; cheap to clone, clones share the breaker and the cache.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    http: reqwest::Client,
    breaker: Breaker,
    cache: Option<FallbackCache>,
}

/// What one attempt produced, before deciding on retries.
enum Attempt {
    Success {
        status: StatusCode,
        body: Bytes,
    },
    /// The downstream is healthy but refused the request (4xx): no retry, no breaker failure.
    Rejected(ClientError),
    /// The downstream failed: counts against the breaker and may be retried.
    Failed(ClientError),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    Allowed,
    Never,
}

impl ServiceClient {
    /// A client for `config.downstream`, which is also registered with the fault switch. Fails with
    /// [`ClientError::Config`] when `failure_threshold` is 0, `timeout` is zero or `base_url` is not an http(s) base.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        if config.failure_threshold == 0 {
            return Err(ClientError::Config("failure_threshold must be at least 1".to_owned()));
        }
        if config.timeout.is_zero() {
            return Err(ClientError::Config("timeout must be positive".to_owned()));
        }
        if !matches!(config.base_url.scheme(), "http" | "https") || config.base_url.cannot_be_a_base() {
            return Err(ClientError::Config(format!("base_url `{}` is not an http(s) URL", config.base_url)));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            // Service-to-service traffic stays inside the cluster; an egress proxy from the
            // environment would only add a hop (and break calls to 127.0.0.1 in tests).
            .no_proxy()
            .user_agent(concat!("taskwatch-service-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ClientError::Config(error.to_string()))?;
        let breaker = Breaker::new(config.downstream, config.failure_threshold, config.open_for);
        crate::faults::register_dependency(config.downstream);
        let cache = config.cache_ttl.map(FallbackCache::new);
        Ok(Self { inner: Arc::new(Inner { config, http, breaker, cache }) })
    }

    /// An idempotent read: retried on failure, and served from the fallback cache (if enabled)
    /// when the downstream fails or its circuit is open.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str, headers: HeaderMap) -> Result<T, ClientError> {
        let key = self.inner.cache.as_ref().map(|_| CacheKey::new(path, &headers));
        match self.execute(Method::GET, path, headers, None, Retry::Allowed).await {
            Ok(body) => {
                let value = self.decode(&body)?;
                if let (Some(cache), Some(key)) = (&self.inner.cache, key) {
                    cache.store(key, body);
                }
                Ok(value)
            }
            Err(error) if error.is_downstream_failure() => match self.cached(key.as_ref()) {
                Some(body) => {
                    metrics::counter!(CLIENT_FALLBACK_CACHE_HITS_TOTAL, "downstream" => self.downstream()).increment(1);
                    tracing::warn!(downstream = self.downstream(), %error, "served a read from the fallback cache");
                    self.decode(&body)
                }
                None => Err(error),
            },
            Err(error) => Err(error),
        }
    }

    /// A write. Retried only when `idempotency_key` is given (sent as `Idempotency-Key`), so the
    /// downstream can deduplicate; fails fast with [`ClientError::CircuitOpen`] while open.
    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        mut headers: HeaderMap,
        idempotency_key: Option<&str>,
    ) -> Result<T, ClientError> {
        let body =
            serde_json::to_vec(body).map_err(|error| self.invalid(format!("body does not serialise: {error}")))?;
        let retry = match idempotency_key {
            Some(key) => {
                let value = HeaderValue::from_str(key)
                    .map_err(|_| self.invalid("idempotency key is not a valid header value".to_owned()))?;
                headers.insert(IDEMPOTENCY_KEY_HEADER, value);
                Retry::Allowed
            }
            None => Retry::Never,
        };
        let response = self.execute(Method::POST, path, headers, Some(Bytes::from(body)), retry).await?;
        self.decode(&response)
    }

    /// The breaker's current state.
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    /// A JSON snippet for `/health/ready` details, e.g. `{"downstream":"backend","state":"open"}`.
    pub fn health_detail(&self) -> Value {
        serde_json::json!({
            "downstream": self.downstream(),
            "state": self.breaker_state().as_str(),
            "failure_threshold": self.inner.config.failure_threshold,
            "open_for_ms": u64::try_from(self.inner.config.open_for.as_millis()).unwrap_or(u64::MAX),
        })
    }

    fn downstream(&self) -> &'static str {
        self.inner.config.downstream
    }

    fn invalid(&self, message: String) -> ClientError {
        ClientError::InvalidRequest { downstream: self.downstream(), message }
    }

    fn cached(&self, key: Option<&CacheKey>) -> Option<Bytes> {
        self.inner.cache.as_ref()?.fresh(key?)
    }

    fn decode<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, ClientError> {
        serde_json::from_slice(body)
            .map_err(|error| ClientError::Decode { downstream: self.downstream(), message: error.to_string() })
    }

    fn url(&self, path: &str) -> Result<Url, ClientError> {
        if !path.starts_with('/') {
            return Err(self.invalid(format!("path `{path}` must start with `/`")));
        }
        let base = self.inner.config.base_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}")).map_err(|error| self.invalid(format!("bad path `{path}`: {error}")))
    }

    /// Runs attempts until one succeeds, the request is refused, retries run out or the breaker
    /// says stop.
    async fn execute(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
        retry: Retry,
    ) -> Result<Bytes, ClientError> {
        let url = self.url(path)?;
        let attempts = match retry {
            Retry::Allowed => self.inner.config.max_retries.saturating_add(1),
            Retry::Never => 1,
        };
        let mut attempt_number = 0;
        loop {
            let Some(permit) = self.inner.breaker.acquire() else {
                return Err(ClientError::CircuitOpen { downstream: self.downstream() });
            };
            let outcome = self.attempt(&method, &url, &headers, body.clone(), attempt_number).await;
            attempt_number += 1;
            match outcome {
                Attempt::Success { body, .. } => {
                    permit.success();
                    return Ok(body);
                }
                Attempt::Rejected(error) => {
                    permit.success();
                    return Err(error);
                }
                Attempt::Failed(error) => {
                    permit.failure();
                    if attempt_number >= attempts {
                        return Err(error);
                    }
                    let delay = self.inner.config.backoff.delay_after(attempt_number);
                    tracing::debug!(
                        downstream = self.downstream(),
                        %error,
                        attempt = attempt_number,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "retrying after failure"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One network attempt inside its own client span.
    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<Bytes>,
        resend_count: u32,
    ) -> Attempt {
        let span = tracing::info_span!(
            "http.client.request",
            otel.name = method.as_str(),
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = method.as_str(),
            http.response.status_code = Empty,
            http.request.resend_count = resend_count,
            server.address = url.host_str().unwrap_or_default(),
            server.port = url.port_or_known_default(),
            url.full = %without_query(url),
            peer.service = self.downstream(),
            error.type = Empty,
        );
        let mut headers = headers.clone();
        let context = crate::edge_sampling::context_of(&span);
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut HeaderInjector(&mut headers));
        });
        headers.entry(ACCEPT).or_insert(HeaderValue::from_static("application/json"));
        let mut request = self.inner.http.request(method.clone(), url.clone()).headers(headers);
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static("application/json")).body(body);
        }
        let request = request.timeout(self.inner.config.timeout);

        let started = Instant::now();
        let outcome = self.send(request).instrument(span.clone()).await;
        if !matches!(outcome, Attempt::Success { .. }) {
            span.record("otel.status_code", "error");
        }
        metrics::histogram!(
            HTTP_CLIENT_REQUEST_DURATION_SECONDS,
            "downstream" => self.downstream(),
            "http_request_method" => method.as_str().to_owned(),
            "http_response_status_code" => status_label(&outcome),
        )
        .record(started.elapsed().as_secs_f64());
        outcome
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Attempt {
        let downstream = self.downstream();
        let timeout = self.inner.config.timeout;
        if crate::faults::is_down(downstream) {
            // A demo outage looks like a refused connection: it fails fast and counts against the breaker.
            tracing::Span::current().record("error.type", "transport");
            let message = "connection refused (outage injected by the fault switch)".to_owned();
            return Attempt::Failed(ClientError::Transport { downstream, message });
        }
        let transport = |error: reqwest::Error| {
            let (error_type, error) = if error.is_timeout() {
                ("timeout", ClientError::Timeout { downstream, timeout })
            } else {
                ("transport", ClientError::Transport { downstream, message: error_chain(&error) })
            };
            tracing::Span::current().record("error.type", error_type);
            error
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Attempt::Failed(transport(error)),
        };
        let status = response.status();
        tracing::Span::current().record("http.response.status_code", status.as_u16());
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => return Attempt::Failed(transport(error)),
        };
        if status.is_success() {
            return Attempt::Success { status, body };
        }
        tracing::Span::current().record("error.type", status.as_str());
        let problem = serde_json::from_slice::<Value>(&body).ok();
        let error = ClientError::Status { downstream, status, problem };
        if status.is_server_error() { Attempt::Failed(error) } else { Attempt::Rejected(error) }
    }
}

/// The metric label: the status code, or `error` when no response arrived.
fn status_label(outcome: &Attempt) -> String {
    match outcome {
        Attempt::Success { status, .. }
        | Attempt::Rejected(ClientError::Status { status, .. })
        | Attempt::Failed(ClientError::Status { status, .. }) => status.as_str().to_owned(),
        Attempt::Rejected(_) | Attempt::Failed(_) => "error".to_owned(),
    }
}

/// Query strings may carry personal data; spans get the URL without them.
fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_the_first_delay_and_stay_below_ten_seconds() {
        let backoff = retry_backoff(Duration::from_millis(100));
        assert_eq!((backoff.initial(), backoff.max()), (Duration::from_millis(100), MAX_BACKOFF));
        assert_eq!(retry_backoff(Duration::ZERO).initial(), Duration::from_millis(1));
        assert_eq!(retry_backoff(Duration::from_secs(60)).initial(), MAX_BACKOFF);
        for _ in 0..50 {
            assert!(backoff.delay_after(40) < MAX_BACKOFF);
        }
    }

    fn load(pairs: &[(&str, &str)]) -> Result<ClientConfig, crate::config::ConfigError> {
        crate::config::Env::from_pairs(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
            .load(|env| ClientConfig::from_env(env, "billing", "BILLING"))
    }

    #[test]
    fn reads_a_downstream_from_prefixed_variables() {
        let config = load(&[("BILLING_URL", "http://billing:8080"), ("BILLING_BREAKER_OPEN_FOR", "30s")]).unwrap();
        assert_eq!((config.downstream, config.base_url.as_str()), ("billing", "http://billing:8080/"));
        assert_eq!((config.timeout, config.open_for), (Duration::from_secs(2), Duration::from_secs(30)));
        assert_eq!(config.cache_ttl, None);

        let report = load(&[
            ("BILLING_URL", "ftp://billing"),
            ("BILLING_TIMEOUT", "0s"),
            ("BILLING_BREAKER_FAILURE_THRESHOLD", "0"),
        ])
        .unwrap_err()
        .to_string();
        for variable in ["BILLING_URL", "BILLING_TIMEOUT", "BILLING_BREAKER_FAILURE_THRESHOLD"] {
            assert!(report.contains(variable), "{variable} not named in: {report}");
        }
        assert!(load(&[]).unwrap_err().to_string().contains("BILLING_URL"));
    }

    #[test]
    fn rejects_unusable_configuration() {
        let url = Url::parse("http://127.0.0.1:1").unwrap();
        let mut config = ClientConfig::new("config-test", url);
        config.failure_threshold = 0;
        assert!(matches!(ServiceClient::new(config), Err(ClientError::Config(_))));
        let config = ClientConfig::new("config-test", Url::parse("mailto:ops@example.com").unwrap());
        assert!(matches!(ServiceClient::new(config), Err(ClientError::Config(_))));
    }

    #[test]
    fn paths_are_appended_to_the_base_prefix() {
        let client =
            ServiceClient::new(ClientConfig::new("path-test", Url::parse("http://svc:8080/api/").unwrap())).unwrap();
        assert_eq!(client.url("/v1/users/7?x=1").unwrap().as_str(), "http://svc:8080/api/v1/users/7?x=1");
        assert!(matches!(client.url("v1/users"), Err(ClientError::InvalidRequest { .. })));
    }
}
