-- The write path of `POST /v1/tasks` without HTTP: the ceiling `cargo xtask bench` compares the API against.
--
-- Same transaction as services/backend/src/service/tasks.rs `TaskService::create`: the task row
-- (store/tasks.rs `insert`) and its outbox event (store/outbox.rs `insert`), with the same columns and values
-- shaped like the k6 create scenario's (bench/k6/tasks.js) and a CloudEvent payload of the same size and keys.
--
-- Differences, all of them making this ceiling lower, never higher: ids are UUIDv7 built in SQL (the backend
-- builds them in Rust), and the first INSERT returns them to pgbench (`RETURNING … \gset`) so the second can
-- use them; neither adds a round trip. Run with `pgbench -M prepared` (the backend's driver prepares too).

\set user random(1, 32)
\set hours random(1, 720)
\set priority random(1, 4)
\set label random(0, 7)

BEGIN;

INSERT INTO backend.tasks (id, owner_id, series_id, title, description, priority, labels, due_at, time_zone, rrule, rrule_anchor, reminders, status, completed_at, version, created_at, updated_at)
VALUES (
    (lpad(to_hex(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || '7' || substr(md5(random()::text), 1, 3) || '8' || substr(md5(random()::text), 1, 15))::uuid,
    'pgbench-' || :user,
    (lpad(to_hex(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || '7' || substr(md5(random()::text), 1, 3) || '8' || substr(md5(random()::text), 1, 15))::uuid,
    'Benchmark task ' || :user || '-' || :hours,
    'Created by the pgbench ceiling of cargo xtask bench.',
    (ARRAY['low', 'medium', 'high', 'urgent'])[:priority],
    ARRAY['bench', 'vu-' || :label],
    now() + make_interval(hours => :hours),
    'Europe/Berlin',
    NULL,
    NULL,
    '[{"kind": "before_due", "minutes": 15}]',
    'open',
    NULL,
    1,
    now(),
    now()
)
RETURNING id AS task_id,
          series_id AS series_id,
          title AS title,
          owner_id AS owner_id,
          due_at AS due_at,
          priority AS priority_name,
          created_at AS created_at,
          (lpad(to_hex(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') || '7' || substr(md5(random()::text), 1, 3) || '8' || substr(md5(random()::text), 1, 15))::uuid AS event_id
\gset

INSERT INTO backend.outbox (id, topic, message_key, event_type, payload, headers, created_at)
VALUES (
    :event_id::uuid,
    'task-events',
    :series_id,
    'task.created.v1',
    ('{"id": "' || :event_id || '", "data": {"task": {"id": "' || :task_id || '", "title": "' || :title
        || '", "due_at": "' || :due_at || '", "labels": ["bench", "vu-' || :label || '"], "status": "open", "version": 1, "owner_id": "'
        || :owner_id || '", "priority": "' || :priority_name || '", "reminders": [{"kind": "before_due", "minutes": 15}], "series_id": "'
        || :series_id || '", "time_zone": "Europe/Berlin", "created_at": "' || :created_at || '", "recurrence": null, "updated_at": "'
        || :created_at || '", "description": "Created by the pgbench ceiling of cargo xtask bench.", "completed_at": null}, "change": "created"}, "time": "'
        || :created_at || '", "type": "task.created.v1", "source": "/taskwatch/backend", "subject": "' || :task_id
        || '", "specversion": "1.0", "datacontenttype": "application/json"}')::jsonb,
    '{"tracestate": "", "traceparent": "00-076484daaba61ee1592f69a1eef3de22-8ca70bd0795b8bf4-01"}',
    now()
);

END;
