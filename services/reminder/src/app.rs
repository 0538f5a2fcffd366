//! Assembles the service for the runtime: the pool, the outbox and its relay, the task-event consumer, the
//! scheduler and housekeeping, with the Postgres and broker checks.

use events::reminder::REMINDER_DUE_V1;
use events::topics::{REMINDERS, TASK_EVENTS};
use messaging::{Subscription, TopicSpec};
use observability::Shutdown;
use observability::metrics::PrometheusHandle;
use outbox::{Outbox, Relay};
use runtime::Service;

use crate::config::Config;
use crate::handler::{SchedulerWake, TaskEventHandler};
use crate::scheduler::Scheduler;
use crate::store::migrations::{SCHEMA, migrator};

/// Where task events this service can never read go, with the reason.
pub const DEAD_LETTER_TOPIC: &str = "task-events.reminder.dlq";

/// Why the service could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The relay's producer could not be created.
    #[error("cannot create the outbox relay's Kafka producer")]
    Producer(#[from] messaging::ClientError),
    /// The dead-letter topic is among the consumed ones.
    #[error("the dead-letter topic must differ from the consumed topics")]
    Subscription,
}

/// The reminder service. Start-up steps: migrations (waiting up to `DATABASE_STARTUP_TIMEOUT` for Postgres), the
/// outbox table, the topics (waiting up to `STARTUP_TIMEOUT` for the broker). Workers: the consumer, the
/// scheduler, the relay, housekeeping and the pool sampler; each finishes what it has in flight at shutdown (the
/// scheduler its claim transaction, the relay its batch, the consumer its message).
pub fn build(config: &Config, metrics: PrometheusHandle) -> Result<Service, BuildError> {
    crate::metrics::describe();
    outbox::metrics::describe(&[REMINDER_DUE_V1]);
    let pool = database::connect(&config.database, crate::SERVICE.name);
    let outbox = Outbox::new(SCHEMA);
    let relay =
        Relay::new(pool.clone(), outbox.clone(), config.relay.clone())?.ensuring_topics([TopicSpec::new(REMINDERS)]);
    let broker = relay.producer().readiness_check(config.base.readiness_timeout);
    let wake = SchedulerWake::new();
    let handler = TaskEventHandler::new(pool.clone(), wake.clone());
    let scheduler = Scheduler::new(pool.clone(), outbox.clone(), config.scheduler, wake);
    let subscription = Subscription::new([TASK_EVENTS], DEAD_LETTER_TOPIC).ok_or(BuildError::Subscription)?;
    let (database, retention) = (config.database.clone(), config.retention);
    let (installed, housekept) = (pool.clone(), pool.clone());
    Ok(Service::new(crate::SERVICE, &config.base, metrics)
        .database(&pool, crate::SERVICE.name)
        .check("kafka", broker)
        .start_step("migrations", async move { database::migrate(&database, SCHEMA, migrator()).await })
        .start_step("outbox table", async move { outbox.install(&installed).await })
        .consume(&config.kafka, subscription, &[REMINDERS], config.startup_timeout, handler)
        .worker("scheduler", |shutdown: Shutdown| scheduler.run(shutdown.token()))
        .worker("outbox relay", |shutdown: Shutdown| relay.run(shutdown.token()))
        .worker("housekeeping", move |shutdown: Shutdown| {
            crate::housekeeping::run(housekept, retention, shutdown.token())
        }))
}
