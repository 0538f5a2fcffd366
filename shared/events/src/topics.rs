//! Kafka topic names. Retry topics, if any, exist for notifications only, never for task state.

/// Every change to a task, keyed by the owner's id so one user's changes (a series' included) keep their order.
pub const TASK_EVENTS: &str = "task-events";
/// `reminder.due` events from the reminder service.
pub const REMINDERS: &str = "reminders";
/// Notifications that exhausted their retries, with the reason.
pub const NOTIFICATIONS_DLQ: &str = "notifications.dlq";
