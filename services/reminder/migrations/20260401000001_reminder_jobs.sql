-- The reminder service's own tables. Nothing outside the `reminder` schema is read or written.

-- The last applied snapshot of each task the service heard of: what a fired reminder tells the recipient, and the
-- version against which a redelivered or out-of-order event is judged stale.
CREATE TABLE reminder.tasks (
    task_id     uuid        PRIMARY KEY,
    series_id   uuid        NOT NULL,
    owner_id    text        NOT NULL,
    title       text        NOT NULL,
    due_at      timestamptz,
    time_zone   text        NOT NULL,
    version     bigint      NOT NULL,
    deleted     boolean     NOT NULL DEFAULT false,  -- a tombstone: events after a deletion change nothing
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per reminder per occurrence (each occurrence of a recurring task is its own task).
CREATE TABLE reminder.reminder_jobs (
    id             uuid        PRIMARY KEY,           -- UUIDv7; `job_id` of the reminder.due event
    task_id        uuid        NOT NULL REFERENCES reminder.tasks (task_id) ON DELETE CASCADE,
    reminder       text        NOT NULL,              -- which reminder: `before_due:<minutes>` or `at`
    remind_at      timestamptz NOT NULL,
    state          text        NOT NULL DEFAULT 'pending'
                               CHECK (state IN ('pending', 'fired', 'missed', 'cancelled')),
    trace_context  jsonb       NOT NULL DEFAULT '{}', -- traceparent/tracestate of the event that planned the job
    created_at     timestamptz NOT NULL DEFAULT now(),
    settled_at     timestamptz,                       -- when it left `pending`
    UNIQUE (task_id, reminder, remind_at),
    CHECK ((state = 'pending') = (settled_at IS NULL))
);

-- The scheduler's queue: pending jobs by instant. Small, because settled jobs leave it.
CREATE INDEX reminder_jobs_pending ON reminder.reminder_jobs (remind_at) WHERE state = 'pending';

-- Task events already applied, by CloudEvent id: a redelivered event changes nothing.
CREATE TABLE reminder.processed_events (
    event_id      uuid        PRIMARY KEY,
    processed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX processed_events_processed_at ON reminder.processed_events (processed_at);
