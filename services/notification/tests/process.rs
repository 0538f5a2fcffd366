//! The binary's contract with its operator: a bad configuration stops it with exit code 78 and one report
//! naming every bad or missing variable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn a_bad_configuration_exits_78_naming_every_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_notification"))
        .env_clear()
        .env("SMTP_TLS", "ssl")
        .env("WEBHOOK_SIGNING_SECRET", "short")
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(78));
    let report = String::from_utf8_lossy(&output.stderr);
    for name in [
        "DATABASE_URL",
        "KAFKA_BROKERS",
        "BACKEND_URL",
        "INTERNAL_SERVICE_TOKEN",
        "SMTP_HOST",
        "SMTP_TLS",
        "SMTP_FROM",
        "WEBHOOK_SIGNING_SECRET",
    ] {
        assert!(report.contains(name), "{name} missing from: {report}");
    }
    assert!(!report.contains("short"), "a secret was echoed: {report}");
}
