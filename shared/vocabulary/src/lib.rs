//! The one vocabulary of a task: each concept is one type here, whose name is the same string in the HTTP API
//! (JSON), the `task.*` events (JSON), and the database (text columns): `low`, `open`, `due`, … . A new value is
//! added once, here; the API schema, the event contract and the stored form follow.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Declares a closed vocabulary: a `Copy` enum with snake-case serde names, `ALL`, `as_str`, `from_name`,
/// `Display` and `FromStr`.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$variant_meta:meta])* $variant:ident => $text:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$variant_meta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name used on the wire and in the database.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value with that name, if any.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|value| value.as_str() == name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(name: &str) -> Result<Self, UnknownName> {
                Self::from_name(name).ok_or_else(|| UnknownName { kind: stringify!($name), name: name.to_owned() })
            }
        }
    };
}

vocabulary! {
    /// How urgent a task is; ordered from `low` to `urgent`.
    #[derive(PartialOrd, Ord, Default)]
    Priority {
        /// Whenever.
        Low => "low",
        /// The default.
        #[default]
        Medium => "medium",
        /// Soon.
        High => "high",
        /// Now.
        Urgent => "urgent",
    }
}

vocabulary! {
    /// Where a task is in its lifecycle.
    TaskStatus {
        /// Still to do.
        Open => "open",
        /// Done.
        Completed => "completed",
    }
}

vocabulary! {
    /// Where the next occurrence of a recurring task is counted from.
    #[derive(Default)]
    RecurrenceAnchor {
        /// The schedule of due dates, however late the task was completed (the default).
        #[default]
        Due => "due",
        /// The moment the task was completed.
        Completion => "completion",
    }
}

/// When to remind: some minutes before the due time, or at a fixed instant. Stored and sent as
/// `{"kind": "before_due", "minutes": 15}` or `{"kind": "at", "at": "2026-01-01T09:00:00Z"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reminder {
    /// `minutes` before the task's due time.
    BeforeDue {
        /// How long before.
        minutes: u32,
    },
    /// At `at`, whatever the due time.
    At {
        /// The instant.
        at: DateTime<Utc>,
    },
}

/// A name that is not one of a vocabulary's values (a corrupt row, a hand-edited event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// Which vocabulary (`Priority`, …).
    pub kind: &'static str,
    /// The name that was given.
    pub name: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a {} (expected one of its names)", self.name, self.kind)
    }
}

impl std::error::Error for UnknownName {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The name is the serde name, in both directions, for every value of every vocabulary.
    fn round_trips<T>(values: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr + Serialize + for<'de> Deserialize<'de>,
    {
        for &value in values {
            let name = value.to_string();
            let json = serde_json::to_string(&value).expect("serialise");
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<T>(&json).expect("deserialise"), value);
            assert!(name.parse::<T>().is_ok_and(|parsed| parsed == value), "{name}");
        }
    }

    #[test]
    fn every_name_is_its_serde_name() {
        round_trips(Priority::ALL);
        round_trips(TaskStatus::ALL);
        round_trips(RecurrenceAnchor::ALL);
    }

    #[test]
    fn names_are_the_documented_ones() {
        let names = |all: &[&'static str]| all.join(",");
        assert_eq!(names(&Priority::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>()), "low,medium,high,urgent");
        assert_eq!(names(&TaskStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()), "open,completed");
        assert_eq!(names(&RecurrenceAnchor::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>()), "due,completion");
        assert_eq!(Priority::default(), Priority::Medium);
        assert_eq!(RecurrenceAnchor::default(), RecurrenceAnchor::Due);
        assert!(Priority::Low < Priority::Urgent);
    }

    #[test]
    fn reminders_keep_their_tagged_form() {
        let before = serde_json::to_value(Reminder::BeforeDue { minutes: 15 }).expect("serialise");
        assert_eq!(before, serde_json::json!({ "kind": "before_due", "minutes": 15 }));
        let at: Reminder = serde_json::from_value(serde_json::json!({ "kind": "at", "at": "2026-01-01T09:00:00Z" }))
            .expect("deserialise");
        assert!(matches!(at, Reminder::At { .. }));
    }

    #[test]
    fn an_unknown_name_says_what_was_expected() {
        let error = "critical".parse::<Priority>().unwrap_err();
        assert_eq!(error.to_string(), "`critical` is not a Priority (expected one of its names)");
        assert!(serde_json::from_str::<TaskStatus>("\"done\"").is_err());
    }
}
