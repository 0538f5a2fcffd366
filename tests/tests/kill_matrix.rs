//! The kill matrix (issue 10): every service SIGKILLed and restarted at the moments that matter for a Kafka
//! consumer group — at once, inside the session timeout (the old member still counted alive) and after it —
//! plus the broker killed and Postgres restarted, and once with two replicas of each worker where one replica
//! dies beside a survivor. Reminders and completions are in flight at every kill.
//!
//! After each scenario: every consumer group owns all its partitions again (the stall tansu 0.6 showed), every
//! reminder reached mail and webhook (at most one repeat per kill of notification, which may die between a send
//! and recording it), every completed recurring task has exactly one next occurrence, and nothing was
//! dead-lettered.

use std::time::Duration;

use e2e::kafka::TopicTap;
use e2e::time::{rfc3339, seconds_from_now};
use e2e::{Api, PIPELINE_DEADLINE, Service, Stack, StackBuilder};
use serde_json::json;
use testkit::webhook::ReceivedRequest;

const EMAIL: &str = "kim@example.com";
/// The harness's `KAFKA_SESSION_TIMEOUT` (tests/src/stack.rs): a restart inside it finds the old member alive.
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
/// Inside the session timeout: the timing that stalled every consumer on tansu 0.6.
const INSIDE_SESSION: Duration = Duration::from_secs(3);
/// Past the session timeout and its heartbeat: the old member has expired.
const AFTER_SESSION: Duration = Duration::from_secs(8);
const DEAD_LETTER_TOPICS: [&str; 3] =
    ["notifications.dlq", "task-events.reminder.dlq", "task-events.recurring-task.dlq"];

/// What was put in flight, to be checked once the pipeline settles.
#[derive(Debug, Default)]
struct Expected {
    /// Titles of tasks with one reminder each: one mail and one webhook call per title.
    reminded: Vec<String>,
    /// Series ids of completed recurring tasks: exactly one open occurrence each.
    completed_series: Vec<String>,
    /// How many times notification was killed: the bound on repeated deliveries.
    notification_kills: usize,
}

/// A stack with kim's reminders going to mail and the webhook receiver, and every dead-letter topic tapped.
struct Scenario {
    stack: Stack,
    kim: Api,
    dead_letters: Vec<TopicTap>,
    expected: Expected,
    round: usize,
}

impl Scenario {
    async fn start(builder: StackBuilder) -> Self {
        let stack = builder.start().await.expect("stack starts");
        let kim = stack.api("kim").expect("kim's client");
        kim.save_notification_settings(Some(EMAIL), Some(&stack.webhook.url())).await.expect("settings saved");
        let dead_letters = DEAD_LETTER_TOPICS.iter().map(|topic| stack.tap(topic).expect("dead-letter tap")).collect();
        let mut scenario = Self { stack, kim, dead_letters, expected: Expected::default(), round: 0 };
        scenario.assert_groups_recover_their_partitions("at start").await;
        scenario
    }

    /// Puts work in flight: two tasks whose reminders fall due in a few seconds (while the next fault is on)
    /// and one recurring task completed now (its completion event still travelling).
    async fn put_work_in_flight(&mut self) {
        self.round += 1;
        for n in 1..=2 {
            let title = format!("Kill matrix round {:02} reminder {n}", self.round);
            let task = json!({ "title": title, "reminders": [{ "kind": "at", "at": rfc3339(seconds_from_now(4)) }] });
            self.kim.create_task(&task).await.expect("task created");
            self.expected.reminded.push(title);
        }
        let recurring = self
            .kim
            .create_task(&json!({
                "title": format!("Kill matrix round {:02} recurring", self.round),
                "due_at": "2031-03-04T08:00:00Z",
                "time_zone": "Europe/Berlin",
                "recurrence": { "rrule": "FREQ=WEEKLY", "anchor": "due" },
            }))
            .await
            .expect("recurring task created");
        let task_id = recurring["id"].as_str().expect("id");
        self.kim.complete(task_id).await.expect("task completed");
        self.expected.completed_series.push(recurring["series_id"].as_str().expect("series id").to_owned());
    }

    /// SIGKILL every replica of `service`, wait `down_for`, start it again, and check it recovered by itself.
    async fn crash(&mut self, service: Service, down_for: Duration) {
        self.stack.kill_service(service).expect("kill");
        self.count_kill(service);
        tokio::time::sleep(down_for).await;
        self.stack.start_service(service).await.expect("restarted service becomes ready");
        self.assert_groups_recover_their_partitions(&format!("after {} was down {down_for:?}", service.name())).await;
    }

    /// SIGKILL one replica of `service` while the other keeps running, then start it again after `down_for`.
    async fn crash_one_replica(&mut self, service: Service, down_for: Duration) {
        self.stack.kill_replica(service, 0).expect("kill one replica");
        self.count_kill(service);
        // The survivor must take the dead replica's partitions over (the second tansu hole: a survivor
        // rejoining while the dead member still leads).
        self.assert_groups_recover_their_partitions(&format!("with one {} replica dead", service.name())).await;
        tokio::time::sleep(down_for).await;
        self.stack.start_service(service).await.expect("restarted replica becomes ready");
        self.assert_groups_recover_their_partitions(&format!("after a {} replica came back", service.name())).await;
    }

    /// Every group owns all its partitions again. A member that joined while a dead one was still counted may
    /// have seen tansu hand the dead member a partition and drop it without a rebalance
    /// (messaging::consumer::group_watch): nobody consumes that partition until work for it waits and a
    /// member sees the work stand still. So while a group does not own everything (what the unowned alert
    /// reads), more work is put in flight, checked at the end like the rest, until it does.
    async fn assert_groups_recover_their_partitions(&mut self, when: &str) {
        let deadline = tokio::time::Instant::now() + PIPELINE_DEADLINE;
        for (service, topic) in Service::consumers() {
            while !self.stack.wait_until_partitions_owned(service, topic, SESSION_TIMEOUT * 4).await {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{when}: the {} group never owned every partition of {topic} again, with work waiting:\n{}",
                    service.name(),
                    self.stack.output(service)
                );
                eprintln!("kill matrix: {when}: {} does not own every partition of {topic}; more work", service.name());
                self.put_work_in_flight().await;
            }
        }
    }

    fn count_kill(&mut self, service: Service) {
        if service == Service::Notification {
            self.expected.notification_kills += 1;
        }
    }

    /// Once nothing is in flight: every reminder delivered by mail and webhook (repeats within the bound), every
    /// completed series continued exactly once, and nothing dead-lettered.
    async fn assert_exactly_once(self) {
        let Scenario { stack, kim, dead_letters, expected, .. } = self;
        for title in &expected.reminded {
            let mailed = stack
                .wait_for_mail(
                    |mail| mail.subject.as_deref().is_some_and(|subject| subject.contains(title)),
                    PIPELINE_DEADLINE,
                )
                .await;
            assert!(
                mailed.is_some(),
                "the reminder of {title:?} was never mailed:\n{}",
                stack.output(Service::Notification)
            );
            let called = stack.wait_for_webhook(|call| mentions(call, title), PIPELINE_DEADLINE).await;
            assert!(called.is_some(), "the reminder of {title:?} never reached the webhook");
        }
        for series_id in &expected.completed_series {
            let next = kim.wait_for_open_in_series(series_id, PIPELINE_DEADLINE).await;
            assert!(
                next.is_some(),
                "series {series_id} got no next occurrence:\n{}",
                stack.output(Service::RecurringTask)
            );
        }

        stack.wait_until_settled().await.expect("pipeline settles");
        let mut repeats = 0;
        for title in &expected.reminded {
            let mails = stack.mails_mentioning(title).len();
            let calls = stack.webhook.requests().iter().filter(|call| mentions(call, title)).count();
            assert!(mails >= 1 && calls >= 1, "{title:?}: {mails} mails, {calls} webhook calls");
            repeats += (mails - 1) + (calls - 1);
        }
        // Each channel of a delivery in flight at a kill may be sent once more.
        let bound = 2 * expected.notification_kills;
        assert!(
            repeats <= bound,
            "{repeats} repeated deliveries, more than {bound} for {} kills of notification",
            expected.notification_kills
        );
        for series_id in &expected.completed_series {
            let open = kim.open_tasks_in_series(series_id).await.expect("list series");
            assert_eq!(open.len(), 1, "series {series_id} has {} open occurrences: {open:#?}", open.len());
        }
        for tap in &dead_letters {
            assert!(tap.messages().is_empty(), "dead-lettered: {:#?}", tap.messages());
        }
    }
}

/// Whether a webhook call's body names `title` (the reminder.due event carries the task's title).
fn mentions(call: &ReceivedRequest, title: &str) -> bool {
    String::from_utf8_lossy(&call.body).contains(title)
}

/// Each service in turn, killed while work is in flight and restarted after `down_for`.
async fn crash_each_service_restarting_after(down_for: Duration) {
    let mut scenario = Scenario::start(Stack::builder()).await;
    for service in [Service::Notification, Service::Reminder, Service::RecurringTask, Service::Backend] {
        scenario.put_work_in_flight().await;
        scenario.crash(service, down_for).await;
    }
    scenario.assert_exactly_once().await;
}

#[tokio::test]
async fn each_service_killed_and_restarted_at_once_loses_and_repeats_nothing() {
    crash_each_service_restarting_after(Duration::ZERO).await;
}

#[tokio::test]
async fn each_service_killed_and_restarted_inside_the_session_timeout_loses_and_repeats_nothing() {
    assert!(INSIDE_SESSION < SESSION_TIMEOUT);
    crash_each_service_restarting_after(INSIDE_SESSION).await;
}

#[tokio::test]
async fn each_service_killed_and_restarted_after_the_session_timeout_loses_and_repeats_nothing() {
    assert!(AFTER_SESSION > SESSION_TIMEOUT);
    crash_each_service_restarting_after(AFTER_SESSION).await;
}

#[tokio::test]
async fn the_broker_killed_and_postgres_restarted_lose_and_repeat_nothing() {
    let mut scenario = Scenario::start(Stack::builder().dedicated_postgres()).await;
    scenario.put_work_in_flight().await;
    scenario.stack.broker.stop();
    tokio::time::sleep(INSIDE_SESSION).await;
    scenario.stack.broker.start_again().await.expect("broker restarts");
    scenario.assert_groups_recover_their_partitions("after the broker restarted").await;

    scenario.put_work_in_flight().await;
    scenario.stack.stop_postgres().await.expect("postgres stops");
    tokio::time::sleep(INSIDE_SESSION).await;
    scenario.stack.start_postgres().await.expect("postgres restarts");
    scenario.assert_groups_recover_their_partitions("after postgres restarted").await;
    scenario.assert_exactly_once().await;
}

#[tokio::test]
async fn with_two_replicas_of_each_worker_one_killed_beside_a_survivor_loses_and_repeats_nothing() {
    let builder = Stack::builder()
        .replicas(Service::Reminder, 2)
        .replicas(Service::RecurringTask, 2)
        .replicas(Service::Notification, 2);
    let mut scenario = Scenario::start(builder).await;
    for service in [Service::Notification, Service::Reminder, Service::RecurringTask] {
        scenario.put_work_in_flight().await;
        scenario.crash_one_replica(service, INSIDE_SESSION).await;
    }
    scenario.assert_exactly_once().await;
}
