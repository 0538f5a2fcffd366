//! Turns the ways a request can go wrong outside its handler's control into problem+json responses.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::FutureExt as _;
use http_body_util::Limited;

use crate::problem::{PROBLEM_JSON, Problem};

/// A handler that panicked: the exception its 500 records.
#[derive(Debug, thiserror::Error)]
#[error("request handler panicked: {0}")]
struct HandlerPanicked(String);

/// A handler that ran past the deadline: the exception its 504 records.
#[derive(Debug, thiserror::Error)]
#[error("the request did not complete within {timeout_ms} ms")]
struct RequestTimedOut {
    timeout_ms: u64,
}

/// A panicking handler answers 500 instead of dropping the connection; the panic is logged.
pub(super) async fn catch_panic(response: impl Future<Output = Response>) -> Response {
    AssertUnwindSafe(response).catch_unwind().await.unwrap_or_else(panic_response)
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|message| (*message).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    tracing::error!(panic = %message, "request handler panicked");
    crate::record_exception(&tracing::Span::current(), &HandlerPanicked(message));
    Problem::internal().into_response()
}

/// Cancels a handler that runs past the deadline and answers 504.
pub(super) async fn enforce_timeout(timeout: Duration, response: impl Future<Output = Response>) -> Response {
    match tokio::time::timeout(timeout, response).await {
        Ok(response) => response,
        Err(_) => {
            let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
            tracing::warn!(timeout_ms, "request timed out");
            crate::record_exception(&tracing::Span::current(), &RequestTimedOut { timeout_ms });
            Problem::new(StatusCode::GATEWAY_TIMEOUT)
                .with_detail(format!("The request did not complete within {timeout_ms} ms."))
                .into_response()
        }
    }
}

/// Rejects bodies over `limit` bytes: up front when `Content-Length` says so, otherwise while the
/// handler reads the (streamed) body. Any plain-text 413 from an extractor becomes problem+json.
pub(super) async fn limit_body<F>(limit: usize, request: Request, next: impl FnOnce(Request) -> F) -> Response
where
    F: Future<Output = Response>,
{
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return too_large(limit);
    }
    let request = request.map(|body| Body::new(Limited::new(body, limit)));
    let response = next(request).await;
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|content_type| content_type.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_problem {
        return too_large(limit);
    }
    response
}

fn too_large(limit: usize) -> Response {
    Problem::payload_too_large(format!("The request body exceeds the limit of {limit} bytes.")).into_response()
}
