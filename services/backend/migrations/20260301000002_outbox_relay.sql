-- The relay keeps one key's events in order: it only claims a row when no older unpublished row of the same key is
-- leased (being published or waiting for a retry). This index answers that question.
CREATE INDEX outbox_pending_by_key ON backend.outbox (message_key, created_at, id) WHERE published_at IS NULL;

-- Serves the retention purge of published rows.
CREATE INDEX outbox_published_at ON backend.outbox (published_at) WHERE published_at IS NOT NULL;

-- Wakes the relay when outbox rows commit: NOTIFY is delivered at commit (never for a rolled-back insert), and
-- Postgres folds identical notifications of one transaction into one.
CREATE FUNCTION backend.notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('backend_outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON backend.outbox FOR EACH STATEMENT EXECUTE FUNCTION backend.notify_outbox();
