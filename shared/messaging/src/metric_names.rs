//! The metrics this crate emits, one documented list in the shape of `observability::metric_names`.
//!
//! `topic` is one of the handful of topics a service subscribes to; `partition` is bounded by the
//! topic's partition count; `outcome` is a fixed set per metric. No label ever holds a key or an id.

use observability::metric_names::{MetricKind, MetricSpec};

/// Counter · messages · `topic`, `outcome` (`ok`, `error`). Messages the producer had acknowledged
/// by the broker (`ok`) or gave up on (`error`).
pub const MESSAGES_PRODUCED_TOTAL: &str = "taskwatch_messages_produced_total";
/// Counter · messages · `topic`, `outcome` (`ok`, `retried`, `dead_lettered`). Handler results:
/// `retried` counts each transient failure (the same message is tried again), so a message can add
/// several `retried` and then one `ok` or `dead_lettered`.
pub const MESSAGES_CONSUMED_TOTAL: &str = "taskwatch_messages_consumed_total";
/// Histogram · seconds · `topic`. Time from a message's arrival at the consumer to its final
/// outcome (retries and backoff included).
pub const MESSAGE_PROCESSING_DURATION_SECONDS: &str = "taskwatch_message_processing_duration_seconds";
/// Gauge · messages · `topic`, `partition`. High watermark minus this consumer's position, measured
/// every `KAFKA_LAG_INTERVAL` for the partitions assigned to it (0 once a partition moves away).
pub const CONSUMER_LAG: &str = "taskwatch_consumer_lag";
/// Counter · messages · `topic` (the topic the message was consumed from). Messages sent to the
/// dead-letter topic: rejected by the handler, or not a CloudEvent at all.
pub const MESSAGES_DEAD_LETTERED_TOTAL: &str = "taskwatch_messages_dead_lettered_total";

/// Every metric above, with its type, unit, labels and meaning.
pub const REGISTRY: &[MetricSpec] = &[
    MetricSpec {
        name: MESSAGES_PRODUCED_TOTAL,
        kind: MetricKind::Counter,
        unit: "messages",
        labels: &["topic", "outcome"],
        help: "Messages produced by topic and outcome (ok = acknowledged by the broker, error = gave up).",
    },
    MetricSpec {
        name: MESSAGES_CONSUMED_TOTAL,
        kind: MetricKind::Counter,
        unit: "messages",
        labels: &["topic", "outcome"],
        help: "Consumed message handling results by topic and outcome (ok, retried, dead_lettered).",
    },
    MetricSpec {
        name: MESSAGE_PROCESSING_DURATION_SECONDS,
        kind: MetricKind::Histogram,
        unit: "seconds",
        labels: &["topic"],
        help: "Time from receiving a message to its final outcome, retries included.",
    },
    MetricSpec {
        name: CONSUMER_LAG,
        kind: MetricKind::Gauge,
        unit: "messages",
        labels: &["topic", "partition"],
        help: "Messages behind the high watermark per assigned partition.",
    },
    MetricSpec {
        name: MESSAGES_DEAD_LETTERED_TOTAL,
        kind: MetricKind::Counter,
        unit: "messages",
        labels: &["topic"],
        help: "Messages sent to the dead-letter topic, by the topic they were consumed from.",
    },
];

/// Registers the help text of every metric above with the installed recorder; call after
/// `observability::telemetry::init` so `/metrics` carries `# HELP` lines.
pub fn describe_all() {
    observability::metric_names::describe(REGISTRY);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_follow_the_conventions() {
        let mut names: Vec<&str> = REGISTRY.iter().map(|spec| spec.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len());
        for spec in REGISTRY {
            assert!(spec.name.starts_with("taskwatch_"), "{}", spec.name);
            assert_eq!(spec.kind == MetricKind::Counter, spec.name.ends_with("_total"), "{}", spec.name);
            assert_eq!(spec.kind == MetricKind::Histogram, spec.name.ends_with("_seconds"), "{}", spec.name);
        }
        let theirs: Vec<&str> = observability::metric_names::REGISTRY.iter().map(|spec| spec.name).collect();
        assert!(REGISTRY.iter().all(|spec| !theirs.contains(&spec.name)), "a name clashes with observability's");
    }
}
