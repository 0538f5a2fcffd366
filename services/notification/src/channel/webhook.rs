//! Webhooks: one signed `POST` of the reminder event to the owner's URL.
//!
//! Request: `Content-Type: application/json`, the body is the `reminder.due.v1` CloudEvent; `Webhook-Id` (the
//! event id, stable across retries), `Webhook-Timestamp` (unix seconds) and `Webhook-Signature` (see
//! [`super::signature`]). Any 2xx answer is a delivery; redirects are not followed (a 3xx is a refusal), and the
//! destination must pass the [SSRF guard](super::guard).

use std::sync::Arc;
use std::time::Duration;

use http::header::CONTENT_TYPE;
use reqwest::redirect;
use url::Url;
use uuid::Uuid;

use super::guard::{GuardedResolver, RefusedDestination, TargetPolicy, check_literal_host};
use super::signature::{ID_HEADER, SIGNATURE_HEADER, SigningKey, TIMESTAMP_HEADER};
use observability::error_chain;

use super::{Channel, FailureKind, SendFailure};
use crate::breaker::Destination;
use crate::config::WebhookConfig;

/// The dependency name of webhook targets in the fault switch (`"outages": ["webhook"]`).
pub const FAULT_NAME: &str = "webhook";

/// Sends signed webhook calls.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    key: SigningKey,
    policy: TargetPolicy,
    timeout: Duration,
}

/// The HTTP client could not be built (e.g. no TLS backend).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client: {0}")]
pub struct WebhookSetupError(String);

impl WebhookSender {
    /// Builds the guarded HTTP client (no redirects, no proxy, [`GuardedResolver`], the configured timeout) and
    /// registers the `webhook` fault switch.
    pub fn new(config: &WebhookConfig) -> Result<Self, WebhookSetupError> {
        let client = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            // A proxy would dial the destination itself, out of the resolver's reach.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(config.targets)))
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            .user_agent(concat!("taskwatch-notification/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| WebhookSetupError(error_chain(&error)))?;
        observability::faults::register_dependency(FAULT_NAME);
        Ok(Self {
            client,
            key: SigningKey::new(config.signing_secret.clone()),
            policy: config.targets,
            timeout: config.timeout,
        })
    }

    /// The breaker key of `url`: its host and port (paths on one host share its fate).
    pub fn destination(url: &Url) -> Destination {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or_default();
        Destination { channel: Channel::Webhook, key: format!("{host}:{port}") }
    }

    /// One signed `POST` of `body` (the event's JSON) to `url`.
    pub async fn send(&self, url: &Url, event_id: Uuid, body: Vec<u8>) -> Result<(), SendFailure> {
        if observability::faults::is_down(FAULT_NAME) {
            // Demo fault: every webhook target "refuses" connections — a transient failure, retried as usual.
            return Err(SendFailure::new(
                FailureKind::Unavailable,
                "webhook unreachable: connection refused (injected fault)",
            ));
        }
        check_literal_host(url, self.policy)
            .map_err(|refused| SendFailure::new(FailureKind::Permanent, refused.to_string()))?;
        let timestamp = chrono::Utc::now().timestamp();
        let signature = self.key.sign(timestamp, &body);
        let request = self
            .client
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ID_HEADER, event_id.to_string())
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body);
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return Err(self.transport_failure(&error)),
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let kind = if status.is_server_error()
            || status == http::StatusCode::TOO_MANY_REQUESTS
            || status == http::StatusCode::REQUEST_TIMEOUT
        {
            FailureKind::Unavailable
        } else {
            FailureKind::Refused
        };
        Err(SendFailure::new(kind, format!("webhook answered {status}")))
    }

    fn transport_failure(&self, error: &reqwest::Error) -> SendFailure {
        if refused_by_guard(error) {
            return SendFailure::new(FailureKind::Permanent, error_chain(error));
        }
        if error.is_timeout() {
            return SendFailure::new(
                FailureKind::Unavailable,
                format!("webhook did not answer within {:?}", self.timeout),
            );
        }
        SendFailure::new(FailureKind::Unavailable, format!("webhook unreachable: {}", error_chain(error)))
    }
}

/// Whether the resolver refused the destination (somewhere in the error's source chain).
fn refused_by_guard(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.downcast_ref::<RefusedDestination>().is_some() {
            return true;
        }
        current = error.source();
    }
    false
}
