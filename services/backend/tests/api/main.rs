//! API tests: the real router over real HTTP against a real Postgres (testkit).

mod harness;

mod auth;
mod bola;
mod concurrency;
mod contract;
mod happy_path;
mod health;
mod idempotency;
mod internal;
mod limits;
mod metrics;
mod migrations;
mod outbox;
mod pagination;
mod relay;
mod series;
mod validation;
