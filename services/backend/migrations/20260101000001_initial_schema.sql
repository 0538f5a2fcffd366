-- The backend owns the `backend` schema; other services keep their own schemas on the same server.
-- The migrator creates the schema before it creates its bookkeeping table there (see src/store/migrate.rs).

CREATE TABLE backend.tasks (
    id            uuid        PRIMARY KEY,
    owner_id      text        NOT NULL CHECK (length(owner_id) BETWEEN 1 AND 255),
    series_id     uuid        NOT NULL,
    title         text        NOT NULL,
    description   text,
    priority      text        NOT NULL CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    labels        text[]      NOT NULL DEFAULT '{}',
    due_at        timestamptz,
    time_zone     text        NOT NULL,
    -- RFC 5545 RRULE without DTSTART (DTSTART is due_at in time_zone) and where the next occurrence counts from.
    rrule         text,
    rrule_anchor  text        CHECK (rrule_anchor IN ('due', 'completion')),
    -- [{"kind":"before_due","minutes":15} | {"kind":"at","at":"…"}], the events contract's shape.
    reminders     jsonb       NOT NULL DEFAULT '[]',
    status        text        NOT NULL CHECK (status IN ('open', 'completed')),
    completed_at  timestamptz,
    version       bigint      NOT NULL CHECK (version >= 1),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CONSTRAINT completed_tasks_know_when CHECK ((status = 'completed') = (completed_at IS NOT NULL)),
    CONSTRAINT rule_and_anchor_together CHECK ((rrule IS NULL) = (rrule_anchor IS NULL))
);

-- Serves the listing order (due_at NULLS LAST, id) per owner, and keyset pagination over it.
CREATE INDEX tasks_owner_due_id ON backend.tasks (owner_id, due_at, id);
CREATE INDEX tasks_labels ON backend.tasks USING gin (labels);

-- Transactional outbox: written in the same transaction as the change it announces, published by a relay that
-- claims rows with `FOR UPDATE SKIP LOCKED` and a lease (`claimed_until`), so several replicas can relay safely.
CREATE TABLE backend.outbox (
    id             uuid        PRIMARY KEY,             -- = the CloudEvent id (UUIDv7, time-ordered)
    topic          text        NOT NULL,
    message_key    text        NOT NULL,                -- Kafka key: the series id keeps one task's events in order
    event_type     text        NOT NULL,
    payload        jsonb       NOT NULL,                -- the complete CloudEvent
    headers        jsonb       NOT NULL DEFAULT '{}',   -- Kafka headers, e.g. the W3C traceparent
    created_at     timestamptz NOT NULL DEFAULT now(),
    attempts       integer     NOT NULL DEFAULT 0,
    claimed_until  timestamptz,                         -- lease of the relay instance working on the row
    published_at   timestamptz,
    last_error     text
);

-- The relay's work queue: unpublished rows in id (= creation) order; stays small because published rows leave it.
CREATE INDEX outbox_pending ON backend.outbox (id) WHERE published_at IS NULL;

-- Idempotency-Key records: the first outcome of a keyed request, replayed for every retry with the same key.
CREATE TABLE backend.idempotency_keys (
    owner_id     text        NOT NULL,
    key          text        NOT NULL,
    operation    text        NOT NULL,
    fingerprint  bytea       NOT NULL,   -- SHA-256 of operation, target and canonical request body
    task         jsonb       NOT NULL,   -- the task as the first request left it
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, key)
);

CREATE INDEX idempotency_keys_created_at ON backend.idempotency_keys (created_at);

CREATE TABLE backend.notification_settings (
    owner_id     text        PRIMARY KEY,
    email        text,
    webhook_url  text,
    updated_at   timestamptz NOT NULL
);
