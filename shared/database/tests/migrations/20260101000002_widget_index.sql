CREATE INDEX widgets_name ON db_test.widgets (name);
