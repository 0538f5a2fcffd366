//! Spawning the backend binary against a fresh database and finding it on its port.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use testkit::postgres::TestDatabase;
use testkit::process::ChildGuard;

pub const JWT_SECRET: &str = "binary-test-secret-binary-test-secret-42";
pub const STARTUP: Duration = Duration::from_secs(60);

pub fn backend_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_backend"));
    // Only what the test sets: the developer's environment must not leak in.
    command.env_clear();
    command
}

/// A running backend process.
pub struct Backend {
    pub process: ChildGuard,
    pub base_url: String,
    pub db: TestDatabase,
}

impl Backend {
    /// Starts the binary on 127.0.0.1 with an OS-assigned port and waits until it listens and has started.
    pub async fn start(extra_env: &[(&str, &str)]) -> Self {
        let db = TestDatabase::new().await.expect("database");
        let mut command = backend_command();
        command
            .env("DATABASE_URL", db.url())
            .env("AUTH_JWT_SECRET", JWT_SECRET)
            .env("BIND_ADDR", "127.0.0.1")
            .env("PORT", "0")
            .env("RATE_LIMIT_ENABLED", "false");
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let process = ChildGuard::spawn("backend", command).expect("spawn backend");
        let line = process
            .wait_for_line(|line| line.contains("\"listening\""), STARTUP)
            .await
            .expect("the backend logs that it is listening");
        let address = serde_json::from_str::<Value>(&line).expect("JSON log line")["address"]
            .as_str()
            .expect("address field")
            .to_owned();
        // The API answers 503 until the start-up steps (migrations) are done.
        process
            .wait_for_line(|line| line.contains("\"started\""), STARTUP)
            .await
            .expect("the backend logs that it started");
        Self { process, base_url: format!("http://{address}"), db }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Every stdout line parsed as JSON (all of them must be).
    pub fn log_lines(&self) -> Vec<Value> {
        self.process
            .stdout_lines()
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("log line is not JSON: {line}")))
            .collect()
    }

    /// Everything the process wrote, stdout and stderr.
    pub fn all_output(&self) -> String {
        let mut output = self.process.stdout_lines().join("\n");
        output.push('\n');
        output.push_str(&self.process.stderr_lines().join("\n"));
        output
    }
}

pub fn token(subject: &str) -> String {
    let config = backend::config::AuthConfig {
        jwt_secret: observability::config::Secret::new(JWT_SECRET),
        issuer: None,
        audience: None,
    };
    backend::auth::mint(&config, subject, Duration::from_secs(600)).expect("token")
}
