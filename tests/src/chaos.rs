//! The chaos run behind `cargo xtask chaos --minutes N`: the whole system under steady work while random parts of
//! it are killed and restarted at random moments with random delays, then the exactly-once check.
//!
//! Work: every second a task whose reminder falls due 5–20 s later, and every fifth second a weekly task that is
//! completed at once, so reminders and completions are always in flight. Faults, one at a time: a service SIGKILLed
//! (all its replicas), the broker killed, or Postgres stopped (fast shutdown); each comes back after 0–10 s, which
//! spans restarts before, inside and after the consumer-group session timeout. A request that fails while a part is
//! down is not retried: what counts as created is what the API holds at the end.
//!
//! At the end every part runs again; the check waits for the pipeline to settle and counts, from the API, the SMTP
//! sink and the webhook receiver: created, delivered, duplicated, lost, and next occurrences; and, from each task's
//! history (`GET /v1/tasks/{id}/history`, audit-log's record), whether every change the run made to it is recorded
//! exactly once. It fails when a reminder is lost, when deliveries repeat more than once per channel per kill of
//! notification (a kill between a send and its record), when a completed series has other than exactly one next
//! occurrence, or when a task's history is not exactly its changes.
//!
//! Every service in the services table can be killed, generated ones included.

use std::fmt;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use serde_json::{Value, json};

use crate::time::{rfc3339, seconds_from_now};
use crate::{Api, ApiError, HarnessError, PIPELINE_DEADLINE, Service, Stack};

const EMAIL: &str = "chaos@example.com";

/// Why a chaos run could not reach its verdict (a verdict of loss is a [`ChaosReport`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// The stack could not be started, a part could not be killed or restarted, or the pipeline never settled.
    #[error(transparent)]
    Harness(#[from] HarnessError),
    /// A call the run cannot do without failed: saving the notification settings, or listing tasks for the count.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// After the last fault, a consumer group's running replicas did not again own every partition of a topic
    /// within [`PIPELINE_DEADLINE`], so the messages on the unowned ones would never be consumed.
    #[error("after the last fault the {service} group never owned every partition of {topic} again")]
    Unowned {
        /// The consumer service's name, as in [`Service::name`].
        service: &'static str,
        /// The topic whose partitions stayed partly unassigned.
        topic: &'static str,
    },
}

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct ChaosOptions {
    /// How long work and faults go on (the check after it takes a minute or two more).
    pub duration: Duration,
    /// Seed of the fault schedule: the same seed picks the same victims, moments and delays.
    pub seed: u64,
}

/// Something the run kills and brings back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    Service(Service),
    Broker,
    Postgres,
}

impl Victim {
    /// Every service of the services table, the broker and Postgres.
    fn all() -> Vec<Victim> {
        Service::ALL.iter().map(|service| Victim::Service(*service)).chain([Victim::Broker, Victim::Postgres]).collect()
    }
}

impl fmt::Display for Victim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Victim::Service(service) => f.write_str(service.name()),
            Victim::Broker => f.write_str("broker"),
            Victim::Postgres => f.write_str("postgres"),
        }
    }
}

/// The counts the run prints; [`ChaosReport::verdict`] says whether they show exactly-once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChaosReport {
    /// Faults injected during the run, of every kind.
    pub faults: usize,
    /// Of those, kills of notification: each may repeat one delivery per channel, which bounds `duplicated`.
    pub notification_kills: usize,
    /// Tasks with a reminder that the API holds at the end.
    pub created: usize,
    /// Of those, reminded at least once by mail and by webhook.
    pub delivered: usize,
    /// Extra copies beyond the first, mail and webhook together.
    pub duplicated: usize,
    /// Reminders that reached neither or only one channel.
    pub lost: usize,
    /// Recurring tasks that the API holds as completed.
    pub completed: usize,
    /// Completed series with exactly one open next occurrence.
    pub next_occurrences: usize,
    /// Completed series with none, or more than one.
    pub wrong_occurrences: usize,
    /// Tasks whose history is exactly the changes the run made to them (created; then completed, if it is).
    pub audited: usize,
    /// Tasks whose history misses a change or holds one twice.
    pub wrong_histories: usize,
}

impl ChaosReport {
    /// `Ok` when nothing was lost, repeats stayed within their bound and every series continued exactly once.
    pub fn verdict(&self) -> Result<(), String> {
        let bound = 2 * self.notification_kills;
        let mut problems = Vec::new();
        if self.lost > 0 {
            problems.push(format!("{} reminders lost", self.lost));
        }
        if self.duplicated > bound {
            problems.push(format!(
                "{} repeated deliveries, above {bound} for {} kills of notification",
                self.duplicated, self.notification_kills
            ));
        }
        if self.wrong_occurrences > 0 {
            problems.push(format!("{} completed series without exactly one next occurrence", self.wrong_occurrences));
        }
        if self.wrong_histories > 0 {
            problems.push(format!("{} tasks whose history is not exactly their changes", self.wrong_histories));
        }
        if self.created == 0 {
            problems.push("no task was created at all".to_owned());
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "faults {} (notification killed {}) · reminders: created {}, delivered {}, duplicated {}, lost {} · \
             recurring: completed {}, next occurrences {}, wrong {} · histories: exact {}, wrong {}",
            self.faults,
            self.notification_kills,
            self.created,
            self.delivered,
            self.duplicated,
            self.lost,
            self.completed,
            self.next_occurrences,
            self.wrong_occurrences,
            self.audited,
            self.wrong_histories
        )
    }
}

/// Starts the whole system on a Postgres server of its own, runs work and faults for `options.duration`, heals
/// everything and counts.
pub async fn run(options: ChaosOptions) -> Result<ChaosReport, ChaosError> {
    let mut stack = Stack::builder().dedicated_postgres().start().await?;
    let api = stack.api("chaos")?;
    api.save_notification_settings(Some(EMAIL), Some(&stack.webhook.url())).await?;
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut report = ChaosReport::default();

    let started = Instant::now();
    let mut next_fault = started + random_secs(&mut rng, 5, 15);
    let victims = Victim::all();
    let mut tick = 0_u64;
    while started.elapsed() < options.duration {
        tick += 1;
        put_work_in_flight(&api, tick).await;
        if Instant::now() >= next_fault {
            let victim = victims[rng.random_range(0..victims.len())];
            let down_for = Duration::from_millis(rng.random_range(0..=10_000));
            eprintln!("chaos: {:>5.1}s killing {victim}, back after {down_for:?}", started.elapsed().as_secs_f64());
            crash(&mut stack, victim, down_for).await?;
            report.faults += 1;
            report.notification_kills += usize::from(victim == Victim::Service(Service::Notification));
            next_fault = Instant::now() + random_secs(&mut rng, 5, 20);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    eprintln!("chaos: work and faults over after {:.0}s; checking", started.elapsed().as_secs_f64());
    for (service, topic) in Service::consumers() {
        if !stack.wait_until_partitions_owned(service, topic, PIPELINE_DEADLINE).await {
            return Err(ChaosError::Unowned { service: service.name(), topic });
        }
    }
    count(&stack, &api, report).await
}

/// One second's work: a task reminding soon; every fifth second also a weekly task completed at once. Failures are
/// expected while a part is down and are not retried.
async fn put_work_in_flight(api: &Api, tick: u64) {
    let reminded = json!({
        "title": format!("Chaos reminder {tick:05}"),
        "reminders": [{ "kind": "at", "at": rfc3339(seconds_from_now(5 + i64::try_from(tick % 16).unwrap_or(0))) }],
    });
    let _ = api.create_task(&reminded).await;
    if tick.is_multiple_of(5) {
        let recurring = json!({
            "title": format!("Chaos recurring {tick:05}"),
            "due_at": "2031-03-04T08:00:00Z",
            "time_zone": "America/New_York",
            "recurrence": { "rrule": "FREQ=WEEKLY", "anchor": "due" },
        });
        if let Ok(task) = api.create_task(&recurring).await
            && let Some(id) = task["id"].as_str()
        {
            let _ = api.complete(id).await;
        }
    }
}

async fn crash(stack: &mut Stack, victim: Victim, down_for: Duration) -> Result<(), HarnessError> {
    match victim {
        Victim::Service(service) => {
            stack.kill_service(service)?;
            tokio::time::sleep(down_for).await;
            stack.start_service(service).await
        }
        Victim::Broker => {
            stack.broker.stop();
            tokio::time::sleep(down_for).await;
            Ok(stack.broker.start_again().await?)
        }
        Victim::Postgres => {
            stack.stop_postgres().await?;
            tokio::time::sleep(down_for).await;
            stack.start_postgres().await
        }
    }
}

/// Waits for every reminder of every task the API holds (up to the pipeline deadline), lets the pipeline settle,
/// then counts copies and occurrences.
async fn count(stack: &Stack, api: &Api, mut report: ChaosReport) -> Result<ChaosReport, ChaosError> {
    let open = api.tasks_with_status("open").await?;
    let completed = api.tasks_with_status("completed").await?;
    let reminded: Vec<String> = open
        .iter()
        .chain(&completed)
        .filter_map(|task| task["title"].as_str())
        .filter(|title| title.starts_with("Chaos reminder"))
        .map(str::to_owned)
        .collect();
    let series: Vec<&Value> = completed
        .iter()
        .filter(|task| task["title"].as_str().is_some_and(|title| title.starts_with("Chaos recurring")))
        .collect();

    let _ = testkit::wait::until_some(PIPELINE_DEADLINE, || async {
        reminded.iter().all(|title| copies(stack, title) != (0, 0)).then_some(())
    })
    .await;
    stack.wait_until_settled().await?;
    // A series completed in the last seconds of the run (or just before recurring-task came back) continues only
    // after the first read: read the open tasks again until every series has continued, up to the deadline.
    let has_continued = |open: &[Value], task: &Value| open.iter().any(|open| open["series_id"] == task["series_id"]);
    let open = match testkit::wait::until_some(PIPELINE_DEADLINE, || async {
        let open = api.tasks_with_status("open").await.ok()?;
        series.iter().all(|task| has_continued(&open, task)).then_some(open)
    })
    .await
    {
        Ok(open) => open,
        Err(_) => api.tasks_with_status("open").await?,
    };

    report.created = reminded.len();
    for title in &reminded {
        let (mails, calls) = copies(stack, title);
        if mails >= 1 && calls >= 1 {
            report.delivered += 1;
        } else {
            report.lost += 1;
            eprintln!("chaos: lost {title:?} ({mails} mails, {calls} webhook calls)");
        }
        report.duplicated += mails.saturating_sub(1) + calls.saturating_sub(1);
    }
    report.completed = series.len();
    for task in series {
        let series_id = task["series_id"].as_str().unwrap_or_default();
        let next = open.iter().filter(|open| open["series_id"] == series_id).count();
        if next == 1 {
            report.next_occurrences += 1;
        } else {
            report.wrong_occurrences += 1;
            eprintln!("chaos: series {series_id} has {next} open occurrences");
        }
    }
    audit_histories(api, &open, &completed, &mut report).await;
    Ok(report)
}

/// Each task of `expected` whose history is not exactly its expected changes, described.
async fn wrong_histories(api: &Api, expected: &[(&str, &[&str])]) -> Vec<String> {
    let mut wrong = Vec::new();
    for (id, changes) in expected {
        let history = api.history(id).await.unwrap_or_default();
        let recorded: Vec<&str> = history["entries"]
            .as_array()
            .map(|entries| entries.iter().filter_map(|entry| entry["change"].as_str()).collect())
            .unwrap_or_default();
        if recorded != *changes {
            wrong.push(format!("{id}: {recorded:?}, expected {changes:?}"));
        }
    }
    wrong
}

/// Counts the tasks whose history is exactly the changes the run made: `created` for an open task, `created` then
/// `completed` for a completed one. Waits (up to the pipeline deadline) for audit-log to have read them all.
async fn audit_histories(api: &Api, open: &[Value], completed: &[Value], report: &mut ChaosReport) {
    let expected: Vec<(&str, &[&str])> = open
        .iter()
        .map(|task| (task, &["created"][..]))
        .chain(completed.iter().map(|task| (task, &["created", "completed"][..])))
        .filter_map(|(task, changes)| task["id"].as_str().map(|id| (id, changes)))
        .collect();
    let wrong = match testkit::wait::until_some(PIPELINE_DEADLINE, || async {
        let wrong = wrong_histories(api, &expected).await;
        wrong.is_empty().then_some(wrong)
    })
    .await
    {
        Ok(wrong) => wrong,
        Err(_) => wrong_histories(api, &expected).await,
    };
    for problem in &wrong {
        eprintln!("chaos: history of {problem}");
    }
    report.wrong_histories = wrong.len();
    report.audited = expected.len() - wrong.len();
}

/// How many mails and webhook calls name `title`.
fn copies(stack: &Stack, title: &str) -> (usize, usize) {
    let mails = stack.mails_mentioning(title).len();
    let calls =
        stack.webhook.requests().iter().filter(|call| String::from_utf8_lossy(&call.body).contains(title)).count();
    (mails, calls)
}

fn random_secs(rng: &mut StdRng, from: u64, to: u64) -> Duration {
    Duration::from_secs(rng.random_range(from..=to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_fails_on_loss_on_repeats_beyond_the_bound_and_on_wrong_occurrences() {
        let clean =
            ChaosReport { created: 10, delivered: 10, completed: 2, next_occurrences: 2, ..ChaosReport::default() };
        assert_eq!(clean.verdict(), Ok(()));
        assert!(ChaosReport { lost: 1, ..clean.clone() }.verdict().is_err());
        assert!(ChaosReport { duplicated: 1, ..clean.clone() }.verdict().is_err());
        assert_eq!(ChaosReport { duplicated: 2, notification_kills: 1, ..clean.clone() }.verdict(), Ok(()));
        assert!(ChaosReport { wrong_occurrences: 1, ..clean.clone() }.verdict().is_err());
        assert!(ChaosReport { wrong_histories: 1, ..clean.clone() }.verdict().is_err());
        assert!(ChaosReport::default().verdict().is_err(), "a run that created nothing proves nothing");
    }
}
