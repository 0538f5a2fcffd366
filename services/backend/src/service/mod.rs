//! Use cases: each one validates through the domain and commits through the store in one transaction.

mod error;
mod events;
mod occurrences;
mod precondition;
pub mod settings;
pub mod tasks;

pub use error::TaskError;
pub use occurrences::{NextOccurrence, OccurrenceOutcome};
pub use precondition::Precondition;
pub use settings::SettingsService;
pub use tasks::{Outcome, Page, TaskService};

use chrono::{DateTime, SubsecRound, Utc};

/// Now, at the precision Postgres stores, so a value read back equals the value written.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
