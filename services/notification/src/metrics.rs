//! The service's own metrics (HTTP, backend client and breaker metrics come from `observability`, consumer and
//! dead-letter producer metrics from `messaging`, pool metrics from `database`; there is no outbox here). Every
//! label value is a bounded enum: channels, outcomes — never addresses, hosts or ids.

use std::sync::LazyLock;
use std::time::Duration;

use observability::exemplars::{ExemplarHistogram, RecordedTrace};
use observability::metrics::DELAY_SECONDS_BUCKETS;
use prometheus_client::encoding::EncodeLabelSet;

use crate::channel::Channel;

/// Counter · deliveries · `channel` ([`Channel`]), `outcome` ([`DeliveryOutcome`]). What became of each
/// delivery attempt (or non-attempt, for `deferred`).
pub const DELIVERIES_TOTAL: &str = "taskwatch_notification_deliveries_total";
/// Counter · attempts · `channel`. Sends actually tried against an SMTP server or webhook (retries included;
/// deliveries deferred by an open circuit are not attempts).
pub const ATTEMPTS_TOTAL: &str = "taskwatch_notification_attempts_total";
/// Histogram · seconds · `channel`. From the reminder's `remind_at` to the destination accepting it; each bucket's
/// exemplar names the delivery's trace (the reminder's, continued).
pub const DELIVERY_LATENCY_SECONDS: &str = "taskwatch_notification_delivery_latency_seconds";

/// The `channel` label of [`DELIVERY_LATENCY_SECONDS`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    /// [`Channel::as_str`].
    channel: &'static str,
}

/// [`DELIVERY_LATENCY_SECONDS`], in the exemplar registry (see `observability::exemplars`).
static DELIVERY_LATENCY: LazyLock<ExemplarHistogram<ChannelLabel>> = LazyLock::new(|| {
    ExemplarHistogram::register(
        DELIVERY_LATENCY_SECONDS,
        "Time from a reminder's remind_at to its delivery being accepted.",
        DELAY_SECONDS_BUCKETS,
    )
});
/// Counter · dead letters · `channel`. Deliveries given up on (attempts exhausted or permanently refused) and
/// written to `notifications.dlq`.
pub const DEAD_LETTERS_TOTAL: &str = "taskwatch_notification_dead_letters_total";
/// Gauge · deliveries · `channel`. Deliveries not yet sent nor dead, sampled periodically.
pub const DELIVERIES_PENDING: &str = "taskwatch_notification_deliveries_pending";
/// Gauge · seconds · `channel`. How long ago the reminder of the oldest delivery neither sent nor dead was due
/// (0 when none is due), by the database's clock, sampled with [`DELIVERIES_PENDING`]. Every replica reports
/// the same database-wide value: aggregate with `max`.
pub const OLDEST_PENDING_AGE_SECONDS: &str = "taskwatch_notification_oldest_pending_age_seconds";
/// Gauge · destinations · `channel`. Destinations (SMTP server, webhook hosts) whose circuit is open or on
/// trial in this replica.
pub const CIRCUITS_OPEN: &str = "taskwatch_notification_circuits_open";
/// Counter · events · `outcome` ([`IntakeOutcome`]). `reminder.due` events consumed and what they led to.
pub const REMINDERS_TOTAL: &str = "taskwatch_notification_reminders_total";

/// The `outcome` label of [`DELIVERIES_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The destination accepted it.
    Sent,
    /// The attempt failed; a retry is scheduled.
    Failed,
    /// Not attempted: the destination's circuit is open; rescheduled without using an attempt.
    Deferred,
    /// Given up on and dead-lettered.
    Dead,
}

impl DeliveryOutcome {
    /// Every outcome, so [`describe`] can create each series at zero.
    pub const ALL: [DeliveryOutcome; 4] =
        [DeliveryOutcome::Sent, DeliveryOutcome::Failed, DeliveryOutcome::Deferred, DeliveryOutcome::Dead];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Sent => "sent",
            DeliveryOutcome::Failed => "failed",
            DeliveryOutcome::Deferred => "deferred",
            DeliveryOutcome::Dead => "dead",
        }
    }
}

/// The `outcome` label of [`REMINDERS_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// At least one new delivery was recorded.
    Scheduled,
    /// Every delivery of this event had been recorded before (a redelivered event).
    Duplicate,
    /// The owner has neither an e-mail address nor a webhook.
    NoChannel,
}

impl IntakeOutcome {
    /// Every outcome, so [`describe`] can create each series at zero.
    pub const ALL: [IntakeOutcome; 3] = [IntakeOutcome::Scheduled, IntakeOutcome::Duplicate, IntakeOutcome::NoChannel];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            IntakeOutcome::Scheduled => "scheduled",
            IntakeOutcome::Duplicate => "duplicate",
            IntakeOutcome::NoChannel => "no_channel",
        }
    }
}

/// Registers descriptions and zero-valued series, so every series exists from the first scrape (an alert on
/// `rate()` or `increase()` needs a sample before the first increment).
pub fn describe() {
    metrics::describe_counter!(DELIVERIES_TOTAL, "Delivery attempts by channel and outcome.");
    metrics::describe_counter!(ATTEMPTS_TOTAL, "Sends tried against an SMTP server or webhook, retries included.");
    LazyLock::force(&DELIVERY_LATENCY);
    metrics::describe_counter!(DEAD_LETTERS_TOTAL, "Deliveries given up on and written to notifications.dlq.");
    metrics::describe_gauge!(DELIVERIES_PENDING, "Deliveries neither sent nor dead.");
    metrics::describe_gauge!(
        OLDEST_PENDING_AGE_SECONDS,
        metrics::Unit::Seconds,
        "How long ago the reminder of the oldest delivery neither sent nor dead was due (0 when none is)."
    );
    metrics::describe_gauge!(CIRCUITS_OPEN, "Delivery destinations whose circuit is open or on trial.");
    metrics::describe_counter!(REMINDERS_TOTAL, "reminder.due events consumed, by what they led to.");
    messaging::metric_names::describe_all();
    for channel in Channel::ALL {
        let channel = channel.as_str();
        for outcome in DeliveryOutcome::ALL {
            metrics::counter!(DELIVERIES_TOTAL, "channel" => channel, "outcome" => outcome.as_str()).increment(0);
        }
        metrics::counter!(ATTEMPTS_TOTAL, "channel" => channel).increment(0);
        metrics::counter!(DEAD_LETTERS_TOTAL, "channel" => channel).increment(0);
        metrics::gauge!(DELIVERIES_PENDING, "channel" => channel).set(0.0);
        metrics::gauge!(OLDEST_PENDING_AGE_SECONDS, "channel" => channel).set(0.0);
        metrics::gauge!(CIRCUITS_OPEN, "channel" => channel).set(0.0);
    }
    for outcome in IntakeOutcome::ALL {
        metrics::counter!(REMINDERS_TOTAL, "outcome" => outcome.as_str()).increment(0);
    }
}

/// Counts what became of one claimed delivery in [`DELIVERIES_TOTAL`].
pub fn delivery(channel: Channel, outcome: DeliveryOutcome) {
    metrics::counter!(DELIVERIES_TOTAL, "channel" => channel.as_str(), "outcome" => outcome.as_str()).increment(1);
}

/// Counts one send about to be tried in [`ATTEMPTS_TOTAL`]; a deferral by an open circuit is not one.
pub fn attempted(channel: Channel) {
    metrics::counter!(ATTEMPTS_TOTAL, "channel" => channel.as_str()).increment(1);
}

/// Records in [`DELIVERY_LATENCY_SECONDS`] how long after its `remind_at` a delivery was accepted, with the
/// delivery's `trace` as the exemplar when it was recorded.
pub fn delivered_after(channel: Channel, latency: Duration, trace: Option<RecordedTrace>) {
    DELIVERY_LATENCY.observe(&ChannelLabel { channel: channel.as_str() }, latency.as_secs_f64(), trace);
}

/// Counts one delivery whose dead letter the broker acknowledged in [`DEAD_LETTERS_TOTAL`].
pub fn dead_lettered(channel: Channel) {
    metrics::counter!(DEAD_LETTERS_TOTAL, "channel" => channel.as_str()).increment(1);
}

/// Sets `channel`'s [`DELIVERIES_PENDING`] and [`OLDEST_PENDING_AGE_SECONDS`] from one database sample.
pub fn pending(channel: Channel, count: i64, oldest_due_age: Duration) {
    // Counts of rows fit an f64 exactly far beyond any realistic backlog.
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(DELIVERIES_PENDING, "channel" => channel.as_str()).set(count as f64);
    metrics::gauge!(OLDEST_PENDING_AGE_SECONDS, "channel" => channel.as_str()).set(oldest_due_age.as_secs_f64());
}

/// Sets `channel`'s [`CIRCUITS_OPEN`] to the destinations whose circuit is open or on trial in this replica.
pub fn circuits_open(channel: Channel, count: usize) {
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(CIRCUITS_OPEN, "channel" => channel.as_str()).set(count as f64);
}

/// Counts one consumed `reminder.due` event in [`REMINDERS_TOTAL`] by what it led to.
pub fn reminder(outcome: IntakeOutcome) {
    metrics::counter!(REMINDERS_TOTAL, "outcome" => outcome.as_str()).increment(1);
}
