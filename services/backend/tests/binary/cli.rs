//! The binary's command line: configuration errors, the token command.

use std::time::Duration;

use testkit::process::ChildGuard;

use crate::spawned::{JWT_SECRET, backend_command};

#[tokio::test]
async fn bad_configuration_exits_non_zero_naming_every_variable() {
    let mut command = backend_command();
    command
        .env("PORT", "eighty")
        .env("AUTH_JWT_SECRET", "too-short")
        .env("HTTP_REQUEST_TIMEOUT", "soon")
        .env("RATE_LIMIT_USER_BURST", "0");
    let mut process = ChildGuard::spawn("backend", command).expect("spawn");
    let status = process.wait_for_exit(Duration::from_secs(30)).await.expect("wait").expect("exits by itself");
    assert_eq!(status.code(), Some(78), "EX_CONFIG");
    let stderr = process.stderr_lines().join("\n");
    for name in ["DATABASE_URL", "PORT", "AUTH_JWT_SECRET", "HTTP_REQUEST_TIMEOUT", "RATE_LIMIT_USER_BURST"] {
        assert!(stderr.contains(name), "{name} not named in:\n{stderr}");
    }
    assert!(!stderr.contains("too-short"), "the secret's value is not echoed");
}

#[tokio::test]
async fn token_command_mints_a_token_the_api_accepts() {
    let mut command = backend_command();
    command.env("AUTH_JWT_SECRET", JWT_SECRET).args(["token", "--sub", "alice", "--ttl", "1h"]);
    let mut process = ChildGuard::spawn("backend token", command).expect("spawn");
    let status = process.wait_for_exit(Duration::from_secs(30)).await.expect("wait").expect("exits");
    assert!(status.success());
    let lines = process.stdout_lines();
    assert_eq!(lines.len(), 1, "only the token on stdout: {lines:?}");
    let verifier = backend::auth::TokenVerifier::new(&backend::config::AuthConfig {
        jwt_secret: observability::config::Secret::new(JWT_SECRET),
        issuer: None,
        audience: None,
    });
    assert_eq!(verifier.verify(&lines[0]).map(|owner| owner.as_str().to_owned()), Ok("alice".to_owned()));

    let mut missing = backend_command();
    missing.args(["token", "--sub", "alice"]);
    let mut process = ChildGuard::spawn("backend token", missing).expect("spawn");
    let status = process.wait_for_exit(Duration::from_secs(30)).await.expect("wait").expect("exits");
    assert_eq!(status.code(), Some(78));
    assert!(process.stderr_lines().join("\n").contains("AUTH_JWT_SECRET"));
}
