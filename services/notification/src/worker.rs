//! The delivery worker: claims due deliveries, sends each once per claim, records the outcome.
//!
//! Claiming (`FOR UPDATE SKIP LOCKED`, a lease and a fencing token, see [`crate::store`]) lets any number of
//! replicas run: each delivery is with one worker at a time. Sending happens *outside* any transaction, and the
//! outcome is recorded right after in its own short statement. A crash (or a lost database connection) between
//! the destination accepting and the row being marked sent leaves the row claimed until its lease runs out; then
//! it is sent again. Delivery is therefore at-least-once towards SMTP servers and webhooks: a crash repeats at
//! most the deliveries that were in flight (a claimed batch is sent concurrently, so up to `NOTIFY_BATCH_SIZE`),
//! each at most once, and the window per delivery is one UPDATE. Webhook receivers can drop such a duplicate by
//! its `Webhook-Id`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use events::CloudEvent;
use events::reminder::ReminderDue;
use messaging::MessageHeaders;
use observability::Shutdown;
use observability::exemplars::RecordedTrace;
use sqlx::PgPool;
use tokio::sync::Notify;
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use url::Url;

use crate::breaker::{Admission, Breakers, Destination};
use crate::channel::email::EmailSender;
use crate::channel::webhook::WebhookSender;
use crate::channel::{Channel, FailureKind, SendFailure};
use crate::config::DeliveryConfig;
use crate::dead_letter::{DeadLetter, DeadLetters};
use crate::metrics::{self, DeliveryOutcome};
use crate::retry::RetryPolicy;
use crate::store::{self, ClaimedDelivery, Recorded, StoreError};

/// How often the pending gauge is sampled and finished deliveries past retention are purged.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(15);
/// Pause after a failed claim (database down), so the loop does not spin.
const CLAIM_ERROR_PAUSE: Duration = Duration::from_secs(2);

/// The senders a worker delivers through.
#[derive(Debug, Clone)]
pub struct Senders {
    /// Sends the `email` deliveries through the configured SMTP server.
    pub email: EmailSender,
    /// Sends the `webhook` deliveries to the URLs stored with them.
    pub webhook: WebhookSender,
}

/// Claims due deliveries, sends them through [`Senders`] behind per-destination circuit breakers, and records
/// each outcome: sent, retried later, deferred by an open circuit, or dead-lettered.
#[derive(Debug, Clone)]
pub struct DeliveryWorker {
    pool: PgPool,
    senders: Senders,
    breakers: Arc<Breakers>,
    dead_letters: DeadLetters,
    retry: RetryPolicy,
    config: DeliveryConfig,
    wake: Arc<Notify>,
}

/// What one claimed delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Retry,
    Deferred,
    Dead,
}

impl DeliveryWorker {
    /// `wake` is notified by the consumer when it recorded new deliveries.
    pub fn new(
        pool: PgPool,
        senders: Senders,
        dead_letters: DeadLetters,
        config: DeliveryConfig,
        wake: Arc<Notify>,
    ) -> Self {
        let retry = RetryPolicy { max_attempts: config.max_attempts, backoff: config.backoff };
        // A trial call that never reports (its task was cancelled) frees the breaker after a lease.
        let breakers = Arc::new(Breakers::new(config.breaker_failure_threshold, config.breaker_open_for, config.lease));
        Self { pool, senders, breakers, dead_letters, retry, config, wake }
    }

    /// Delivers until `shutdown` fires; the round in progress (bounded by the send timeouts) is finished first.
    pub async fn run(self, shutdown: Shutdown) {
        tracing::info!(batch_size = self.config.batch_size, "delivery worker started");
        let mut next_housekeeping = Instant::now();
        loop {
            if Instant::now() >= next_housekeeping {
                self.housekeeping().await;
                next_housekeeping = Instant::now() + HOUSEKEEPING_INTERVAL;
            }
            let pause = match self.round().await {
                // A full batch suggests more are due: go again at once.
                Ok(claimed) if claimed == usize::from(self.config.batch_size) => Duration::ZERO,
                Ok(_) => self.config.poll_interval,
                Err(error) => {
                    tracing::warn!(%error, "claiming deliveries failed; will retry");
                    CLAIM_ERROR_PAUSE
                }
            };
            tokio::select! {
                biased;
                () = shutdown.requested() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
        tracing::info!("delivery worker stopped");
    }

    /// Claims one batch and delivers it concurrently; returns how many were claimed.
    pub async fn round(&self) -> Result<usize, StoreError> {
        let claimed = store::claim(&self.pool, self.config.lease, self.config.batch_size).await?;
        let count = claimed.len();
        futures::future::join_all(claimed.into_iter().map(|delivery| self.deliver(delivery))).await;
        Ok(count)
    }

    async fn deliver(&self, delivery: ClaimedDelivery) {
        let span = tracing::info_span!(
            "notification.deliver",
            otel.name = %format_args!("deliver {}", delivery.channel),
            otel.kind = "client",
            otel.status_code = Empty,
            notification.channel = delivery.channel.as_str(),
            notification.delivery.id = %delivery.id,
            notification.attempt = delivery.attempts + 1,
            messaging.message.id = %delivery.event_id,
            error.type = Empty,
        );
        let parent = MessageHeaders::new();
        let parent =
            delivery.trace_headers.iter().fold(parent, |headers, (name, value)| headers.with(name, value.as_str()));
        // Fails only without an OpenTelemetry layer, when there is no trace to continue anyway.
        let _ = span.set_parent(parent.extract_context());
        let (delivery_id, channel) = (delivery.id, delivery.channel);
        match self.attempt(&delivery).instrument(span.clone()).await {
            Ok(Outcome::Sent | Outcome::Deferred) => {}
            Ok(Outcome::Retry | Outcome::Dead) => {
                span.record("otel.status_code", "error");
            }
            Err(error) => {
                // The lease runs out and the delivery is claimed again: nothing is lost, at worst sent twice.
                span.record("otel.status_code", "error");
                span.record("error.type", "database");
                tracing::error!(parent: &span, %error, %delivery_id, channel = channel.as_str(), "recording a delivery outcome failed");
            }
        }
    }

    async fn attempt(&self, delivery: &ClaimedDelivery) -> Result<Outcome, StoreError> {
        if let Some(reason) = &delivery.given_up {
            return self.bury(delivery, delivery.attempts, reason).await;
        }
        let destination = match self.destination(delivery) {
            Ok(destination) => destination,
            Err(failure) => return self.give_up(delivery, delivery.attempts, &failure).await,
        };
        if let Admission::DeferUntil(until) = self.breakers.admit(&destination) {
            let wait = until.saturating_duration_since(Instant::now());
            let recorded =
                store::reschedule(&self.pool, delivery, delivery.attempts, wait, "destination circuit open").await?;
            if recorded == Recorded::Yes {
                metrics::delivery(delivery.channel, DeliveryOutcome::Deferred);
                tracing::debug!(retry_in_ms = wait.as_millis(), "destination circuit open; delivery deferred");
            }
            return Ok(Outcome::Deferred);
        }
        let attempts = delivery.attempts + 1;
        metrics::attempted(delivery.channel);
        let sent = self.send(delivery).await;
        self.breakers.record(&destination, sent.as_ref().map_or_else(SendFailure::destination_healthy, |()| true));
        match sent {
            Ok(()) => {
                // The window described in the module docs: the destination has it, the row does not say so yet.
                if store::mark_sent(&self.pool, delivery, attempts).await? == Recorded::Yes {
                    metrics::delivery(delivery.channel, DeliveryOutcome::Sent);
                    let latency = (Utc::now() - delivery.remind_at).to_std().unwrap_or_default();
                    // The current span is this delivery's (`deliver` instruments `attempt` with it).
                    let trace = RecordedTrace::of_span(&tracing::Span::current());
                    metrics::delivered_after(delivery.channel, latency, trace);
                    tracing::info!(attempts, "delivered");
                }
                Ok(Outcome::Sent)
            }
            Err(failure) if failure.kind == FailureKind::Permanent || !self.retry.allows_another(attempts) => {
                self.give_up(delivery, attempts, &failure).await
            }
            Err(failure) => {
                let wait = self.retry.delay_after(attempts);
                if store::reschedule(&self.pool, delivery, attempts, wait, &failure.message).await? == Recorded::Yes {
                    metrics::delivery(delivery.channel, DeliveryOutcome::Failed);
                    tracing::warn!(attempts, retry_in_ms = wait.as_millis(), reason = %failure.message, "delivery failed; will retry");
                }
                Ok(Outcome::Retry)
            }
        }
    }

    /// Gives the delivery up for good (so no later claim sends it again), then dead-letters it.
    async fn give_up(
        &self,
        delivery: &ClaimedDelivery,
        attempts: u32,
        failure: &SendFailure,
    ) -> Result<Outcome, StoreError> {
        if store::give_up(&self.pool, delivery, attempts, &failure.message).await? == Recorded::ClaimLost {
            return Ok(Outcome::Dead);
        }
        // On the delivery's span (`deliver` instruments `attempt` with it): the trace shows why it was given up.
        observability::record_exception(&tracing::Span::current(), failure);
        self.bury(delivery, attempts, &failure.message).await
    }

    /// Publishes the dead letter of a given-up delivery and, once the broker acknowledged it, marks it dead. If
    /// the broker is unavailable the delivery waits (attempts untouched) for a later claim to publish it.
    async fn bury(&self, delivery: &ClaimedDelivery, attempts: u32, reason: &str) -> Result<Outcome, StoreError> {
        let letter = DeadLetter::new(delivery, attempts, reason);
        if let Err(error) = self.dead_letters.publish(&letter).await {
            let wait = self.retry.delay_after(1);
            tracing::warn!(%error, retry_in_ms = wait.as_millis(), "publishing a dead letter failed; will retry");
            let _ = store::reschedule(&self.pool, delivery, attempts, wait, reason).await?;
            return Ok(Outcome::Retry);
        }
        if store::mark_dead(&self.pool, delivery).await? == Recorded::Yes {
            metrics::delivery(delivery.channel, DeliveryOutcome::Dead);
            metrics::dead_lettered(delivery.channel);
            tracing::warn!(attempts, %reason, "delivery dead-lettered");
        }
        Ok(Outcome::Dead)
    }

    fn destination(&self, delivery: &ClaimedDelivery) -> Result<Destination, SendFailure> {
        match delivery.channel {
            Channel::Email => Ok(self.senders.email.destination().clone()),
            Channel::Webhook => Ok(WebhookSender::destination(&webhook_url(delivery)?)),
        }
    }

    async fn send(&self, delivery: &ClaimedDelivery) -> Result<(), SendFailure> {
        match delivery.channel {
            Channel::Email => {
                let event: CloudEvent<ReminderDue> =
                    serde_json::from_value(delivery.event.clone()).map_err(|error| {
                        SendFailure::new(FailureKind::Permanent, format!("stored event is not a reminder: {error}"))
                    })?;
                self.senders.email.send(&delivery.destination, &event.data).await
            }
            Channel::Webhook => {
                let url = webhook_url(delivery)?;
                let body = serde_json::to_vec(&delivery.event).map_err(|error| {
                    SendFailure::new(FailureKind::Permanent, format!("stored event does not serialise: {error}"))
                })?;
                self.senders.webhook.send(&url, delivery.event_id, body).await
            }
        }
    }

    async fn housekeeping(&self) {
        match store::pending(&self.pool).await {
            Ok(pending) => {
                for channel in Channel::ALL {
                    let found = pending.iter().find(|pending| pending.channel == channel);
                    metrics::pending(
                        channel,
                        found.map_or(0, |pending| pending.count),
                        found.map_or(Duration::ZERO, |pending| pending.oldest_due_age),
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "sampling pending deliveries failed"),
        }
        let cutoff = Utc::now() - chrono::Duration::from_std(self.config.retention).unwrap_or(chrono::Duration::MAX);
        match store::purge_finished_before(&self.pool, cutoff).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "finished deliveries past retention deleted"),
            Err(error) => tracing::warn!(%error, "purging finished deliveries failed; will retry"),
        }
    }
}

fn webhook_url(delivery: &ClaimedDelivery) -> Result<Url, SendFailure> {
    Url::parse(&delivery.destination)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .ok_or_else(|| SendFailure::new(FailureKind::Permanent, "the stored webhook URL is not an http(s) URL"))
}
