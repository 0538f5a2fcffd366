//! The backend as an operator runs it: the real binary, its environment, its signals and its log stream.

use std::process::Command;

use e2e::{DEADLINE, RunningBackend, backend_command, binary, free_port};
use serde_json::{Value, json};
use testkit::postgres::TestDatabase;
use testkit::process::ChildGuard;

/// sysexits EX_CONFIG: what the backend exits with when its environment is wrong.
const EXIT_CONFIG: i32 = 78;

#[tokio::test]
async fn bad_configuration_names_every_offending_variable_and_exits_non_zero() {
    let mut command = Command::new(binary("backend").expect("backend binary"));
    command.env_clear().env("PORT", "eighty").env("AUTH_JWT_SECRET", "too-short").env("HTTP_REQUEST_TIMEOUT", "soon");
    let mut backend = ChildGuard::spawn("backend", command).expect("spawn backend");

    let status = backend.wait_for_exit(DEADLINE).await.expect("wait").expect("backend exits on bad config");

    assert_eq!(status.code(), Some(EXIT_CONFIG));
    let stderr = backend.stderr_lines().join("\n");
    for variable in ["DATABASE_URL", "PORT", "AUTH_JWT_SECRET", "HTTP_REQUEST_TIMEOUT"] {
        assert!(stderr.contains(variable), "stderr does not name {variable}:\n{stderr}");
    }
    assert!(!stderr.contains("too-short"), "a secret's value leaked into the error:\n{stderr}");
}

#[tokio::test]
async fn serves_a_dev_token_then_drains_on_sigterm_with_json_logs_only() {
    let db = TestDatabase::new().await.expect("test database");
    let mut backend = RunningBackend::start(db.url()).await.expect("backend starts");
    let token = backend.token("alice").expect("dev token");

    let created = reqwest::Client::new()
        .post(format!("{}/v1/tasks", backend.base_url))
        .bearer_auth(&token)
        .json(&json!({ "title": "Renew passport", "due_at": "2030-01-15T09:00:00Z", "time_zone": "Europe/Berlin" }))
        .send()
        .await
        .expect("create request");
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap_or_default());

    let status = backend.process.terminate(DEADLINE).await.expect("terminate");
    assert!(status.success(), "backend did not exit cleanly on SIGTERM: {status}");

    let lines = backend.process.stdout_lines();
    assert!(!lines.is_empty(), "the backend logged nothing");
    for line in &lines {
        let record: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        for field in ["timestamp", "level", "message", "service", "target"] {
            assert!(record.get(field).is_some(), "log line lacks `{field}`: {line}");
        }
        assert_eq!(record["service"], "backend", "{line}");
        assert!(!line.contains(&token), "the bearer token reached the log: {line}");
    }
    assert!(lines.iter().any(|line| line.contains("backend stopped")), "no shutdown line in:\n{}", lines.join("\n"));
}

#[tokio::test]
async fn replicas_starting_together_migrate_once_and_both_serve() {
    let db = TestDatabase::new().await.expect("test database");
    let spawn = || {
        let port = free_port().expect("port");
        let process = ChildGuard::spawn("backend", backend_command(db.url(), port).expect("command")).expect("spawn");
        (process, format!("http://127.0.0.1:{port}"))
    };
    let replicas = [spawn(), spawn()];

    let client = reqwest::Client::new();
    for (process, base_url) in &replicas {
        let url = format!("{base_url}/health/ready");
        let ready = testkit::wait::until(DEADLINE, || {
            let request = client.get(&url).send();
            async move { matches!(request.await, Ok(response) if response.status() == 200) }
        })
        .await;
        assert!(
            ready.is_ok(),
            "a replica never became ready:\n{}",
            [process.stdout_lines(), process.stderr_lines()].concat().join("\n")
        );
    }
}
