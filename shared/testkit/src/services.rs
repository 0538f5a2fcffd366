//! The services of the system, in one list for the end-to-end tests and `cargo xtask`: their names (package =
//! binary), README ports and the topics their consumer groups read.

/// A service of the system; its binary has the package's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// The task API.
    Backend,
    /// Fires reminder jobs.
    Reminder,
    /// Continues recurring series.
    RecurringTask,
    /// Delivers reminders.
    Notification,
}

impl Service {
    /// In start order: the backend (whose API the others call) first.
    pub const ALL: [Service; 4] = [Service::Backend, Service::Reminder, Service::RecurringTask, Service::Notification];

    /// Each consumer service with the topic its group reads: after a crash the group must own all of it again.
    pub const CONSUMERS: [(Service, &'static str); 3] = [
        (Service::Notification, "reminders"),
        (Service::Reminder, "task-events"),
        (Service::RecurringTask, "task-events"),
    ];

    /// The cargo package, binary and service name.
    pub const fn name(self) -> &'static str {
        match self {
            Service::Backend => "backend",
            Service::Reminder => "reminder",
            Service::RecurringTask => "recurring-task",
            Service::Notification => "notification",
        }
    }

    /// The port in the service's README, where it listens unless `PORT` says otherwise.
    pub const fn default_port(self) -> u16 {
        match self {
            Service::Backend => 8080,
            Service::Reminder => 8081,
            Service::RecurringTask => 8082,
            Service::Notification => 8083,
        }
    }
}
