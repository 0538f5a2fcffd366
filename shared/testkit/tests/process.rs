//! `ChildGuard` against real child processes (`sh` scripts).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testkit::process::ChildGuard;
use testkit::wait::DEFAULT_TIMEOUT;

fn shell(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.arg("-c").arg(script);
    command
}

#[tokio::test]
async fn output_lines_are_captured_and_searchable() {
    let mut child = ChildGuard::spawn(
        "printer",
        shell("echo first; echo '{\"level\":\"INFO\",\"msg\":\"listening\"}'; echo oops >&2; exec sleep 60"),
    )
    .expect("spawn");
    let line =
        child.wait_for_line(|line| line.contains("listening"), DEFAULT_TIMEOUT).await.expect("the listening line");
    assert_eq!(line, r#"{"level":"INFO","msg":"listening"}"#);
    assert_eq!(child.stdout_lines()[0], "first");
    let error_line = child.wait_for_stderr_line(|line| line == "oops", DEFAULT_TIMEOUT).await;
    assert_eq!(error_line.as_deref(), Some("oops"));
    assert_eq!(child.try_exit_status().expect("status"), None);
}

#[tokio::test]
async fn waiting_for_a_line_ends_early_when_the_child_exits_without_it() {
    let child = ChildGuard::spawn("quitter", shell("echo bye")).expect("spawn");
    let started = std::time::Instant::now();
    let line = child.wait_for_line(|line| line == "never printed", Duration::from_secs(60)).await;
    assert_eq!(line, None);
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn wait_for_exit_returns_the_status_after_all_output_is_captured() {
    let mut child =
        ChildGuard::spawn("failing config", shell("echo 'missing: AUTH_JWT_SECRET' >&2; exit 3")).expect("spawn");
    let status = child.wait_for_exit(DEFAULT_TIMEOUT).await.expect("status").expect("the child exits");
    assert_eq!(status.code(), Some(3));
    assert_eq!(child.stderr_lines(), vec!["missing: AUTH_JWT_SECRET"]);
}

#[tokio::test]
async fn terminate_lets_the_child_shut_down_gracefully() {
    let mut child = ChildGuard::spawn(
        "graceful",
        shell("trap 'echo draining; exit 0' TERM; echo ready; while :; do sleep 0.05; done"),
    )
    .expect("spawn");
    child.wait_for_line(|line| line == "ready", DEFAULT_TIMEOUT).await.expect("the child installed its handler");
    let status = child.terminate(DEFAULT_TIMEOUT).await.expect("terminate");
    assert!(status.success(), "{status}");
    assert!(child.stdout_lines().contains(&"draining".to_owned()));
}

#[tokio::test]
async fn terminate_kills_a_child_that_ignores_sigterm() {
    let mut child =
        ChildGuard::spawn("stubborn", shell("trap '' TERM; echo ready; while :; do sleep 0.05; done")).expect("spawn");
    child.wait_for_line(|line| line == "ready", DEFAULT_TIMEOUT).await.expect("the child ignores SIGTERM now");
    let status = child.terminate(Duration::from_millis(300)).await.expect("terminate");
    assert!(!status.success());
}

#[tokio::test]
async fn dropping_the_guard_kills_and_reaps_the_child() {
    let child = ChildGuard::spawn("sleeper", shell("exec sleep 600")).expect("spawn");
    let proc_entry = format!("/proc/{}", child.id());
    assert!(Path::new(&proc_entry).exists());
    drop(child);
    // Reaped, not a zombie: the kernel has forgotten the pid.
    assert!(!Path::new(&proc_entry).exists());
}
