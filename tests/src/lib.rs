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

    async fn wait_until_ready(&self) -> Result<(), HarnessError> {
        let client = reqwest::Client::new();
        let url = format!("{}/health/ready", self.base_url);
        let ready = testkit::wait::until(DEADLINE, || {
            let request = client.get(&url).send();
            async move { matches!(request.await, Ok(response) if response.status() == 200) }
        })
        .await;
        ready.map_err(|_| HarnessError::NotReady {
            service: self.process.name().to_owned(),
            output: [self.process.stdout_lines(), self.process.stderr_lines()].concat().join("\n"),
        })
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
