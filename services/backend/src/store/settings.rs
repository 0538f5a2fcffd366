//! `backend.notification_settings`: one row per user who saved settings.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::error::{Context, StoreError};
use crate::domain::OwnerId;
use crate::domain::notification::{EmailAddress, NotificationSettings, WebhookPolicy, WebhookUrl};

#[derive(Debug, sqlx::FromRow)]
struct SettingsRow {
    email: Option<String>,
    webhook_url: Option<String>,
}

/// The saved settings, or `None` if the user never saved any.
pub async fn find(conn: &mut PgConnection, owner: &OwnerId) -> Result<Option<NotificationSettings>, StoreError> {
    let row: Option<SettingsRow> =
        sqlx::query_as("SELECT email, webhook_url FROM backend.notification_settings WHERE owner_id = $1")
            .bind(owner.as_str())
            .fetch_optional(conn)
            .await
            .context("find notification settings")?;
    let corrupt = |reason: String| StoreError::CorruptRow {
        table: "backend.notification_settings",
        id: owner.as_str().to_owned(),
        reason,
    };
    row.map(|row| {
        let email = row.email.as_deref().map(EmailAddress::parse).transpose().map_err(|v| corrupt(v.to_string()))?;
        // What was accepted when it was saved stays readable if the policy is tightened later: the notification
        // service guards destinations again when it connects.
        let webhook_url = row
            .webhook_url
            .as_deref()
            .map(|raw| WebhookUrl::parse(raw, WebhookPolicy::AllowPrivate))
            .transpose()
            .map_err(|v| corrupt(v.to_string()))?;
        Ok(NotificationSettings { email, webhook_url })
    })
    .transpose()
}

/// Saves `settings` as the owner's whole settings, replacing any saved before.
pub async fn upsert(
    conn: &mut PgConnection,
    owner: &OwnerId,
    settings: &NotificationSettings,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO backend.notification_settings (owner_id, email, webhook_url, updated_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (owner_id) DO UPDATE SET email = EXCLUDED.email, webhook_url = EXCLUDED.webhook_url, \
         updated_at = EXCLUDED.updated_at",
    )
    .bind(owner.as_str())
    .bind(settings.email.as_ref().map(EmailAddress::as_str))
    .bind(settings.webhook_url.as_ref().map(WebhookUrl::as_str))
    .bind(now)
    .execute(conn)
    .await
    .context("upsert notification settings")?;
    Ok(())
}
