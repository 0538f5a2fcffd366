//! The audit-log service's internal API, read through the shared circuit-broken client: the history of a task,
//! which `GET /v1/tasks/{id}/history` serves. The backend keeps no history itself; audit-log records every
//! change from `task-events`.

use observability::service_token::bearer_headers;
use observability::{ClientConfig, ClientError, Secret, ServiceClient};
use serde::Deserialize;

use crate::api::dto::TaskHistoryEntry;
use crate::domain::{OwnerId, TaskId};

/// What the internal API answers.
#[derive(Debug, Deserialize)]
struct History {
    entries: Vec<TaskHistoryEntry>,
}

/// The client of audit-log's internal API, authenticated with the service credential.
#[derive(Debug, Clone)]
pub struct AuditLogClient {
    client: ServiceClient,
    service_token: Secret,
}

impl AuditLogClient {
    /// A client for the audit-log `config` points at, presenting `service_token` on every call.
    pub fn new(config: ClientConfig, service_token: Secret) -> Result<Self, ClientError> {
        Ok(Self { client: ServiceClient::new(config)?, service_token })
    }

    /// The underlying client, for its breaker state in readiness details.
    pub fn service_client(&self) -> &ServiceClient {
        &self.client
    }

    /// `owner`'s records of task `task`, oldest first; empty when audit-log has none (the task is another
    /// user's, or its changes have not been recorded yet).
    pub async fn history(&self, owner: &OwnerId, task: TaskId) -> Result<Vec<TaskHistoryEntry>, ClientError> {
        let owner: String = url::form_urlencoded::byte_serialize(owner.as_str().as_bytes()).collect();
        let path = format!("/internal/v1/tasks/{task}/history?owner_id={owner}");
        let history: History = self.client.get_json(&path, bearer_headers(&self.service_token)?).await?;
        Ok(history.entries)
    }
}
