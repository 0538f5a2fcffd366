-- One row per (reminder event, channel): the delivery log and the delivery worker's queue.
--
-- The unique (event_id, channel) key is what makes a redelivered `reminder.due` event harmless: the consumer
-- inserts with ON CONFLICT DO NOTHING in the transaction after which its Kafka offset is committed.
CREATE TABLE notification.deliveries (
    id              uuid        PRIMARY KEY,
    event_id        uuid        NOT NULL,
    channel         text        NOT NULL CHECK (channel IN ('email', 'webhook')),
    -- The e-mail address or webhook URL as the owner's settings said when the event arrived.
    destination     text        NOT NULL,
    -- The reminder.due CloudEvent as received: the webhook body and the dead letter's payload.
    event           jsonb       NOT NULL,
    -- Kafka key of the dead letter (the task id, like the original event's).
    task_id         uuid        NOT NULL,
    remind_at       timestamptz NOT NULL,
    -- W3C trace context of the consumer span, so the delivery span joins the reminder's trace.
    trace_headers   jsonb       NOT NULL DEFAULT '{}',
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    -- Attempts made so far (a deferral by an open circuit is not an attempt).
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Pending: not to be claimed before this instant. A claim pushes it out by the lease, so it doubles as the
    -- claim's expiry: a worker that dies mid-send lets another take the delivery over after the lease.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- Fencing token of the current claim: a worker whose lease ran out cannot record an outcome any more.
    claim_token     uuid,
    last_error      text,
    -- Set when the delivery was given up on (attempts exhausted or refused for good) while its dead letter is not
    -- yet acknowledged by the broker: the next claim publishes the letter instead of sending again.
    gave_up_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    CONSTRAINT deliveries_event_channel UNIQUE (event_id, channel),
    CONSTRAINT deliveries_finished_iff_not_pending CHECK ((status = 'pending') = (finished_at IS NULL)),
    CONSTRAINT deliveries_dead_were_given_up CHECK (status <> 'dead' OR gave_up_at IS NOT NULL),
    CONSTRAINT deliveries_sent_were_not_given_up CHECK (status <> 'sent' OR gave_up_at IS NULL)
);

-- The worker's claim: pending rows that are due, oldest due first.
CREATE INDEX deliveries_due ON notification.deliveries (next_attempt_at) WHERE status = 'pending';

-- The retention purge of finished rows.
CREATE INDEX deliveries_finished_at ON notification.deliveries (finished_at) WHERE status <> 'pending';
