-- One row per occurrence the internal API created for a recurring series: the primary key makes a second task
-- for the same (series, instant) impossible, whichever Idempotency-Key a retry carries. Rows outlive their task
-- on purpose (no foreign key): an occurrence the user deleted must not come back when an old event is redelivered.
CREATE TABLE backend.series_occurrences (
    series_id    uuid        NOT NULL,
    occurs_at    timestamptz NOT NULL,   -- the occurrence's due_at
    task_id      uuid        NOT NULL,   -- the task created for it (may since have been deleted)
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (series_id, occurs_at)
);
