//! The OpenAPI document is the server's contract, checked by an independent tool: schemathesis (every check, every
//! phase including the stateful one that follows the document's links) against the real router on a real Postgres,
//! once with a fixed seed and once with a random one, for the user API with a user token and for the internal API
//! with the service credential. The exceptions it runs with are in `schemathesis.toml`, each with its reason.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::harness::{SERVICE_TOKEN, TestApp};

/// Examples per operation and phase: enough that every operation is reached with valid and invalid input.
const MAX_EXAMPLES: &str = "40";

/// The user whose token the user API runs with, and whose data the internal operations are pointed at.
const OWNER: &str = "schemathesis-user";

/// A recurring task of `OWNER` for the internal reads to find (see `schemathesis.toml`); its id.
async fn seed(app: &TestApp) -> String {
    let task = app
        .create_task(
            OWNER,
            json!({ "title": "Seeded", "due_at": "2030-03-01T09:00:00Z", "recurrence": { "rrule": "FREQ=DAILY" } }),
        )
        .await;
    task["id"].as_str().expect("id").to_owned()
}

/// Runs schemathesis on the operations tagged `tags` with `token`; panics with its report when it finds anything.
async fn schemathesis(app: &TestApp, seeded_task: &str, tags: &[&str], token: &str, seed: u64) {
    let st = testkit::python::program("st").unwrap_or_else(|error| panic!("{error}"));
    // Its caches (.schemathesis, .hypothesis) go to a directory of this run, never into the repository.
    let cwd = tempfile::tempdir().expect("temporary directory");
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis.toml");
    let mut command = tokio::process::Command::new(&st);
    command
        .current_dir(cwd.path())
        .env("TASKWATCH_CONTRACT_TASK_ID", seeded_task)
        .env("TASKWATCH_CONTRACT_USER_ID", OWNER)
        .args(["--config-file", config, "run", &format!("{}/openapi.json", app.base_url)])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all", "--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", &seed.to_string()])
        .args(["--workers", "1", "--no-color", "--generation-database", "none", "--continue-on-failure"]);
    for tag in tags {
        command.args(["--include-tag", tag]);
    }
    let output = command.output().await.unwrap_or_else(|error| panic!("starting {}: {error}", st.display()));
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "schemathesis {tags:?} with --seed {seed} found contract failures:\n{report}");
}

fn random_seed() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(7, |since| since.as_secs())
}

#[tokio::test]
async fn the_user_api_keeps_its_openapi_contract() {
    let app = TestApp::start().await;
    let seeded_task = seed(&app).await;
    let token = app.token(OWNER);
    for seed in [1, random_seed()] {
        schemathesis(&app, &seeded_task, &["tasks", "settings"], &token, seed).await;
    }
}

#[tokio::test]
async fn the_internal_api_keeps_its_openapi_contract() {
    let app = TestApp::start().await;
    let seeded_task = seed(&app).await;
    for seed in [1, random_seed()] {
        schemathesis(&app, &seeded_task, &["internal"], SERVICE_TOKEN, seed).await;
    }
}
