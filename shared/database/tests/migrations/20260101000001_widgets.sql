-- A stand-in for a service's first migration. Tables are schema-qualified, as in every service.
CREATE TABLE db_test.widgets (id bigint PRIMARY KEY, name text NOT NULL);
