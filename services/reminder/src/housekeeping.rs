//! The retention chore: purges old processed-event ids, settled jobs and forgotten tasks once an hour.

use std::time::Duration;

use chrono::Utc;
use observability::ErrorChain;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::store::retention;

const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Purges what is older than `retention` now and then every hour, until `stop` fires.
pub async fn run(pool: PgPool, retention: Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(PURGE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => purge(&pool, retention).await,
        }
    }
}

async fn purge(pool: &PgPool, retention: Duration) {
    let Some(cutoff) = chrono::Duration::from_std(retention).ok().and_then(|age| Utc::now().checked_sub_signed(age))
    else {
        return;
    };
    match retention::purge_before(pool, cutoff).await {
        Ok(purged) => tracing::debug!(?purged, %cutoff, "old reminder data purged"),
        Err(error) => tracing::warn!(error = %ErrorChain(&error), "purging old reminder data failed; will retry"),
    }
}
