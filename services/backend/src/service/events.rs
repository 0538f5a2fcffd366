//! Building the outbox row for a task change.

use events::task::{TaskChange, TaskEvent};
use events::topics::TASK_EVENTS;

use crate::domain::Task;
use crate::snapshot::to_snapshot;
use crate::store::outbox::OutboxMessage;

/// The CloudEvent announcing `change` of `task` (for a deletion: the task as it was), carrying the current
/// trace context so the relay can continue the trace when it publishes.
pub fn outbox_message(change: TaskChange, task: &Task) -> Result<OutboxMessage, serde_json::Error> {
    let event = TaskEvent { change, task: to_snapshot(task) };
    let key = event.partition_key();
    let event = event.into_cloud_event();
    Ok(OutboxMessage {
        id: event.id,
        topic: TASK_EVENTS,
        key,
        event_type: event.event_type.clone(),
        payload: event.to_json()?,
        headers: observability::trace_headers::current(),
        created_at: event.time,
    })
}
