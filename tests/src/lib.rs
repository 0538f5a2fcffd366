//! End-to-end harness: start Taskwatch's real service binaries against real dependencies.
//!
//! The binaries come from the workspace's `target/` directory (`cargo test --workspace` and `cargo xtask test`
//! build them first); a missing binary is reported with the command that builds it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use testkit::process::ChildGuard;

/// Long enough for a debug build on two busy cores; conditions usually hold within a second.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A JWT secret long enough for HS256 (≥ 32 bytes); tests mint tokens with it through the binary itself.
pub const JWT_SECRET: &str = "e2e-secret-that-is-at-least-32-bytes-long";

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("service binary {0} not found; build it with `cargo build --workspace --bins`")]
    MissingBinary(PathBuf),
    #[error("no free TCP port on 127.0.0.1: {0}")]
    NoPort(#[source] std::io::Error),
    #[error(transparent)]
    Testkit(#[from] testkit::Error),
    #[error("{service} did not become ready within {DEADLINE:?}; last output:\n{output}")]
    NotReady { service: String, output: String },
}

/// Path of a workspace binary built for the current profile.
pub fn binary(name: &str) -> Result<PathBuf, HarnessError> {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let path = target_dir.join(profile).join(name);
    if path.is_file() { Ok(path) } else { Err(HarnessError::MissingBinary(path)) }
}

/// A port that was free a moment ago. Services take their port from the environment, so the test must choose it.
pub fn free_port() -> Result<u16, HarnessError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(HarnessError::NoPort)?;
    Ok(listener.local_addr().map_err(HarnessError::NoPort)?.port())
}

/// The backend's environment for a test: its database, a loopback port, and no rate limiting.
pub fn backend_command(database_url: &str, port: u16) -> Result<Command, HarnessError> {
    let mut command = Command::new(binary("backend")?);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("AUTH_JWT_SECRET", JWT_SECRET)
        .env("BIND_ADDR", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("RATE_LIMIT_ENABLED", "false")
        .env("RUST_LOG", "info");
    Ok(command)
}

/// A service credential for `/internal/v1` (≥ 32 bytes), shared by the backend and the services calling it.
pub const INTERNAL_SERVICE_TOKEN: &str = "e2e-internal-service-token-at-least-32-bytes";

/// [`backend_command`] with its outbox relay publishing to the Kafka broker at `kafka_brokers` and the
/// internal API open to [`INTERNAL_SERVICE_TOKEN`].
pub fn backend_with_kafka_command(database_url: &str, port: u16, kafka_brokers: &str) -> Result<Command, HarnessError> {
    let mut command = backend_command(database_url, port)?;
    command.env("KAFKA_BROKERS", kafka_brokers).env("INTERNAL_SERVICE_TOKEN", INTERNAL_SERVICE_TOKEN);
    Ok(command)
}

/// The recurring-task service's environment for a test: its broker, the backend it calls, a loopback probe
/// port. Kafka settings the test needs to control (group id, commit interval) are left to the caller.
pub fn recurring_task_command(kafka_brokers: &str, backend_url: &str, port: u16) -> Result<Command, HarnessError> {
    let mut command = Command::new(binary("recurring-task")?);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KAFKA_BROKERS", kafka_brokers)
        .env("BACKEND_URL", backend_url)
        .env("INTERNAL_SERVICE_TOKEN", INTERNAL_SERVICE_TOKEN)
        .env("BIND_ADDR", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("RUST_LOG", "info");
    Ok(command)
}

/// Waits until `GET {base_url}{path}` answers 200, reporting the process's output when it never does.
pub async fn wait_until_ok(process: &ChildGuard, base_url: &str, path: &str) -> Result<(), HarnessError> {
    let client = reqwest::Client::new();
    let url = format!("{base_url}{path}");
    let ok = testkit::wait::until(DEADLINE, || {
        let request = client.get(&url).send();
        async move { matches!(request.await, Ok(response) if response.status() == 200) }
    })
    .await;
    ok.map_err(|_| HarnessError::NotReady {
        service: process.name().to_owned(),
        output: [process.stdout_lines(), process.stderr_lines()].concat().join("\n"),
    })
}

/// The samples of `metric` in a Prometheus text exposition whose label set contains every `label="value"`
/// pair in `labels`, as their values.
pub fn metric_samples(exposition: &str, metric: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(metric)?;
            let (label_set, value) = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once('}')?,
                None if rest.starts_with(' ') => ("", rest),
                None => return None,
            };
            let matches = labels.iter().all(|(name, expected)| label_set.contains(&format!("{name}=\"{expected}\"")));
            let value = value.split_whitespace().next()?.parse().ok()?;
            matches.then_some(value)
        })
        .collect()
}

/// A running backend binary, killed when dropped.
#[derive(Debug)]
pub struct RunningBackend {
    pub process: ChildGuard,
    pub base_url: String,
}

impl RunningBackend {
    /// Starts the backend on a free port and waits until `/health/ready` answers 200.
    pub async fn start(database_url: &str) -> Result<Self, HarnessError> {
        let port = free_port()?;
        let process = ChildGuard::spawn("backend", backend_command(database_url, port)?)?;
        let backend = Self { process, base_url: format!("http://127.0.0.1:{port}") };
        backend.wait_until_ready().await?;
        Ok(backend)
    }

    /// Starts the backend with its outbox relay publishing to `kafka_brokers` (see
    /// [`backend_with_kafka_command`]) and waits until it is ready.
    pub async fn start_with_kafka(database_url: &str, kafka_brokers: &str) -> Result<Self, HarnessError> {
        let port = free_port()?;
        let command = backend_with_kafka_command(database_url, port, kafka_brokers)?;
        let process = ChildGuard::spawn("backend", command)?;
        let backend = Self { process, base_url: format!("http://127.0.0.1:{port}") };
        backend.wait_until_ready().await?;
        Ok(backend)
    }

    async fn wait_until_ready(&self) -> Result<(), HarnessError> {
        wait_until_ok(&self.process, &self.base_url, "/health/ready").await
    }

    /// A bearer token for `subject`, minted by the backend binary's own `token` command.
    pub fn token(&self, subject: &str) -> Result<String, HarnessError> {
        mint_token(subject)
    }
}

/// Runs `backend token --sub SUBJECT` and returns what it printed.
pub fn mint_token(subject: &str) -> Result<String, HarnessError> {
    let output = Command::new(binary("backend")?)
        .env_clear()
        .env("AUTH_JWT_SECRET", JWT_SECRET)
        .args(["token", "--sub", subject])
        .output()
        .map_err(|source| testkit::Error::Spawn { command: "backend token".into(), source })?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A running recurring-task binary, killed when dropped.
#[derive(Debug)]
pub struct RunningRecurringTask {
    pub process: ChildGuard,
    /// Where its probes and `/metrics` are served.
    pub base_url: String,
}

impl RunningRecurringTask {
    /// Starts recurring-task (see [`recurring_task_command`]) with `extra_env` on top, and waits until
    /// `/health/startup` answers 200: its topics exist and it consumes.
    pub async fn start(
        kafka_brokers: &str,
        backend_url: &str,
        extra_env: &[(&str, &str)],
    ) -> Result<Self, HarnessError> {
        let port = free_port()?;
        let mut command = recurring_task_command(kafka_brokers, backend_url, port)?;
        command.envs(extra_env.iter().copied());
        let process = ChildGuard::spawn("recurring-task", command)?;
        let service = Self { process, base_url: format!("http://127.0.0.1:{port}") };
        wait_until_ok(&service.process, &service.base_url, "/health/startup").await?;
        Ok(service)
    }

    /// Its current `/metrics` exposition; `None` while it does not answer.
    pub async fn metrics(&self) -> Option<String> {
        let response = reqwest::get(format!("{}/metrics", self.base_url)).await.ok()?;
        if response.status() != 200 {
            return None;
        }
        response.text().await.ok()
    }
}
