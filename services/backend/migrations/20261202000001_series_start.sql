-- Every occurrence of a recurring series carries the series' start (RFC 5545 DTSTART, seen in time_zone): its
-- dates are computed from there, so a day shifted out of a DST gap no longer shifts the rest of the series, and
-- COUNT counts the occurrences of the whole series. Before, each occurrence was the start of the rest of its
-- series (COUNT held what remained), which is exactly a series starting at its own due time.
ALTER TABLE backend.tasks ADD COLUMN series_start timestamptz;

UPDATE backend.tasks SET series_start = date_trunc('second', COALESCE(due_at, created_at)) WHERE rrule IS NOT NULL;

ALTER TABLE backend.tasks
    ADD CONSTRAINT recurring_tasks_know_their_series_start CHECK ((rrule IS NULL) = (series_start IS NULL));
