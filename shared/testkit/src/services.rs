//! The services of the system, in one list for the end-to-end tests and `cargo xtask`: their names (package =
//! binary), README ports and the topics their consumer groups read.
//!
//! The list is one table, [`services!`]: `cargo xtask new-service` adds a generated service's row to it, so the
//! end-to-end stack, the native stack and the telemetry contract include the new service without a hand edit.

/// Declares [`Service`] from one row per service, in start order: `Variant = "name", port N, reads TOPIC, SHAPE;`
/// with `reads -` for a service without a consumer group, and SHAPE `template` for a service configured as the
/// service template is (see [`Service::is_template_shaped`]) or `own` for one with a configuration of its own.
macro_rules! services {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal, port $port:literal, reads $topic:tt, $shape:ident;)+) => {
        /// A service of the system; its binary has the package's name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Service {
            $($(#[doc = $doc])* $variant,)+
        }

        impl Service {
            /// In start order: the backend (whose API the others call) first.
            pub const ALL: &'static [Service] = &[$(Service::$variant),+];

            /// The cargo package, binary and service name.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Service::$variant => $name,)+
                }
            }

            /// The port in the service's README, where it listens unless `PORT` says otherwise.
            pub const fn default_port(self) -> u16 {
                match self {
                    $(Service::$variant => $port,)+
                }
            }

            /// The topic the service's consumer group reads; `None` for a service without one.
            pub const fn consumed_topic(self) -> Option<&'static str> {
                match self {
                    $(Service::$variant => services!(@topic $topic),)+
                }
            }

            /// Whether the service is configured as a service generated from the template is: its database and
            /// its broker, nothing else of the stack's. The stacks configure such a service without knowing it
            /// by name.
            pub const fn is_template_shaped(self) -> bool {
                match self {
                    $(Service::$variant => services!(@shape $shape),)+
                }
            }
        }
    };
    (@topic -) => { None };
    (@topic $topic:literal) => { Some($topic) };
    (@shape template) => { true };
    (@shape own) => { false };
}

services! {
    /// The task API.
    Backend = "backend", port 8080, reads -, own;
    /// Fires reminder jobs.
    Reminder = "reminder", port 8081, reads "task-events", own;
    /// Continues recurring series.
    RecurringTask = "recurring-task", port 8082, reads "task-events", own;
    /// Delivers reminders.
    Notification = "notification", port 8083, reads "reminders", own;
}

impl Service {
    /// Each consumer service with the topic its group reads: after a crash the group must own all of it again.
    pub fn consumers() -> impl Iterator<Item = (Service, &'static str)> {
        Service::ALL.iter().filter_map(|service| service.consumed_topic().map(|topic| (*service, topic)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ports_and_topics_are_distinct_and_in_start_order() {
        assert_eq!(Service::ALL[0], Service::Backend, "the backend starts first");
        let names: std::collections::BTreeSet<_> = Service::ALL.iter().map(|service| service.name()).collect();
        let ports: std::collections::BTreeSet<_> = Service::ALL.iter().map(|service| service.default_port()).collect();
        assert_eq!((names.len(), ports.len()), (Service::ALL.len(), Service::ALL.len()));
        let consumers: Vec<_> = Service::consumers().map(|(service, topic)| (service.name(), topic)).collect();
        assert!(consumers.contains(&("notification", "reminders")), "{consumers:?}");
        assert!(!consumers.iter().any(|(name, _)| *name == "backend"));
    }
}
