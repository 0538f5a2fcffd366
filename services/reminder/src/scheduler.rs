//! The scheduler: claims due jobs and, in the same transaction, marks each fired (its `reminder.due.v1` written
//! to the outbox) or missed (past the lateness policy). The outbox relay publishes what was fired.
//!
//! Exactly once across replicas: a job is claimed under `FOR UPDATE SKIP LOCKED` and leaves `pending` in the
//! transaction that writes its event, so a second scheduler either skips the locked row or, after the commit, no
//! longer sees it as pending. A crash before the commit rolls everything back and the job is due again.
//!
//! Prompt: after each round it sleeps until the earliest pending job is due, at most `REMINDER_POLL_INTERVAL`
//! (jobs planned by another replica are seen within that), and wakes early when this replica's consumer adds
//! jobs. After downtime the first rounds catch up on everything that fell due meanwhile, oldest first.

use std::time::Duration;

use events::topics::REMINDERS;
use observability::exemplars::RecordedTrace;
use opentelemetry::trace::TraceContextExt as _;
use outbox::{Enqueued, Outbox, OutboxMessage};
use sqlx::{PgConnection, PgPool};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use uuid::Uuid;

use crate::config::SchedulerConfig;
use crate::due_event::due_event;
use crate::handler::SchedulerWake;
use crate::lateness::{Verdict, judge};
use crate::metrics;
use crate::store::StoreError;
use crate::store::jobs::{self, DueJob, Settled};
use crate::trace_context::TraceContext;

/// The shortest sleep between rounds. A due job another replica has locked stays pending until that claim
/// commits, so "next due in zero" can persist for a moment; this keeps the loop from spinning on it.
const MIN_PAUSE: Duration = Duration::from_millis(50);

/// A round could not finish; the next one retries (nothing was half done: each batch is one transaction).
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The job store failed: claiming or settling jobs, or sampling the backlog.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fired job's event could not be serialised to JSON.
    #[error("cannot encode the reminder.due event of job {job_id}")]
    Encode {
        /// The job being fired.
        job_id: Uuid,
        /// The serialisation error.
        #[source]
        source: serde_json::Error,
    },
    /// A fired job's event could not be written to the outbox.
    #[error("cannot write the reminder.due event of job {job_id} to the outbox")]
    Outbox {
        /// The job being fired.
        job_id: Uuid,
        /// The outbox's failure.
        #[source]
        source: outbox::OutboxError,
    },
}

/// What one claim transaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batch {
    /// Jobs whose `reminder.due` event was written to the outbox.
    pub fired: usize,
    /// Jobs settled as missed: due longer ago than the lateness limit.
    pub missed: usize,
}

impl Batch {
    fn claimed(self) -> usize {
        self.fired + self.missed
    }
}

/// Fires due reminder jobs, exactly once across replicas (see the module docs); run it with
/// [`Scheduler::run`].
#[derive(Debug, Clone)]
pub struct Scheduler {
    pool: PgPool,
    outbox: Outbox,
    config: SchedulerConfig,
    wake: SchedulerWake,
}

impl Scheduler {
    /// A scheduler on the job store in `pool`, writing fired events to `outbox` and woken early through `wake`.
    pub fn new(pool: PgPool, outbox: Outbox, config: SchedulerConfig, wake: SchedulerWake) -> Self {
        Self { pool, outbox, config, wake }
    }

    /// Fires due jobs until `stop` fires. A batch in progress finishes (its transaction commits or rolls back)
    /// before the loop checks `stop` again; only the sleep between rounds is cut short.
    pub async fn run(self, stop: tokio_util::sync::CancellationToken) {
        tracing::info!(
            poll_interval = ?self.config.poll_interval,
            max_lateness = ?self.config.max_lateness.get(),
            "reminder scheduler started"
        );
        while !stop.is_cancelled() {
            let wait = match self.round(&stop).await {
                Ok(next_due) => {
                    next_due.map_or(self.config.poll_interval, |due| due.min(self.config.poll_interval)).max(MIN_PAUSE)
                }
                Err(error) => {
                    tracing::warn!(error = %observability::ErrorChain(&error), "scheduler round failed; retrying");
                    self.config.poll_interval
                }
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.wake.woken() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("reminder scheduler stopped");
    }

    /// Fires batches until no due job is left (or `stop` fires), counts jobs overdue, samples the backlog, and says how long
    /// until the next pending job is due.
    async fn round(&self, stop: &tokio_util::sync::CancellationToken) -> Result<Option<Duration>, SchedulerError> {
        loop {
            let batch = self.fire_due().await?;
            if batch.claimed() < usize::from(self.config.batch_size) || stop.is_cancelled() {
                break;
            }
        }
        // After the batches: a job fired late above was counted there, so the sweep sees only those still waiting.
        metrics::overdue(jobs::count_overdue(&self.pool, metrics::ON_TIME).await?);
        metrics::backlog(jobs::backlog(&self.pool).await?);
        Ok(jobs::next_due_in(&self.pool).await?)
    }

    /// One claim transaction: up to `REMINDER_BATCH_SIZE` due jobs, each fired or missed.
    pub async fn fire_due(&self) -> Result<Batch, SchedulerError> {
        let mut tx = self.pool.begin().await.map_err(|source| StoreError { operation: "begin claim", source })?;
        let due = jobs::claim_due(&mut tx, self.config.batch_size).await?;
        let (fire, miss): (Vec<DueJob>, Vec<DueJob>) = due
            .into_iter()
            .partition(|job| judge(job.remind_at, job.claimed_at, self.config.max_lateness) == Verdict::Fire);
        let mut enqueued = Vec::with_capacity(fire.len());
        let mut traces = Vec::with_capacity(fire.len());
        for job in &fire {
            let (receipt, trace) = write_due_event(&mut tx, &self.outbox, job).await?;
            enqueued.push(receipt);
            traces.push(trace);
        }
        let fired: Vec<Uuid> = fire.iter().map(|job| job.id).collect();
        let missed: Vec<Uuid> = miss.iter().map(|job| job.id).collect();
        jobs::settle(&mut tx, &fired, Settled::Fired).await?;
        jobs::settle(&mut tx, &missed, Settled::Missed).await?;
        tx.commit().await.map_err(|source| StoreError { operation: "commit claim", source })?;

        // Counted only once committed: a rolled-back batch fires again and must not count twice.
        enqueued.into_iter().for_each(Enqueued::committed);
        let mut overdue = 0;
        for (job, trace) in fire.iter().zip(traces) {
            let delay = (job.claimed_at - job.remind_at).to_std().unwrap_or(Duration::ZERO);
            metrics::fired(delay, trace);
            overdue += u64::from(delay > metrics::ON_TIME && !job.overdue_counted);
        }
        overdue += miss.iter().map(|job| u64::from(!job.overdue_counted)).sum::<u64>();
        metrics::missed(miss.len());
        metrics::overdue(overdue);
        for job in &miss {
            tracing::warn!(
                job_id = %job.id,
                task_id = %job.task_id,
                remind_at = %job.remind_at,
                max_lateness = ?self.config.max_lateness.get(),
                "reminder missed: due longer ago than the maximum lateness"
            );
        }
        Ok(Batch { fired: fire.len(), missed: miss.len() })
    }
}

/// Writes the job's `reminder.due.v1` into the outbox inside the claim transaction, in a span that continues the
/// trace of the task event that planned the job; the outbox row carries that span's context to the relay. Also
/// returns that trace when it is recorded, for the fire delay's exemplar.
async fn write_due_event(
    tx: &mut PgConnection,
    outbox: &Outbox,
    job: &DueJob,
) -> Result<(Enqueued, Option<RecordedTrace>), SchedulerError> {
    let stored = TraceContext::from_map(job.trace_context.0.clone());
    let span = tracing::info_span!(
        "reminder.fire",
        otel.name = "fire reminder",
        job_id = %job.id,
        task_id = %job.task_id,
        remind_at = %job.remind_at,
    );
    let parent = stored.extract();
    if parent.span().span_context().is_valid() {
        // Fails only without an OpenTelemetry layer, when there is no trace to continue anyway.
        let _ = span.set_parent(parent);
    }
    let recorded = RecordedTrace::of_span(&span);
    let trace = TraceContext::of_span(&span).unwrap_or(stored);
    let event = due_event(job);
    let message = OutboxMessage {
        id: event.id,
        topic: REMINDERS,
        key: event.data.partition_key(),
        event_type: event.event_type.clone(),
        payload: event.to_json().map_err(|source| SchedulerError::Encode { job_id: job.id, source })?,
        headers: trace.headers().clone(),
        created_at: event.time,
    };
    async {
        let enqueued = outbox::enqueue(tx, outbox, &message)
            .await
            .map_err(|source| SchedulerError::Outbox { job_id: job.id, source })?;
        tracing::info!(event_id = %event.id, "reminder fired");
        Ok((enqueued, recorded))
    }
    .instrument(span)
    .await
}
