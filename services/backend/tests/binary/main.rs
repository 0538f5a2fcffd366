//! Tests of the real `backend` binary as a process: its logs, traces, exit codes and commands. Telemetry is
//! initialised once per process, so anything about logs and exported spans is checked here, not in-process.

mod spawned;

mod cli;
mod telemetry;
