//! The backend's internal API, as far as this service uses it: a user's notification settings.

use http::{HeaderMap, StatusCode};
use observability::service_token::bearer_headers;
use observability::{ClientError, Secret, ServiceClient};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

/// Where a user wants reminders (`GET /internal/v1/users/{user_id}/notification-settings`); either may be
/// unset. Other fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NotificationSettings {
    /// The address for reminder mail; `None` (or blank) means no e-mail channel.
    pub email: Option<String>,
    /// The URL reminders are posted to; `None` (or blank) means no webhook channel.
    pub webhook_url: Option<String>,
}

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The backend is down, slow, its circuit is open (and nothing fresh was cached), or it refuses our
    /// credential: keep the event and try again later.
    #[error("backend unavailable: {0}")]
    Unavailable(#[source] ClientError),
    /// The backend says this request can never succeed (e.g. the owner id is not a valid user id).
    #[error("backend refused the settings request: {0}")]
    Rejected(#[source] ClientError),
}

impl SettingsError {
    /// Whether the event should be kept and retried later (the backend may recover) rather than dead-lettered.
    pub fn is_transient(&self) -> bool {
        matches!(self, SettingsError::Unavailable(_))
    }
}

/// The circuit-broken client for the settings lookup. The client's fallback cache serves a user's last answer
/// (younger than its TTL) while the backend fails or its circuit is open.
#[derive(Debug, Clone)]
pub struct SettingsClient {
    client: ServiceClient,
    service_token: Secret,
}

impl SettingsClient {
    /// Calls the backend through `client`, authenticated as `Bearer <service_token>` (`INTERNAL_SERVICE_TOKEN`).
    pub fn new(client: ServiceClient, service_token: Secret) -> Self {
        Self { client, service_token }
    }

    /// The underlying client, e.g. for its breaker state or health detail.
    pub fn service_client(&self) -> &ServiceClient {
        &self.client
    }

    /// `user_id`'s settings, from the backend or, while it fails, the fallback cache. Errors with
    /// [`SettingsError::Rejected`] for an id that cannot be a user id, without calling the backend.
    pub async fn get(&self, user_id: &str) -> Result<NotificationSettings, SettingsError> {
        // URL parsing resolves dot segments even percent-encoded; no real user id is one.
        if matches!(user_id, "" | "." | "..") {
            let message = format!("`{user_id}` is not a user id");
            return Err(SettingsError::Rejected(ClientError::InvalidRequest { downstream: "backend", message }));
        }
        let path = format!("/internal/v1/users/{}/notification-settings", encode_path_segment(user_id));
        self.client.get_json(&path, self.headers()?).await.map_err(classify)
    }

    fn headers(&self) -> Result<HeaderMap, SettingsError> {
        bearer_headers(&self.service_token).map_err(SettingsError::Unavailable)
    }
}

fn classify(error: ClientError) -> SettingsError {
    match &error {
        _ if error.is_downstream_failure() => SettingsError::Unavailable(error),
        // A wrong credential or rate limiting is a deployment state, not a property of the event: wait it out
        // rather than dead-letter every reminder meanwhile.
        ClientError::Status { status, .. }
            if matches!(*status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS) =>
        {
            SettingsError::Unavailable(error)
        }
        _ => SettingsError::Rejected(error),
    }
}

/// Everything but RFC 3986's unreserved characters (`ALPHA / DIGIT / "-" / "." / "_" / "~"`).
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes everything but RFC 3986 unreserved characters, so an owner id cannot change the path.
fn encode_path_segment(segment: &str) -> String {
    utf8_percent_encode(segment, NOT_UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_ids_cannot_escape_their_path_segment() {
        assert_eq!(encode_path_segment("alice"), "alice");
        assert_eq!(encode_path_segment("auth0|42"), "auth0%7C42");
        assert_eq!(encode_path_segment("../../admin?x=1"), "..%2F..%2Fadmin%3Fx%3D1");
        assert_eq!(encode_path_segment("zoë"), "zo%C3%AB");
    }
}
