//! The tansu broker harness against the real binary: readiness, topics, stop/start, pause, and
//! cleanup that survives SIGKILL.

use std::net::{Ipv4Addr, TcpStream};
use std::process::Command;
use std::time::Duration;

use testkit::kafka::Broker;
use testkit::process::{ChildGuard, Signal};
use testkit::wait;

/// Set in the environment of this binary re-run as a helper process.
const HELPER_ENV: &str = "TESTKIT_HELPER";

fn accepts_connections(port: u16) -> bool {
    TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1)).is_ok()
}

#[tokio::test]
async fn a_broker_starts_creates_topics_and_restarts_with_its_data_on_the_same_port() {
    let mut broker = Broker::start().await.expect("start tansu");
    let port = broker.port();
    assert_eq!(broker.bootstrap(), format!("127.0.0.1:{port}"));
    assert!(accepts_connections(port));

    broker.create_topic("harness-topic", 2).await.expect("create a topic");
    let topics = broker.topics().await.expect("list topics");
    assert!(topics.iter().any(|topic| topic == "harness-topic"), "{topics:?}");

    broker.stop();
    assert!(!broker.is_running());
    wait::until(wait::DEFAULT_TIMEOUT, || async { !accepts_connections(port) })
        .await
        .expect("a stopped broker refuses connections");

    broker.start_again().await.expect("start again");
    assert_eq!(broker.port(), port);
    let topics = broker.topics().await.expect("list topics after restart");
    assert!(topics.iter().any(|topic| topic == "harness-topic"), "topics survive a restart: {topics:?}");

    let data_dir = broker.data_dir().to_owned();
    assert!(data_dir.exists());
    drop(broker);
    assert!(!data_dir.exists(), "dropping the broker deletes its data");
}

#[tokio::test]
async fn a_paused_broker_answers_nothing_until_resumed() {
    let mut broker = Broker::start().await.expect("start tansu");
    broker.create_topic("kept", 1).await.expect("create a topic");
    broker.pause().expect("pause");
    let listing = tokio::time::timeout(Duration::from_secs(3), broker.topics()).await;
    assert!(!matches!(listing, Ok(Ok(_))), "a paused broker must not answer: {listing:?}");
    broker.resume().expect("resume");
    let topics = broker.topics().await.expect("list topics after resume");
    assert!(topics.iter().any(|topic| topic == "kept"), "pausing keeps data: {topics:?}");
}

#[tokio::test]
async fn the_broker_does_not_outlive_a_killed_test_process() {
    let mut command = Command::new(std::env::current_exe().expect("path of this test binary"));
    command
        .args(["helper_hold_a_broker_until_killed", "--exact", "--ignored", "--nocapture"])
        .env(HELPER_ENV, "hold-broker");
    let helper = ChildGuard::spawn("testkit helper", command).expect("spawn the helper");
    let ready = helper
        .wait_for_line(|line| line.starts_with("HELD "), Duration::from_secs(90))
        .await
        .expect("the helper reports its broker");
    // "HELD <port> <data dir>"
    let fields: Vec<&str> = ready.split_whitespace().collect();
    let [_, port, data_dir] = fields[..] else { panic!("unexpected helper line: {ready}") };
    let port: u16 = port.parse().expect("port");
    let data_dir = std::path::PathBuf::from(data_dir);
    assert!(accepts_connections(port) && data_dir.exists());

    helper.send(Signal::SIGKILL).expect("kill the helper");
    wait::until(wait::DEFAULT_TIMEOUT, || async { !accepts_connections(port) && !data_dir.exists() })
        .await
        .expect("the broker is killed and its data deleted after its owner was SIGKILLed");
}

#[tokio::test]
async fn dropping_the_broker_kills_its_process_even_when_paused() {
    let mut broker = Broker::start().await.expect("start tansu");
    let port = broker.port();
    broker.pause().expect("pause");
    drop(broker);
    wait::until(wait::DEFAULT_TIMEOUT, || async { !accepts_connections(port) })
        .await
        .expect("the port is released once the broker is dropped");
}

/// Not a test on its own: [`the_broker_does_not_outlive_a_killed_test_process`] runs it in a child process.
#[tokio::test]
#[ignore = "a helper: the_broker_does_not_outlive_a_killed_test_process runs it in a child process"]
async fn helper_hold_a_broker_until_killed() {
    if std::env::var(HELPER_ENV).as_deref() != Ok("hold-broker") {
        return;
    }
    let broker = Broker::start().await.expect("start tansu");
    println!("HELD {} {}", broker.port(), broker.data_dir().display());
    std::future::pending::<()>().await;
}
