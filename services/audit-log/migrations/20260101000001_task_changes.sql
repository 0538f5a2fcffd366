-- The audit-log service's own tables. Nothing outside the `audit_log` schema is read or written.

-- Every task change, once (by its CloudEvent id), as it happened. Append-only: a trigger refuses every UPDATE;
-- the retention job deletes whole records once they are older than AUDIT_RETENTION.
CREATE TABLE audit_log.task_changes (
    event_id      uuid        PRIMARY KEY,               -- the CloudEvent id: a redelivery is not a second record
    task_id       uuid        NOT NULL,
    owner_id      text        NOT NULL,
    change        text        NOT NULL,                  -- created | updated | completed | reopened | deleted
    task_version  bigint      NOT NULL,                  -- the task's version after the change
    actor         text        NOT NULL,                  -- who made the change (see the README)
    occurred_at   timestamptz NOT NULL,                  -- when it was made: the event's time
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    before_known  boolean     NOT NULL,                  -- false when the task's earlier state was never seen here
    fields        jsonb       NOT NULL                   -- {"field": {"before": …, "after": …}} for each changed field
);

CREATE INDEX task_changes_history ON audit_log.task_changes (task_id, occurred_at, event_id);
CREATE INDEX task_changes_occurred_at ON audit_log.task_changes (occurred_at);

CREATE FUNCTION audit_log.refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log.task_changes is append-only: a record is never updated';
END
$$;

CREATE TRIGGER task_changes_append_only
    BEFORE UPDATE ON audit_log.task_changes
    FOR EACH ROW EXECUTE FUNCTION audit_log.refuse_update();

-- The last state seen of each live task, to tell what its next change changed. A deleted task's row goes.
CREATE TABLE audit_log.task_states (
    task_id   uuid    PRIMARY KEY,
    version   bigint  NOT NULL,
    snapshot  jsonb   NOT NULL
);
