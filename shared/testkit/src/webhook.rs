//! An in-test webhook receiver: an HTTP server on 127.0.0.1 that records every request and answers with a
//! status the test chooses (200 unless told otherwise), to test deliveries and their failures.
//!
//! Not `wiremock`: the tests change the answer while deliveries are retried and wait, with a deadline, for a
//! request that matches. wiremock changes answers by `reset()`, which also forgets the requests received, and
//! offers a snapshot rather than a wait, so with it this module would keep its responder and its waiting and
//! lose only the few lines that serve axum.
//!
//! ```no_run
//! # async fn demo() -> Result<(), testkit::Error> {
//! use std::time::Duration;
//! let receiver = testkit::webhook::WebhookReceiver::start().await?;
//! let url = receiver.url(); // http://127.0.0.1:PORT/hook, to store as a user's webhook
//! receiver.respond_with(503); // every request now fails…
//! receiver.respond_with(200); // …and now succeeds again
//! let call = receiver.wait_for(|call| call.header("webhook-id").is_some(), Duration::from_secs(30)).await;
//! # let _ = (url, call); Ok(()) }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use tokio::task::JoinHandle;

use crate::Error;
use crate::collected::Collected;

/// The path [`WebhookReceiver::url`] points at; any other path is recorded and answered the same way.
pub const HOOK_PATH: &str = "/hook";

/// One request as the receiver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// The HTTP method, e.g. `POST`.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header names in lower case, values as (lossy) text, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The raw body; [`ReceivedRequest::json`] parses it.
    pub body: Vec<u8>,
    /// The status the receiver answered with.
    pub answered: u16,
}

impl ReceivedRequest {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(header, _)| header.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

#[derive(Debug)]
struct Shared {
    requests: Collected<ReceivedRequest>,
    status: AtomicU16,
}

/// An HTTP server on 127.0.0.1 and a free port; runs on the current Tokio runtime and stops when dropped.
#[derive(Debug)]
pub struct WebhookReceiver {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl WebhookReceiver {
    /// Binds a free port on 127.0.0.1 and starts answering 200.
    pub async fn start() -> Result<Self, Error> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(Error::io("binding the webhook receiver to 127.0.0.1"))?;
        let address = listener.local_addr().map_err(Error::io("reading the webhook receiver's address"))?;
        let shared = Arc::new(Shared { requests: Collected::new(), status: AtomicU16::new(200) });
        let app = Router::new().fallback(record).with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("testkit: the webhook receiver stopped: {error}");
            }
        });
        Ok(Self { address, shared, server })
    }

    /// Where the receiver listens: 127.0.0.1 and a free port.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}{HOOK_PATH}", self.address)
    }

    /// Answers every following request with `status` (e.g. 500 to make deliveries fail).
    ///
    /// # Panics
    /// When `status` is not a valid HTTP status code (100–999): a bug in the test.
    pub fn respond_with(&self, status: u16) {
        assert!(StatusCode::from_u16(status).is_ok(), "{status} is not an HTTP status code");
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.requests.snapshot()
    }

    /// Waits for the first request (already received or still to come) matching `predicate`; `None` when
    /// `timeout` passes first.
    pub async fn wait_for(
        &self,
        predicate: impl Fn(&ReceivedRequest) -> bool,
        timeout: Duration,
    ) -> Option<ReceivedRequest> {
        self.shared.requests.wait_for(predicate, timeout).await
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = StatusCode::from_u16(shared.status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK);
    shared.requests.push(ReceivedRequest {
        method: method.to_string(),
        path: uri.path_and_query().map_or_else(|| uri.path().to_owned(), ToString::to_string),
        headers: headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
        answered: status.as_u16(),
    });
    status
}
