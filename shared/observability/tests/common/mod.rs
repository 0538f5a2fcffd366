//! Helpers shared by this crate's integration tests: log capture, in-memory spans, a real server.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use observability::ServiceInfo;
use observability::config::Env;
use observability::edge_sampling::EdgeIdGenerator;
use observability::http::{HttpConfig, serve};
use observability::shutdown::Shutdown;
use observability::telemetry::{TelemetrySettings, install_propagator, subscriber};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt as _;

pub const SERVICE: ServiceInfo = ServiceInfo { name: "observability-test", version: "0.0.0-test" };

/// Log output captured in memory, one JSON object per line.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

pub struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = CaptureWriter;

    fn make_writer(&'a self) -> Self::Writer {
        CaptureWriter(self.0.clone())
    }
}

impl LogCapture {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Every line parsed as JSON; panics on a line that is not a JSON object.
    pub fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| {
                let value: Value =
                    serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
                assert!(value.is_object(), "not an object: {line}");
                value
            })
            .collect()
    }

    pub fn with_message(&self, message: &str) -> Vec<Value> {
        self.lines().into_iter().filter(|line| line["message"] == message).collect()
    }
}

/// A thread-local telemetry pipeline: JSON logs into a buffer, spans into memory.
pub struct TestTelemetry {
    pub logs: LogCapture,
    pub spans: InMemorySpanExporter,
    pub provider: SdkTracerProvider,
    _guard: tracing::subscriber::DefaultGuard,
}

/// Installs telemetry for the current thread only. Use with `#[tokio::test]` (current-thread
/// runtime), so every task of the test runs under it.
pub fn test_telemetry(log_filter: &str) -> TestTelemetry {
    test_telemetry_with(log_filter, &[])
}

/// [`test_telemetry`] with more variables (`OTEL_TRACES_SAMPLER`, say). The provider samples as the settings say
/// and makes ids as a service's does, so the HTTP edge and the SDK decide alike.
pub fn test_telemetry_with(log_filter: &str, variables: &[(&str, &str)]) -> TestTelemetry {
    observability::metrics::install().unwrap();
    install_propagator();
    let pairs = std::iter::once(("RUST_LOG".to_owned(), log_filter.to_owned()))
        .chain(variables.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())));
    let settings = Env::from_pairs(pairs).load(|env| Some(TelemetrySettings::from_env(env, SERVICE))).unwrap();
    let spans = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(settings.traces.sampler.sampler())
        .with_id_generator(EdgeIdGenerator::default())
        .with_simple_exporter(spans.clone())
        .build();
    let logs = LogCapture::default();
    let guard = subscriber(&settings, &provider, logs.clone()).set_default();
    TestTelemetry { logs, spans, provider, _guard: guard }
}

/// A real server on 127.0.0.1:0 running [`serve`].
pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(router: Router, config: HttpConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let signal = shutdown.clone();
        let task = tokio::spawn(async move { serve(listener, router, signal, &config).await });
        Self { addr, shutdown, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Triggers shutdown and waits (bounded) for `serve` to return.
    pub async fn stop(self) {
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(30), self.task).await.unwrap().unwrap().unwrap();
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Polls `condition` until it holds, failing the test after a generous deadline.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A hand-driven HTTP/1.1 connection, for what a high-level client hides: chunked uploads and
/// several requests on one kept-alive connection.
pub struct RawConnection {
    stream: tokio::net::TcpStream,
    buffered: Vec<u8>,
}

/// A response read off a [`RawConnection`].
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

impl RawConnection {
    pub async fn open(addr: SocketAddr) -> Self {
        Self { stream: tokio::net::TcpStream::connect(addr).await.unwrap(), buffered: Vec::new() }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt as _;
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one response with a `Content-Length` body (what this crate's layer produces).
    pub async fn read_response(&mut self) -> RawResponse {
        use tokio::io::AsyncReadExt as _;
        let deadline = Duration::from_secs(10);
        let head_end = loop {
            if let Some(position) = self.buffered.windows(4).position(|window| window == b"\r\n\r\n") {
                break position + 4;
            }
            let mut chunk = [0u8; 4096];
            let read = tokio::time::timeout(deadline, self.stream.read(&mut chunk)).await.unwrap().unwrap();
            assert!(read > 0, "connection closed before a response arrived");
            self.buffered.extend_from_slice(&chunk[..read]);
        };
        let head = String::from_utf8(self.buffered[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case("content-length"))
            .map(|(_, value)| value.parse().unwrap())
            .expect("response without content-length");
        while self.buffered.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            let read = tokio::time::timeout(deadline, self.stream.read(&mut chunk)).await.unwrap().unwrap();
            assert!(read > 0, "connection closed mid-body");
            self.buffered.extend_from_slice(&chunk[..read]);
        }
        let body = String::from_utf8(self.buffered[head_end..head_end + length].to_vec()).unwrap();
        self.buffered.drain(..head_end + length);
        RawResponse { status, headers, body }
    }
}
