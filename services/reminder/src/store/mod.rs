//! Postgres, schema `reminder`: the last applied snapshot of each task, its reminder jobs, and the ids of the
//! task events already applied. Migrations are in `services/reminder/migrations`.

pub mod jobs;
pub mod migrations;
pub mod retention;
pub mod tasks;

pub use database::StoreError;
