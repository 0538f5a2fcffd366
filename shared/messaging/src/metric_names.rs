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

/// Gauge · partitions · `topic`. Partitions of a subscribed topic this member owns now (0 when none), sampled
/// every `KAFKA_LAG_INTERVAL`. Summed over a group's live members and compared with
/// [`CONSUMER_TOPIC_PARTITIONS`], it shows partitions that no live member owns.
pub const CONSUMER_ASSIGNED_PARTITIONS: &str = "taskwatch_consumer_assigned_partitions";
/// Gauge · partitions · `topic`. Partitions the subscribed topic has, from the broker's metadata, sampled with
/// [`CONSUMER_ASSIGNED_PARTITIONS`].
pub const CONSUMER_TOPIC_PARTITIONS: &str = "taskwatch_consumer_topic_partitions";
/// Gauge · seconds (Unix time) · `topic`. When this consumer last finished a message from the topic (handled
/// or dead-lettered); the consumer's start until its first message, so a consumer stuck from the start ages too.
pub const CONSUMER_LAST_PROCESSED_TIMESTAMP_SECONDS: &str = "taskwatch_consumer_last_processed_timestamp_seconds";
/// Counter · rejoins. Times this consumer left its group and joined again because it had owned nothing for
/// longer than twice the session timeout while the group owed it partitions (the group guard of
/// `consumer::group_watch`). Never increases on a healthy broker.
pub const CONSUMER_REJOINS_TOTAL: &str = "taskwatch_consumer_rejoins_total";

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
    MetricSpec {
        name: CONSUMER_ASSIGNED_PARTITIONS,
        kind: MetricKind::Gauge,
        unit: "partitions",
        labels: &["topic"],
        help: "Partitions of a subscribed topic this consumer owns now.",
    },
    MetricSpec {
        name: CONSUMER_TOPIC_PARTITIONS,
        kind: MetricKind::Gauge,
        unit: "partitions",
        labels: &["topic"],
        help: "Partitions a subscribed topic has, from the broker's metadata.",
    },
    MetricSpec {
        name: CONSUMER_LAST_PROCESSED_TIMESTAMP_SECONDS,
        kind: MetricKind::Gauge,
        unit: "seconds",
        labels: &["topic"],
        help: "Unix time this consumer last finished a message from the topic (its start until the first one).",
    },
    MetricSpec {
        name: CONSUMER_REJOINS_TOTAL,
        kind: MetricKind::Counter,
        unit: "rejoins",
        labels: &[],
        help: "Times the consumer left and rejoined its group after owning nothing while the group owed it partitions.",
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
            // Durations and points in time are in seconds and say so; histograms are always durations.
            assert_eq!(spec.unit == "seconds", spec.name.ends_with("_seconds"), "{}", spec.name);
            assert!(spec.kind != MetricKind::Histogram || spec.unit == "seconds", "{}", spec.name);
        }
        let theirs: Vec<&str> = observability::metric_names::REGISTRY.iter().map(|spec| spec.name).collect();
        assert!(REGISTRY.iter().all(|spec| !theirs.contains(&spec.name)), "a name clashes with observability's");
    }
}
