//! The task domain: types and rules that know nothing of HTTP or SQL.

pub mod listing;
pub mod notification;
pub mod occurrence;
pub mod patch;
pub mod recurrence;
pub mod reminders;
pub mod task;
pub mod text;
pub mod violations;

pub use listing::{ListQuery, PageSize, Position, TaskFilter};
pub use notification::{NotificationSettings, NotificationSettingsInput, WebhookPolicy};
pub use occurrence::next_occurrence;
pub use patch::{Nullable, TaskPatch};
pub use recurrence::{Recurrence, RecurrenceAnchor};
pub use reminders::{Reminder, ReminderInput, Reminders};
pub use task::{
    Completion, InvalidStoredTask, OwnerId, Priority, RecurrenceInput, StoredTask, Task, TaskId, TaskSpec,
    TaskSpecInput, TaskStatus, TransitionError, Version,
};
pub use violations::{Violation, Violations};
