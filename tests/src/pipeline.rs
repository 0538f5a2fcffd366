//! The pipeline's latencies and every service's memory, measured on the whole system as a deployment runs it
//! (the services' own defaults, not the test tuning; the chart's sampler): the `pipeline-bench` binary runs this
//! for `cargo xtask bench`, which puts the figures in BENCHMARKS.md.
//!
//! - **Reminder due → mail accepted.** For `seconds` seconds, `reminders_per_second` tasks each get an `at` reminder
//!   on that second. Each second's tasks are created [`PLANNING_LEAD`] ahead of it, so creating them is part of
//!   the sustained load. A reminder's latency is from its instant to the moment the SMTP sink accepted its mail.
//! - **Completed → next occurrence readable.** `completions` daily tasks are created and completed, a few per
//!   second; each latency is from the completion's answer to the first list of the user's open tasks that
//!   holds the series' next occurrence (polled every [`POLL_INTERVAL`], which bounds the resolution).
//! - **Memory.** Each service's resident set after start-up, and its peak after the loads.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::json;
use testkit::process::ResidentMemory;
use testkit::services::{PRODUCTION_TRACES_SAMPLER, PRODUCTION_TRACES_SAMPLER_RATIO};
use testkit::smtp::ReceivedMail;
use tokio::task::JoinSet;

use crate::time::{rfc3339, seconds_from_now};
use crate::{Api, HarnessError, PIPELINE_DEADLINE, Service, Stack};

/// How far ahead of its second a batch of reminding tasks is created: time for the event to reach the reminder
/// service and be planned.
pub const PLANNING_LEAD: Duration = Duration::from_secs(5);
/// Between two reads of a series while waiting for its next occurrence.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Completions started per second.
const COMPLETIONS_PER_SECOND: u32 = 5;
/// The sampler the Helm chart ships.
const PRODUCTION_SAMPLER: [(&str, &str); 2] =
    [("OTEL_TRACES_SAMPLER", PRODUCTION_TRACES_SAMPLER), ("OTEL_TRACES_SAMPLER_ARG", PRODUCTION_TRACES_SAMPLER_RATIO)];
const REMINDED_USER: &str = "pipeline-bench-reminders";
const RECURRING_USER: &str = "pipeline-bench-series";
const EMAIL: &str = "pipeline-bench@example.com";
const TITLE_PREFIX: &str = "Pipeline bench";

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct PipelineOptions {
    /// Reminders falling due per second.
    pub reminders_per_second: u32,
    /// Seconds of reminders.
    pub seconds: u32,
    /// Recurring tasks completed.
    pub completions: u32,
}

/// Why the run could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The stack could not be started or read.
    #[error(transparent)]
    Harness(#[from] HarnessError),
    /// An API call the run depends on failed.
    #[error(transparent)]
    Api(#[from] crate::ApiError),
    /// A task of the run panicked or was cancelled.
    #[error("a task of the run ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// `/proc` could not be read for a service.
    #[error("reading the memory of {service} (pid {pid}): {source}")]
    Memory {
        /// The service's name.
        service: &'static str,
        /// Its process.
        pid: u32,
        /// What reading `/proc/PID/status` said.
        source: std::io::Error,
    },
}

/// Everything the run measured, written as JSON for `cargo xtask bench`.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    /// The options the run was made with.
    pub reminders_per_second: u32,
    /// Seconds of reminders.
    pub seconds: u32,
    /// [`PLANNING_LEAD`].
    pub planning_lead_ms: u64,
    /// [`POLL_INTERVAL`].
    pub poll_interval_ms: u64,
    /// Reminder due → mail accepted.
    pub reminders: Latencies,
    /// Reminders whose task was created later than its instant (the planning lead was not enough).
    pub planned_late: u64,
    /// Mails beyond the first for the same reminder.
    pub duplicated_mails: u64,
    /// Completion → next occurrence readable.
    pub next_occurrences: Latencies,
    /// Per service, in start order.
    pub memory: Vec<ServiceMemory>,
}

/// Latencies of a set of events, in milliseconds; the percentiles are `None` when none arrived.
#[derive(Debug, Clone, Serialize)]
pub struct Latencies {
    /// Events started.
    pub expected: u64,
    /// Events that arrived before the deadline.
    pub arrived: u64,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// The slowest.
    pub max_ms: Option<f64>,
}

impl Latencies {
    fn of(expected: u64, mut millis: Vec<f64>) -> Self {
        millis.sort_by(f64::total_cmp);
        Self {
            expected,
            arrived: millis.len() as u64,
            p50_ms: percentile(&millis, 0.50),
            p99_ms: percentile(&millis, 0.99),
            max_ms: millis.last().copied(),
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], quantile: f64) -> Option<f64> {
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied()
}

/// A service's resident memory (`VmRSS` idle, `VmHWM` after the loads), summed over its replicas.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceMemory {
    /// The service's name.
    pub service: &'static str,
    /// Resident after start-up, before any load.
    pub idle_bytes: u64,
    /// The most it held at any moment, read after the loads.
    pub peak_bytes: u64,
}

/// Starts the system untuned with the production sampler, runs both loads and reads the memory.
pub async fn run(options: PipelineOptions) -> Result<PipelineReport, PipelineError> {
    let mut builder = Stack::builder().untuned().dedicated_postgres();
    for service in Service::ALL {
        for (key, value) in PRODUCTION_SAMPLER {
            builder = builder.env(*service, key, value);
        }
    }
    let stack = builder.start().await?;
    let idle = memory(&stack, |memory| memory.resident_bytes)?;

    eprintln!(
        "pipeline-bench: {} reminders/s for {} s, then {} completions",
        options.reminders_per_second, options.seconds, options.completions
    );
    let reminders = measure_reminders(&stack, options).await?;
    let next_occurrences = measure_next_occurrences(&stack, options.completions).await?;

    let peak = memory(&stack, |memory| memory.peak_resident_bytes)?;
    let memory = idle
        .into_iter()
        .zip(peak)
        .map(|((service, idle_bytes), (_, peak_bytes))| ServiceMemory { service, idle_bytes, peak_bytes })
        .collect();
    Ok(PipelineReport {
        reminders_per_second: options.reminders_per_second,
        seconds: options.seconds,
        planning_lead_ms: PLANNING_LEAD.as_millis() as u64,
        poll_interval_ms: POLL_INTERVAL.as_millis() as u64,
        reminders: reminders.latencies,
        planned_late: reminders.planned_late,
        duplicated_mails: reminders.duplicated,
        next_occurrences,
        memory,
    })
}

/// What the reminder load measured.
struct ReminderRun {
    latencies: Latencies,
    planned_late: u64,
    duplicated: u64,
}

async fn measure_reminders(stack: &Stack, options: PipelineOptions) -> Result<ReminderRun, PipelineError> {
    let api = stack.api(REMINDED_USER)?;
    api.save_notification_settings(Some(EMAIL), None).await?;
    let lead = i64::try_from(PLANNING_LEAD.as_secs()).unwrap_or(5);
    // Whole seconds: the API keeps reminder instants to the second.
    let first_due = seconds_from_now(lead + 1);
    let mut due_at = HashMap::new();
    let mut planned_late = 0;
    for second in 0..options.seconds {
        let due = first_due + TimeDelta::seconds(i64::from(second));
        wait_until(due - TimeDelta::seconds(lead)).await;
        let mut batch = JoinSet::new();
        for index in 0..options.reminders_per_second {
            let title = format!("{TITLE_PREFIX} {second:04}-{index:04}");
            let body = json!({ "title": title, "reminders": [{ "kind": "at", "at": rfc3339(due) }] });
            let api = api.clone();
            batch.spawn(async move { api.create_task(&body).await.map(|_| Utc::now()) });
            due_at.insert(title, due);
        }
        while let Some(created) = batch.join_next().await {
            let created_at = created??;
            if created_at > due {
                planned_late += 1;
            }
        }
    }

    let expected = due_at.len();
    let last_due = first_due + TimeDelta::seconds(i64::from(options.seconds));
    let deadline = Instant::now() + duration_until(last_due) + PIPELINE_DEADLINE;
    // Until every reminder has its mail, or the deadline: copies do not count as arrivals.
    let _ = testkit::wait::until(deadline.saturating_duration_since(Instant::now()), || async {
        first_arrivals(&stack.mails_mentioning(TITLE_PREFIX), &due_at).arrived.len() >= expected
    })
    .await;
    let arrivals = first_arrivals(&stack.mails_mentioning(TITLE_PREFIX), &due_at);
    let millis = arrivals
        .arrived
        .iter()
        .map(|(title, received)| {
            let received = DateTime::<Utc>::from(*received);
            (received - due_at[*title]).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
        })
        .collect();
    let duplicated = arrivals.copies;
    Ok(ReminderRun { latencies: Latencies::of(expected as u64, millis), planned_late, duplicated })
}

/// Each reminder's first mail, and how many further copies came.
struct Arrivals<'a> {
    /// When the SMTP server accepted each reminder's first mail, by title.
    arrived: HashMap<&'a str, SystemTime>,
    copies: u64,
}

/// Sorts `mails` by the reminder titles of `due_at`, keeping each title's earliest acceptance; mails of other titles
/// are ignored.
fn first_arrivals<'a>(mails: &[ReceivedMail], due_at: &'a HashMap<String, DateTime<Utc>>) -> Arrivals<'a> {
    let mut arrivals = Arrivals { arrived: HashMap::new(), copies: 0 };
    for mail in mails {
        let Some(title) = mail.subject.as_deref().and_then(|subject| subject.strip_prefix("Reminder: ")) else {
            continue;
        };
        let Some((title, _)) = due_at.get_key_value(title) else { continue };
        match arrivals.arrived.entry(title.as_str()) {
            Entry::Occupied(mut first) => {
                arrivals.copies += 1;
                let earliest = (*first.get()).min(mail.received_at);
                first.insert(earliest);
            }
            Entry::Vacant(first) => {
                first.insert(mail.received_at);
            }
        }
    }
    arrivals
}

async fn measure_next_occurrences(stack: &Stack, completions: u32) -> Result<Latencies, PipelineError> {
    let api = stack.api(RECURRING_USER)?;
    let mut series = JoinSet::new();
    let started = Instant::now();
    for index in 0..completions {
        // Started at a steady rate, so the latencies are of a sustained flow rather than of one burst.
        let start_at = started + Duration::from_secs(1) * index / COMPLETIONS_PER_SECOND;
        tokio::time::sleep_until(start_at.into()).await;
        let api = api.clone();
        series.spawn(async move { next_occurrence_latency(&api, index).await });
    }
    let mut millis = Vec::new();
    while let Some(latency) = series.join_next().await {
        if let Some(latency) = latency?? {
            millis.push(latency.as_secs_f64() * 1000.0);
        }
    }
    Ok(Latencies::of(u64::from(completions), millis))
}

/// Creates a daily task labelled for itself, completes it, and times until its next occurrence is listed;
/// `None` when none is within [`PIPELINE_DEADLINE`].
async fn next_occurrence_latency(api: &Api, index: u32) -> Result<Option<Duration>, PipelineError> {
    let label = format!("pipeline-bench-{index}");
    let body = json!({
        "title": format!("{TITLE_PREFIX} series {index:04}"),
        "labels": [label],
        "due_at": rfc3339(seconds_from_now(86_400)),
        "time_zone": "Europe/Berlin",
        "recurrence": { "rrule": "FREQ=DAILY", "anchor": "due" },
    });
    let task = api.create_task(&body).await?;
    let id = task["id"].as_str().unwrap_or_default().to_owned();
    api.complete(&id).await?;
    let completed = Instant::now();
    while completed.elapsed() < PIPELINE_DEADLINE {
        if !api.open_tasks_labelled(&label).await?.is_empty() {
            return Ok(Some(completed.elapsed()));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    Ok(None)
}

/// Each service's resident memory, summed over its replicas, in start order: `figure` picks what.
fn memory(stack: &Stack, figure: fn(&ResidentMemory) -> u64) -> Result<Vec<(&'static str, u64)>, PipelineError> {
    let mut figures = Vec::new();
    for service in Service::ALL {
        let mut bytes = 0;
        for pid in stack.pids(*service) {
            let memory = ResidentMemory::of(pid).map_err(|source| PipelineError::Memory {
                service: service.name(),
                pid,
                source,
            })?;
            bytes += figure(&memory);
        }
        figures.push((service.name(), bytes));
    }
    Ok(figures)
}

/// Sleeps until `instant` on the wall clock (at once when it has passed).
async fn wait_until(instant: DateTime<Utc>) {
    tokio::time::sleep(duration_until(instant)).await;
}

fn duration_until(instant: DateTime<Utc>) -> Duration {
    (instant - Utc::now()).to_std().unwrap_or(Duration::ZERO)
}
