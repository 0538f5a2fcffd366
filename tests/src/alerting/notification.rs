//! A notification as Alertmanager's webhook integration delivers it (payload version 4).

use std::collections::BTreeMap;

use serde_json::Value;
use testkit::webhook::ReceivedRequest;

use super::server::labels_of;

/// One webhook call from Alertmanager: which receiver (the test copy's URL path), and the group's alerts.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The receiver's name, from the URL path the test copy gave it.
    pub receiver: String,
    /// `firing` while any alert of the group fires, else `resolved`.
    pub status: String,
    /// The group's alerts, firing and resolved, in the order Alertmanager sent them.
    pub alerts: Vec<NotifiedAlert>,
    /// The whole payload, for the fields not broken out here (`groupLabels`, `commonAnnotations`, …).
    pub body: Value,
}

/// One alert in a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifiedAlert {
    /// `firing` or `resolved`.
    pub status: String,
    /// The alert's labels, `alertname` included.
    pub labels: BTreeMap<String, String>,
    /// The alert's annotations (`summary`, `runbook_url`, …), as sent to the templates.
    pub annotations: BTreeMap<String, String>,
}

impl NotifiedAlert {
    /// Whether every `name=value` pair is among its labels.
    pub fn has_labels(&self, labels: &[(&str, &str)]) -> bool {
        labels.iter().all(|(name, value)| self.labels.get(*name).is_some_and(|actual| actual == value))
    }
}

impl Notification {
    /// `None` when the request is not an Alertmanager webhook notification.
    pub fn parse(request: &ReceivedRequest) -> Option<Self> {
        let body = request.json()?;
        let path = request.path.split('?').next().unwrap_or_default();
        let alerts = body
            .get("alerts")?
            .as_array()?
            .iter()
            .map(|alert| NotifiedAlert {
                status: alert["status"].as_str().unwrap_or_default().to_owned(),
                labels: labels_of(&alert["labels"]),
                annotations: labels_of(&alert["annotations"]),
            })
            .collect();
        Some(Self {
            receiver: path.trim_start_matches('/').to_owned(),
            status: body.get("status")?.as_str()?.to_owned(),
            alerts,
            body,
        })
    }

    /// Whether this notification went to `receiver` and carries an alert in `status` with `labels`.
    pub fn reports(&self, receiver: &str, status: &str, labels: &[(&str, &str)]) -> bool {
        self.receiver == receiver && self.alerts.iter().any(|alert| alert.status == status && alert.has_labels(labels))
    }

    /// Whether any alert in it has `labels`, whatever its status or receiver.
    pub fn mentions(&self, labels: &[(&str, &str)]) -> bool {
        self.alerts.iter().any(|alert| alert.has_labels(labels))
    }
}
