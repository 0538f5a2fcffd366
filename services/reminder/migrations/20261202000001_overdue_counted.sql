-- Whether a job has been counted in `taskwatch_reminders_overdue_total`: once it is pending 30 s past its time,
-- fired later than that, or missed, whichever comes first. The reminder-timeliness SLO counts a reminder that
-- never fires as a bad event through this, exactly once, whichever replica sees it.
ALTER TABLE reminder.reminder_jobs ADD COLUMN overdue_counted boolean NOT NULL DEFAULT false;
