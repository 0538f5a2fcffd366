//! Notification settings use cases.

use sqlx::PgPool;

use super::now;
use crate::domain::{NotificationSettings, NotificationSettingsInput, OwnerId, Violations, WebhookPolicy};
use crate::store::{StoreError, settings};

/// Why a notification-settings use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// An e-mail address or webhook URL was refused; every violation is listed (422).
    #[error("invalid settings: {0}")]
    Invalid(Violations),
    /// The database failed (503 when it is unreachable or saturated, 500 otherwise).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The notification-settings use cases: reading and replacing one user's delivery channels.
#[derive(Debug, Clone)]
pub struct SettingsService {
    pool: PgPool,
    webhook_policy: WebhookPolicy,
}

impl SettingsService {
    /// Use cases over `pool`, saving only the webhook destinations `webhook_policy` allows.
    pub fn new(pool: PgPool, webhook_policy: WebhookPolicy) -> Self {
        Self { pool, webhook_policy }
    }

    /// The saved settings, or the defaults (no channel) when none were saved.
    pub async fn get(&self, owner: &OwnerId) -> Result<NotificationSettings, SettingsError> {
        let mut conn = acquire(&self.pool).await?;
        Ok(settings::find(&mut conn, owner).await?.unwrap_or_default())
    }

    /// Replaces the settings as a whole.
    pub async fn put(
        &self,
        owner: &OwnerId,
        input: &NotificationSettingsInput,
    ) -> Result<NotificationSettings, SettingsError> {
        let valid = NotificationSettings::parse(input, self.webhook_policy).map_err(SettingsError::Invalid)?;
        let mut conn = acquire(&self.pool).await?;
        settings::upsert(&mut conn, owner, &valid, now()).await?;
        Ok(valid)
    }
}

async fn acquire(pool: &PgPool) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, StoreError> {
    pool.acquire().await.map_err(|source| StoreError::Database { operation: "acquire connection", source })
}
