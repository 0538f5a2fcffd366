//! When the pipeline has nothing left in flight, so counting mails and webhook calls proves "no duplicate"
//! rather than "no duplicate yet".

use testkit::exposition::{metric_samples, metric_sum};

/// `shared/messaging`: gauge · messages · `topic`, `partition`. How far a consumer is behind.
pub const CONSUMER_LAG: &str = "taskwatch_consumer_lag";
/// `shared/outbox` and the backend: gauge · rows. Outbox rows not yet acknowledged by the broker.
pub const OUTBOX_PENDING: &str = "taskwatch_outbox_pending_events";
/// `services/notification`: gauge · deliveries · `channel`. Deliveries neither sent nor dead.
pub const DELIVERIES_PENDING: &str = "taskwatch_notification_deliveries_pending";

/// Whether a consumer's exposition shows it at the end of every partition of `topic` it measured.
pub fn caught_up(exposition: &str, topic: &str) -> bool {
    let lag = metric_samples(exposition, CONSUMER_LAG, &[("topic", topic)]);
    !lag.is_empty() && lag.iter().all(|behind| *behind == 0.0)
}

/// Whether a service's outbox holds no unacknowledged row (true when it has no outbox metric at all).
pub fn outbox_drained(exposition: &str) -> bool {
    metric_sum(exposition, OUTBOX_PENDING, &[]).is_none_or(|pending| pending == 0.0)
}

/// Whether notification has consumed every reminder and finished every delivery (sent or dead).
pub fn notification_idle(exposition: &str) -> bool {
    caught_up(exposition, "reminders") && metric_sum(exposition, DELIVERIES_PENDING, &[]) == Some(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_needs_lag_samples_and_no_pending_delivery() {
        let idle = "taskwatch_consumer_lag{topic=\"reminders\",partition=\"0\"} 0\n\
                    taskwatch_notification_deliveries_pending{channel=\"email\"} 0\n";
        assert!(notification_idle(idle));
        assert!(!notification_idle(&idle.replace("} 0\ntaskwatch_notification", "} 2\ntaskwatch_notification")));
        assert!(!notification_idle("taskwatch_notification_deliveries_pending{channel=\"email\"} 0\n"));
        assert!(outbox_drained(""));
        assert!(!outbox_drained("taskwatch_outbox_pending_events 1\n"));
    }
}
