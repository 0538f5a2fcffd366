//! The backend's outbox relay: the shared `outbox` relay on `backend.outbox`, publishing task events.

use messaging::TopicSpec;
use outbox::{Relay, RelayConfig};
use sqlx::PgPool;

use crate::store::outbox::OUTBOX;

/// A relay for `backend.outbox` that creates `task-events` when missing. The producer connects lazily, so this
/// succeeds while the broker is down; spawn [`Relay::run`].
pub fn new(pool: PgPool, config: RelayConfig) -> Result<Relay, messaging::ClientError> {
    Ok(Relay::new(pool, OUTBOX.clone(), config)?.ensuring_topics([TopicSpec::new(events::topics::TASK_EVENTS)]))
}
