//! The user-facing API as one user sees it: the calls the end-to-end tests make, asserting their status.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{HarnessError, mint_token};

/// A W3C `traceparent` the test chooses, so spans of the whole pipeline can be found by its trace id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits: the caller's (the test's) span.
    pub parent_span_id: String,
}

impl TraceParent {
    /// The header value, sampled.
    pub fn header(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.parent_span_id)
    }
}

/// One user's view of the backend's `/v1` API.
#[derive(Debug, Clone)]
pub struct Api {
    client: reqwest::Client,
    base_url: String,
    token: String,
}

/// A call the API answered with an unexpected status, or not at all.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Sending the request or reading the response body failed (connection refused, reset, timed out).
    #[error("{method} {path}: {source}")]
    Transport {
        /// The request's HTTP method.
        method: Method,
        /// The path below the base URL, with its query string.
        path: String,
        /// The client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The API answered, but with another status than the call expects.
    #[error("{method} {path} answered {status}: {body}")]
    Status {
        /// The request's HTTP method.
        method: Method,
        /// The path below the base URL, with its query string.
        path: String,
        /// The status code received.
        status: u16,
        /// The response body as text, usually the problem details explaining the status.
        body: String,
    },
}

impl Api {
    /// `user`'s client, with a token minted by the backend binary.
    pub fn for_user(base_url: &str, user: &str) -> Result<Self, HarnessError> {
        Ok(Self { client: reqwest::Client::new(), base_url: base_url.to_owned(), token: mint_token(user)? })
    }

    /// `POST /v1/tasks`, expecting 201; returns the created task.
    pub async fn create_task(&self, body: &Value) -> Result<Value, ApiError> {
        self.call(Method::POST, "/v1/tasks", Some(body), &[], 201).await
    }

    /// [`Api::create_task`] with the caller's trace context, as an instrumented client would send it.
    pub async fn create_task_traced(&self, body: &Value, trace: &TraceParent) -> Result<Value, ApiError> {
        self.call(Method::POST, "/v1/tasks", Some(body), &[("traceparent", trace.header())], 201).await
    }

    /// `POST /v1/tasks/{id}/complete`, expecting 200.
    pub async fn complete(&self, task_id: &str) -> Result<Value, ApiError> {
        self.call(Method::POST, &format!("/v1/tasks/{task_id}/complete"), None, &[], 200).await
    }

    /// `PATCH /v1/tasks/{id}` with `If-Match` for `version`, expecting 200; returns the updated task.
    pub async fn update(&self, task_id: &str, version: i64, patch: &Value) -> Result<Value, ApiError> {
        let if_match = [("if-match", format!("\"{version}\""))];
        self.call(Method::PATCH, &format!("/v1/tasks/{task_id}"), Some(patch), &if_match, 200).await
    }

    /// `POST /v1/tasks/{id}/reopen`, expecting 200.
    pub async fn reopen(&self, task_id: &str) -> Result<Value, ApiError> {
        self.call(Method::POST, &format!("/v1/tasks/{task_id}/reopen"), None, &[], 200).await
    }

    /// `DELETE /v1/tasks/{id}`, expecting 204.
    pub async fn delete(&self, task_id: &str) -> Result<Value, ApiError> {
        self.call(Method::DELETE, &format!("/v1/tasks/{task_id}"), None, &[], 204).await
    }

    /// The bearer token this client sends.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// `PUT /v1/me/notification-settings`, expecting 200.
    pub async fn save_notification_settings(
        &self,
        email: Option<&str>,
        webhook_url: Option<&str>,
    ) -> Result<Value, ApiError> {
        let body = json!({ "email": email, "webhook_url": webhook_url });
        self.call(Method::PUT, "/v1/me/notification-settings", Some(&body), &[], 200).await
    }

    /// `GET /v1/tasks/{id}`, expecting 200.
    pub async fn task(&self, task_id: &str) -> Result<Value, ApiError> {
        self.call(Method::GET, &format!("/v1/tasks/{task_id}"), None, &[], 200).await
    }

    /// `GET /v1/tasks/{id}/history`, expecting 200: the task's recorded changes, oldest first.
    pub async fn history(&self, task_id: &str) -> Result<Value, ApiError> {
        self.call(Method::GET, &format!("/v1/tasks/{task_id}/history"), None, &[], 200).await
    }

    /// Every task of the user with `status` (`open` or `completed`), following the cursor.
    pub async fn tasks_with_status(&self, status: &str) -> Result<Vec<Value>, ApiError> {
        let mut tasks = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/tasks?status={status}&limit=100");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page = self.call(Method::GET, &path, None, &[], 200).await?;
            tasks.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(tasks),
            }
        }
    }

    /// The user's open tasks labelled `label` (the first page, up to 100).
    pub async fn open_tasks_labelled(&self, label: &str) -> Result<Vec<Value>, ApiError> {
        let page =
            self.call(Method::GET, &format!("/v1/tasks?status=open&label={label}&limit=100"), None, &[], 200).await?;
        Ok(page["items"].as_array().cloned().unwrap_or_default())
    }

    /// Open tasks of `series_id`.
    pub async fn open_tasks_in_series(&self, series_id: &str) -> Result<Vec<Value>, ApiError> {
        let open = self.tasks_with_status("open").await?;
        Ok(open.into_iter().filter(|task| task["series_id"] == series_id).collect())
    }

    /// Waits until `series_id` has at least one open task and returns them all; `None` at the deadline.
    pub async fn wait_for_open_in_series(&self, series_id: &str, timeout: std::time::Duration) -> Option<Vec<Value>> {
        testkit::wait::until_some(timeout, || async {
            self.open_tasks_in_series(series_id).await.ok().filter(|tasks| !tasks.is_empty())
        })
        .await
        .ok()
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
        expected: u16,
    ) -> Result<Value, ApiError> {
        let url = format!("{}{path}", self.base_url);
        let mut request = self.client.request(method.clone(), url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let transport = |source| ApiError::Transport { method: method.clone(), path: path.to_owned(), source };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(transport)?;
        if status != expected {
            return Err(ApiError::Status { method, path: path.to_owned(), status, body: text });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}
