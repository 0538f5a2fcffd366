//! BENCHMARKS.md: what a run measured, rendered as Markdown, with the verdict on each target.
//!
//! Everything here is computed from the run except the section between [`NOTES_BEGIN`] and [`NOTES_END`]:
//! profiling findings written by hand, carried over from the previous file so a re-run does not erase them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use testkit::services::PRODUCTION_TRACES_SAMPLER_RATIO;

use super::ceiling;
use super::cpu::{CpuShares, Role};
use super::k6::{Endpoint, Latencies, LoadSummary};
use super::machine::{Machine, Versions};
use super::pgbench::PgbenchResult;
#[cfg(test)]
use super::pipeline::ServiceMemory;
use super::pipeline::{EventLatencies, PipelineLoad, PipelineRun};
use super::server::Memory;
use super::sink::SinkTotals;
use super::under_test::Mode;

pub const NOTES_BEGIN: &str = "<!-- notes:begin (kept by `cargo xtask bench`; edit freely) -->";
pub const NOTES_END: &str = "<!-- notes:end -->";

/// Above this share of the CPU taken by processes outside the bench, a run's figures are not the backend's.
pub const OTHER_CPU_WARNING: f64 = 0.10;

/// The targets for two cores.
pub const CREATE_SHARE_OF_CEILING_MIN: f64 = 0.75;
pub const MIXED_P99_MAX_MS: f64 = 10.0;
/// The backend's CPU per request on `get` and `list` over the framework ceiling's.
pub const FRAMEWORK_CPU_RATIO_MAX: f64 = 1.3;
/// Throughput telemetry may cost, per endpoint, at the production defaults and with everything traced.
pub const PRODUCTION_TELEMETRY_COST_MAX: f64 = 0.03;
pub const TRACED_TELEMETRY_COST_MAX: f64 = 0.10;
pub const IDLE_MEMORY_MAX_BYTES: u64 = 30 * 1_000_000;
pub const LOADED_MEMORY_MAX_BYTES: u64 = 100 * 1_000_000;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `--quick`: the short CI run.
    pub quick: bool,
    /// Closed-loop rounds per endpoint and mode.
    pub rounds: u32,
    /// Length of one closed-loop round.
    pub endpoint_duration: Duration,
    pub mixed_duration: Duration,
    pub warm_up: Duration,
    pub rate: u32,
    pub vus: u32,
    pub pgbench_duration: Duration,
    pub database_connections: u32,
    pub scrape_interval: Duration,
    pub pipeline: PipelineLoad,
}

/// One load run and where the CPU went meanwhile.
#[derive(Debug, Clone)]
pub struct LoadRun {
    pub summary: LoadSummary,
    pub cpu: CpuShares,
}

/// Proof that a telemetry mode was what it claims: what the backend logged and exported.
#[derive(Debug, Clone)]
pub struct TelemetryEvidence {
    pub log_lines: u64,
    pub log_bytes: u64,
    /// Requests sent in this mode, warm-up included (each is one server span).
    pub requests_sent: u64,
    /// `None` when telemetry was off (no sink ran).
    pub sink: Option<SinkTotals>,
}

/// A backend's resident memory idle after start and after its loads.
#[derive(Debug, Clone, Copy)]
pub struct MemoryUse {
    pub idle: Memory,
    pub loaded: Memory,
}

/// The rounds of one closed-loop scenario in one mode.
#[derive(Debug, Clone, Default)]
pub struct Rounds {
    pub runs: Vec<LoadRun>,
}

impl Rounds {
    /// Requests over the time they were in flight, all rounds together.
    pub fn throughput(&self, endpoint: Endpoint) -> Option<f64> {
        let requests: u64 =
            self.runs.iter().filter_map(|run| run.summary.by_endpoint.get(&endpoint)).map(|l| l.requests).sum();
        let seconds: f64 = self.runs.iter().map(|run| run.summary.active_window.as_secs_f64()).sum();
        (seconds > 0.0).then(|| requests as f64 / seconds)
    }

    /// Each round's throughput.
    pub fn round_throughputs(&self, endpoint: Endpoint) -> Vec<f64> {
        self.runs.iter().filter_map(|run| run.summary.throughput(endpoint)).collect()
    }

    /// Half the range of the rounds' throughputs relative to their mean: the run-to-run noise.
    pub fn spread(&self, endpoint: Endpoint) -> Option<f64> {
        let rounds = self.round_throughputs(endpoint);
        if rounds.len() < 2 {
            return None;
        }
        let mean = rounds.iter().sum::<f64>() / rounds.len() as f64;
        let (low, high) = rounds.iter().fold((f64::MAX, f64::MIN), |(low, high), x| (low.min(*x), high.max(*x)));
        (mean > 0.0).then(|| (high - low) / 2.0 / mean)
    }

    /// Counts summed, percentiles averaged over the rounds (percentiles of separate runs cannot be merged),
    /// the maximum of the maxima.
    pub fn latencies(&self, endpoint: Endpoint) -> Option<Latencies> {
        let rounds: Vec<&Latencies> =
            self.runs.iter().filter_map(|run| run.summary.by_endpoint.get(&endpoint)).collect();
        let count = rounds.len() as f64;
        let mean = |figure: fn(&Latencies) -> f64| rounds.iter().map(|l| figure(l)).sum::<f64>() / count;
        (!rounds.is_empty()).then(|| Latencies {
            requests: rounds.iter().map(|l| l.requests).sum(),
            failed: rounds.iter().map(|l| l.failed).sum(),
            p50_ms: mean(|l| l.p50_ms),
            p90_ms: mean(|l| l.p90_ms),
            p99_ms: mean(|l| l.p99_ms),
            max_ms: rounds.iter().map(|l| l.max_ms).fold(0.0, f64::max),
        })
    }

    /// Where the CPU went over all rounds.
    pub fn cpu(&self) -> Option<CpuShares> {
        CpuShares::combine(&self.runs.iter().map(|run| run.cpu.clone()).collect::<Vec<_>>())
    }

    /// Every request of every round.
    pub fn total_requests(&self) -> u64 {
        self.runs.iter().map(|run| run.summary.total_requests).sum()
    }

    /// The backend's CPU time per request over all rounds: the steadier figure beside throughput on two shared
    /// cores, where the generator and Postgres take their turns too.
    pub fn backend_cpu_per_request(&self) -> Option<Duration> {
        self.cpu()?.per_unit(Role::Backend, self.total_requests())
    }
}

/// Everything measured of one telemetry mode.
#[derive(Debug, Clone)]
pub struct ModeRun {
    pub mode: Mode,
    pub endpoints: BTreeMap<Endpoint, Rounds>,
    pub mixed: LoadRun,
    pub memory: MemoryUse,
    pub evidence: TelemetryEvidence,
}

impl ModeRun {
    pub fn throughput(&self, endpoint: Endpoint) -> Option<f64> {
        self.endpoints.get(&endpoint)?.throughput(endpoint)
    }

    fn latencies(&self, endpoint: Endpoint) -> Option<Latencies> {
        self.endpoints.get(&endpoint)?.latencies(endpoint)
    }

    fn backend_cpu_per_request(&self, endpoint: Endpoint) -> Option<Duration> {
        self.endpoints.get(&endpoint)?.backend_cpu_per_request()
    }

    fn mixed_p99(&self) -> Option<f64> {
        self.mixed.summary.all.map(|all| all.p99_ms)
    }
}

/// The framework ceiling's rounds on the endpoints it answers.
#[derive(Debug, Clone)]
pub struct FrameworkCeilingRun {
    pub endpoints: BTreeMap<Endpoint, Rounds>,
    pub memory: MemoryUse,
}

impl FrameworkCeilingRun {
    fn cpu_per_request(&self, endpoint: Endpoint) -> Option<Duration> {
        self.endpoints.get(&endpoint)?.backend_cpu_per_request()
    }
}

/// The pgbench run of the create transaction: the write ceiling.
#[derive(Debug, Clone)]
pub struct CeilingRun {
    pub result: PgbenchResult,
    pub cpu: CpuShares,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub date: DateTime<Utc>,
    pub command: String,
    pub elapsed: Duration,
    pub machine: Machine,
    pub versions: Versions,
    pub settings: Settings,
    /// The machine with nothing of the bench running, just before the first load.
    pub background: CpuShares,
    /// One per mode measured, telemetry off first.
    pub modes: Vec<ModeRun>,
    pub framework: FrameworkCeilingRun,
    pub ceiling: CeilingRun,
    pub pipeline: PipelineRun,
}

/// A target and whether this run met it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub target: String,
    pub result: String,
    pub met: bool,
}

impl Report {
    fn mode(&self, mode: Mode) -> Option<&ModeRun> {
        self.modes.iter().find(|run| run.mode == mode)
    }

    /// Create throughput as a share of the pgbench ceiling.
    fn create_share(&self, mode: &ModeRun) -> Option<f64> {
        let ceiling = self.ceiling.result.tps;
        mode.throughput(Endpoint::Create).filter(|_| ceiling > 0.0).map(|create| create / ceiling)
    }

    /// Throughput lost to `mode`'s telemetry on `endpoint`: 1 − mode/off (negative when `mode` was faster).
    pub fn telemetry_cost(&self, mode: Mode, endpoint: Endpoint) -> Option<f64> {
        let off = self.mode(Mode::Off)?.throughput(endpoint)?;
        let with = self.mode(mode)?.throughput(endpoint)?;
        (off > 0.0).then(|| 1.0 - with / off)
    }

    /// Backend CPU per request added by `mode`'s telemetry on `endpoint`: mode/off − 1.
    pub fn cpu_cost(&self, mode: Mode, endpoint: Endpoint) -> Option<f64> {
        let off = self.mode(Mode::Off)?.backend_cpu_per_request(endpoint)?.as_secs_f64();
        let with = self.mode(mode)?.backend_cpu_per_request(endpoint)?.as_secs_f64();
        (off > 0.0).then(|| with / off - 1.0)
    }

    /// The backend's CPU per request on `endpoint` in `mode` over the framework ceiling's.
    pub fn framework_ratio(&self, mode: Mode, endpoint: Endpoint) -> Option<f64> {
        let ceiling = self.framework.cpu_per_request(endpoint)?.as_secs_f64();
        let backend = self.mode(mode)?.backend_cpu_per_request(endpoint)?.as_secs_f64();
        (ceiling > 0.0).then(|| backend / ceiling)
    }

    /// The largest round-to-round spread of any endpoint in any mode.
    fn max_spread(&self) -> Option<f64> {
        self.modes
            .iter()
            .flat_map(|mode| mode.endpoints.iter().filter_map(|(endpoint, rounds)| rounds.spread(*endpoint)))
            .max_by(f64::total_cmp)
    }

    fn worst_cost(&self, mode: Mode) -> Option<(Endpoint, f64)> {
        Endpoint::ALL
            .into_iter()
            .filter_map(|endpoint| self.telemetry_cost(mode, endpoint).map(|cost| (endpoint, cost)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        let shares: Vec<(Mode, f64)> =
            self.modes.iter().filter_map(|mode| self.create_share(mode).map(|share| (mode.mode, share))).collect();
        if !shares.is_empty() {
            verdicts.push(Verdict {
                target: format!("create ≥ {} of the pgbench ceiling", percent0(CREATE_SHARE_OF_CEILING_MIN)),
                result: shares
                    .iter()
                    .map(|(mode, share)| format!("{} {}", percent(*share), mode.label()))
                    .collect::<Vec<_>>()
                    .join(", "),
                met: shares.iter().all(|(_, share)| *share >= CREATE_SHARE_OF_CEILING_MIN),
            });
        }
        for (mode, budget) in
            [(Mode::Production, PRODUCTION_TELEMETRY_COST_MAX), (Mode::Traced, TRACED_TELEMETRY_COST_MAX)]
        {
            if let Some((endpoint, worst)) = self.worst_cost(mode) {
                let cpu = option(self.cpu_cost(mode, endpoint), signed_percent);
                verdicts.push(Verdict {
                    target: format!("{} cost ≤ {} of throughput, every endpoint", mode.title(), percent0(budget)),
                    result: format!(
                        "worst {endpoint}: {} throughput ({cpu} backend CPU per request)",
                        signed_percent(-worst)
                    ),
                    met: worst <= budget,
                });
            }
        }
        let ratios: Vec<(Endpoint, f64)> = ceiling::ENDPOINTS
            .into_iter()
            .filter_map(|endpoint| self.framework_ratio(Mode::Off, endpoint).map(|ratio| (endpoint, ratio)))
            .collect();
        if !ratios.is_empty() {
            verdicts.push(Verdict {
                target: format!(
                    "get and list CPU per request ≤ {FRAMEWORK_CPU_RATIO_MAX}× the framework ceiling's (telemetry off)"
                ),
                result: ratios
                    .iter()
                    .map(|(endpoint, ratio)| format!("{endpoint} {ratio:.2}×"))
                    .collect::<Vec<_>>()
                    .join(", "),
                met: ratios.iter().all(|(_, ratio)| *ratio <= FRAMEWORK_CPU_RATIO_MAX),
            });
        }
        let mixed: Vec<(Mode, f64, u64)> = self
            .modes
            .iter()
            .filter_map(|mode| mode.mixed_p99().map(|p99| (mode.mode, p99, mode.mixed.summary.dropped_iterations)))
            .collect();
        if !mixed.is_empty() {
            verdicts.push(Verdict {
                target: format!(
                    "p99 < 10 ms at {} req/s mixed, every arrival offered",
                    thousands(f64::from(self.settings.rate))
                ),
                result: mixed
                    .iter()
                    .map(|(mode, p99, dropped)| format!("{} {} ({dropped} dropped)", milliseconds(*p99), mode.label()))
                    .collect::<Vec<_>>()
                    .join(", "),
                met: self.settings.rate >= 1000
                    && mixed.iter().all(|(_, p99, dropped)| *p99 < MIXED_P99_MAX_MS && *dropped == 0),
            });
        }
        if !self.modes.is_empty() {
            verdicts.push(Verdict {
                target: "backend < 30 MB resident idle, < 100 MB under the load".to_owned(),
                result: self
                    .modes
                    .iter()
                    .map(|mode| {
                        format!(
                            "{} idle / {} peak {}",
                            megabytes(mode.memory.idle.resident_bytes),
                            megabytes(mode.memory.loaded.peak_resident_bytes),
                            mode.mode.label()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                met: self.modes.iter().all(|mode| {
                    mode.memory.idle.resident_bytes < IDLE_MEMORY_MAX_BYTES
                        && mode.memory.loaded.peak_resident_bytes < LOADED_MEMORY_MAX_BYTES
                }),
            });
        }
        verdicts.extend(self.pipeline_verdicts());
        verdicts
    }

    fn pipeline_verdicts(&self) -> Vec<Verdict> {
        let pipeline = &self.pipeline;
        let memory = &pipeline.memory;
        let reminders = &pipeline.reminders;
        let occurrences = &pipeline.next_occurrences;
        vec![
            Verdict {
                target: "every service < 30 MB resident idle, < 100 MB under the pipeline load".to_owned(),
                result: memory
                    .iter()
                    .map(|m| format!("{} {} / {}", m.service, megabytes(m.idle_bytes), megabytes(m.peak_bytes)))
                    .collect::<Vec<_>>()
                    .join(", "),
                met: !memory.is_empty()
                    && memory
                        .iter()
                        .all(|m| m.idle_bytes < IDLE_MEMORY_MAX_BYTES && m.peak_bytes < LOADED_MEMORY_MAX_BYTES),
            },
            Verdict {
                target: format!(
                    "reminder due → mail accepted at {} reminders/s sustained: reported, every one delivered once",
                    pipeline.reminders_per_second
                ),
                result: format!(
                    "p50 {}, p99 {}; {} of {} delivered, {} duplicated, {} planned late",
                    option(reminders.p50_ms, milliseconds),
                    option(reminders.p99_ms, milliseconds),
                    reminders.arrived,
                    reminders.expected,
                    pipeline.duplicated_mails,
                    pipeline.planned_late,
                ),
                met: reminders.complete() && pipeline.duplicated_mails == 0 && pipeline.planned_late == 0,
            },
            Verdict {
                target: "task completed → next occurrence readable: p99 reported, every series continued".to_owned(),
                result: format!(
                    "p99 {}; {} of {} continued",
                    option(occurrences.p99_ms, milliseconds),
                    occurrences.arrived,
                    occurrences.expected
                ),
                met: occurrences.complete(),
            },
        ]
    }

    /// The whole file; `notes` is the hand-written section to carry over (without its markers).
    pub fn render(&self, notes: &str) -> String {
        let mut out = String::new();
        self.render_header(&mut out);
        self.render_warnings(&mut out);
        self.render_verdicts(&mut out);
        self.render_endpoints(&mut out);
        self.render_mixed(&mut out);
        self.render_framework(&mut out);
        self.render_ceiling(&mut out);
        self.render_memory(&mut out);
        self.render_pipeline(&mut out);
        self.render_cpu(&mut out);
        self.render_evidence(&mut out);
        self.render_analysis(&mut out);
        let _ = write!(
            out,
            "\n## Profiling notes\n\nWritten by hand after looking into the figures; `cargo xtask bench` keeps this \
             section when it rewrites the file, so check it against the figures above.\n\n{NOTES_BEGIN}\n{}\n{NOTES_END}\n",
            notes.trim()
        );
        out
    }

    fn render_header(&self, out: &mut String) {
        let machine = &self.machine;
        let settings = &self.settings;
        let versions = &self.versions;
        let quick = if settings.quick {
            "\n> **A quick run** (`--quick`, as CI makes it): seconds per load, so the figures are rough; \
             BENCHMARKS.md in the repository holds a full run.\n"
        } else {
            ""
        };
        let _ = write!(
            out,
            "# Benchmarks\n\n\
             Written by `cargo xtask bench` on {date} from one run whose measurements took {elapsed}. The command \
             rewrites this file; re-run it to refresh the figures.\n{quick}\n\
             ## Machine and command\n\n\
             | | |\n|---|---|\n\
             | Command | `{command}` |\n\
             | CPUs | {cpus} × {model}{virtual} |\n\
             | Memory | {memory:.1} GiB |\n\
             | OS | {os}, Linux {kernel} |\n\
             | Code | commit {commit}, {rustc} |\n\
             | Tools | {wrk}; k6 {k6}; {pgbench} |\n\
             | Busy before the run | {background} of the CPU (measured for a few seconds with the bench idle) |\n\n\
             ## How it was measured\n\n\
             - **Postgres 15**, a throwaway cluster tuned like the tests: `fsync=off`, `synchronous_commit=off`, \
             `full_page_writes=off`. Durability is off for the API runs and the pgbench ceiling alike, so the \
             comparison is fair; absolute write figures are higher than a durable server would give.\n\
             - **Backend**: release build, pool of {connections} connections, rate limiting off, three of them side \
             by side, each on its own fresh database:\n\
             \x20 - **telemetry off**: `RUST_LOG=off`, no OTLP endpoint (the Prometheus recorder still counts in \
             memory; nothing scrapes it);\n\
             \x20 - **production defaults**, as the Helm chart ships them: `RUST_LOG=info` JSON lines written to a \
             file, `parentbased_traceidratio` at {ratio} (one new trace in ten) exported over OTLP/HTTP, `/metrics` \
             scraped every {scrape};\n\
             \x20 - **everything traced**: the same with `parentbased_always_on`, every request's spans exported.\n\
             \x20 Spans go to a receiver process of the mode's own that decodes every export and counts its spans, \
             and scrapes the backend (more often than a real Prometheus, so its cost is an upper bound).\n\
             - **Closed loops: wrk** (`bench/wrk/tasks.lua`), a load generator in C, from a separate process over \
             127.0.0.1: {vus} connections acting as {vus} API users, each sending its next request when the previous \
             one is answered; throughput is requests over the run. {rounds} round(s) of {endpoint_duration} per \
             endpoint and mode, the modes taking turns in an order rotated each time, so drift over the run hits all \
             alike.\n\
             - **Open loop: k6** (`bench/k6/tasks.js`): {rate} req/s arriving for {mixed_duration} per mode whatever \
             the latency, mixed 45 % get, 25 % list, 20 % create, 10 % complete. k6 also makes the unreported \
             {warm_up} warm-up of each backend.\n\
             - **Quiet database**: autovacuum is off; before every measured load the mode's database is vacuumed \
             and analysed and Postgres checkpoints, so no maintenance lands inside a measurement.\n\
             - **Ceiling**: `pgbench --protocol=prepared` running `bench/pgbench/create_task.sql` (the create \
             transaction: task insert and outbox insert) with {connections} clients for {pgbench_duration}.\n\
             - **The load generator shares the {cpus} cores** with the backend and Postgres; the CPU tables below \
             show how much it took.\n\n",
            date = self.date.format("%Y-%m-%d %H:%M UTC"),
            elapsed = seconds(self.elapsed),
            command = self.command,
            cpus = machine.cpus,
            model = machine.cpu_model,
            virtual = if machine.virtualised { " (virtual machine)" } else { "" },
            memory = machine.memory_gib,
            os = machine.os,
            kernel = machine.kernel,
            commit = versions.commit,
            rustc = versions.rustc,
            wrk = versions.wrk,
            k6 = versions.k6,
            pgbench = versions.pgbench,
            background = percent(1.0 - self.background.idle),
            connections = settings.database_connections,
            ratio = PRODUCTION_TRACES_SAMPLER_RATIO,
            scrape = seconds(settings.scrape_interval),
            vus = settings.vus,
            rounds = settings.rounds,
            endpoint_duration = seconds(settings.endpoint_duration),
            rate = thousands(f64::from(settings.rate)),
            mixed_duration = seconds(settings.mixed_duration),
            warm_up = seconds(settings.warm_up),
            pgbench_duration = seconds(settings.pgbench_duration),
        );
    }

    /// Every load, labelled, with its CPU shares and how many requests (or transactions) it made.
    fn loads(&self) -> Vec<(String, CpuShares, u64)> {
        let mut loads = Vec::new();
        for mode in &self.modes {
            for (endpoint, rounds) in &mode.endpoints {
                if let Some(cpu) = rounds.cpu() {
                    loads.push((format!("{endpoint}, {}", mode.mode.label()), cpu, rounds.total_requests()));
                }
            }
            let mixed = &mode.mixed;
            loads.push((format!("mixed, {}", mode.mode.label()), mixed.cpu.clone(), mixed.summary.total_requests));
        }
        for (endpoint, rounds) in &self.framework.endpoints {
            if let Some(cpu) = rounds.cpu() {
                loads.push((format!("{endpoint}, framework ceiling"), cpu, rounds.total_requests()));
            }
        }
        loads.push(("pgbench ceiling".to_owned(), self.ceiling.cpu.clone(), self.ceiling.result.transactions));
        loads
    }

    /// Every measured run of every mode and of the framework ceiling.
    fn runs(&self) -> impl Iterator<Item = &LoadRun> {
        self.modes
            .iter()
            .flat_map(|mode| {
                mode.endpoints.values().flat_map(|rounds| &rounds.runs).chain(std::iter::once(&mode.mixed))
            })
            .chain(self.framework.endpoints.values().flat_map(|rounds| &rounds.runs))
    }

    /// Reasons to distrust this run's figures.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let background = std::iter::once(("before the run".to_owned(), self.background.clone()));
        let busy: Vec<String> = background
            .chain(self.loads().into_iter().map(|(label, cpu, _)| (label, cpu)))
            .filter(|(_, cpu)| cpu.other > OTHER_CPU_WARNING)
            .map(|(label, cpu)| format!("{label} {}", percent(cpu.other)))
            .collect();
        if !busy.is_empty() {
            warnings.push(format!(
                "Work outside the bench took more than {} of the CPU during some loads ({}): the machine was not \
                 idle, so those figures understate what the backend can do. Re-run on an idle machine.",
                percent(OTHER_CPU_WARNING),
                busy.join(", ")
            ));
        }
        for mode in &self.modes {
            let mixed = &mode.mixed.summary;
            if mixed.dropped_iterations > 0 {
                warnings.push(format!(
                    "With telemetry {}, k6 dropped {} arrivals of the mixed load: the offered rate fell short of \
                     {} req/s.",
                    mode.mode.label(),
                    thousands(mixed.dropped_iterations as f64),
                    thousands(f64::from(self.settings.rate))
                ));
            }
        }
        let failed: u64 = self.runs().filter_map(|run| run.summary.all.map(|all| all.failed)).sum();
        if failed > 0 {
            warnings.push(format!(
                "{} measured requests failed (an error status or no answer); the raw summaries in target/bench \
                 say which run.",
                thousands(failed as f64)
            ));
        }
        warnings
    }

    fn render_warnings(&self, out: &mut String) {
        for warning in self.warnings() {
            let _ = writeln!(out, "> **Warning:** {warning}\n");
        }
    }

    fn render_verdicts(&self, out: &mut String) {
        out.push_str("## Targets\n\n| Target (2 cores) | This run | Met |\n|---|---|---|\n");
        for verdict in self.verdicts() {
            let _ = writeln!(out, "| {} | {} | {} |", verdict.target, verdict.result, yes_no(verdict.met));
        }
        out.push('\n');
    }

    /// A table header with one group of `columns` per mode after `first`.
    fn mode_header(&self, out: &mut String, first: &str, columns: &[&str]) {
        let mut header = format!("| {first} |");
        let mut rule = "|---|".to_owned();
        for mode in &self.modes {
            for column in columns {
                let _ = write!(header, " {} {column} |", mode.mode.label());
                rule.push_str("---:|");
            }
        }
        let _ = writeln!(out, "{header}\n{rule}");
    }

    /// A table header with a row-label column and one column per mode, named by its title.
    fn mode_title_header(&self, out: &mut String) {
        let mut header = "| |".to_owned();
        let mut rule = "|---|".to_owned();
        for mode in &self.modes {
            let _ = write!(header, " {} |", mode.mode.title());
            rule.push_str("---:|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
    }

    fn render_endpoints(&self, out: &mut String) {
        out.push_str("## Throughput per endpoint (closed loop, wrk)\n\n");
        self.mode_header(out, "Endpoint", &["req/s (rounds)", "cost"]);
        for endpoint in Endpoint::ALL {
            let mut row = format!("| `{}` |", endpoint.route());
            for mode in &self.modes {
                let cost = match mode.mode {
                    Mode::Off => "–".to_owned(),
                    other => option(self.telemetry_cost(other, endpoint), |cost| signed_percent(-cost)),
                };
                let _ = write!(row, " {} | {cost} |", throughput_cell(mode, endpoint));
            }
            let _ = writeln!(out, "{row}");
        }
        out.push_str(
            "\nThroughput is over all rounds, with each round's own figure in parentheses. Cost is the change in \
             throughput from telemetry off (negative: slower with telemetry).\n\n\
             ### Latency and backend CPU per request\n\n",
        );
        self.mode_header(out, "Endpoint", &["p50", "p99", "CPU/req", "CPU cost"]);
        for endpoint in Endpoint::ALL {
            let mut row = format!("| `{}` |", endpoint.route());
            for mode in &self.modes {
                let latencies = mode.latencies(endpoint);
                let cpu_cost = match mode.mode {
                    Mode::Off => "–".to_owned(),
                    other => option(self.cpu_cost(other, endpoint), signed_percent),
                };
                let _ = write!(
                    row,
                    " {} | {} | {} | {cpu_cost} |",
                    option(latencies.map(|l| l.p50_ms), milliseconds),
                    option(latencies.map(|l| l.p99_ms), milliseconds),
                    option(mode.backend_cpu_per_request(endpoint), microseconds),
                );
            }
            let _ = writeln!(out, "{row}");
        }
        let failed: u64 = self
            .modes
            .iter()
            .flat_map(|mode| Endpoint::ALL.into_iter().filter_map(|endpoint| mode.latencies(endpoint)))
            .map(|latencies| latencies.failed)
            .sum();
        let _ = write!(
            out,
            "\nLatencies are wrk's, client side; p50 and p99 are the rounds' mean. CPU/req is the backend process's \
             own CPU time (user and system, from `/proc`) over the requests it answered: on two shared cores it is \
             the steadier measure of what telemetry adds, since throughput also moves with what Postgres and the \
             generator take. CPU cost is its change from telemetry off. Failed closed-loop requests: {failed}.\n\n"
        );
    }

    fn render_mixed(&self, out: &mut String) {
        let _ = write!(
            out,
            "## Mixed load at {rate} req/s (open loop, k6)\n\n",
            rate = thousands(f64::from(self.settings.rate)),
        );
        self.mode_title_header(out);
        let row = |out: &mut String, label: &str, cell: &dyn Fn(&LoadSummary) -> String| {
            let cells: Vec<String> = self.modes.iter().map(|mode| cell(&mode.mixed.summary)).collect();
            let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
        };
        let duration = self.settings.mixed_duration.as_secs_f64().max(f64::EPSILON);
        row(out, "Achieved rate", &|s| option(s.all.map(|all| all.requests as f64 / duration), thousands));
        row(out, "**p99, all requests**", &|s| {
            option(s.all.map(|all| all.p99_ms), |ms| format!("**{}**", milliseconds(ms)))
        });
        row(out, "p50, all requests", &|s| option(s.all.map(|all| all.p50_ms), milliseconds));
        row(out, "p90, all requests", &|s| option(s.all.map(|all| all.p90_ms), milliseconds));
        row(out, "max, all requests", &|s| option(s.all.map(|all| all.max_ms), milliseconds));
        for endpoint in Endpoint::ALL {
            row(out, &format!("p99 `{}`", endpoint.route()), &|s| {
                option(s.by_endpoint.get(&endpoint).map(|figures| figures.p99_ms), milliseconds)
            });
        }
        row(out, "Failed requests", &|s| option(s.all.map(|all| all.failed as f64), thousands));
        row(out, "Dropped arrivals", &|s| thousands(s.dropped_iterations as f64));
        row(out, "Virtual users needed", &|s| thousands(s.max_vus as f64));
        out.push_str(
            "\nDropped arrivals are requests k6 could not send on time because every virtual user was busy; a \
             non-zero count means the rate was not really offered.\n\n",
        );
    }

    fn render_framework(&self, out: &mut String) {
        out.push_str(
            "## Framework ceiling (get and list)\n\n\
             `bench-framework-ceiling` (xtask/src/bench/framework_ceiling) answers the same two reads with the same \
             stack and the same SQL, verifying the same tokens, on the telemetry-off backend's database, and does \
             nothing else: no telemetry, no middleware, no validation of the rows, no error documents. It takes its \
             turn in the same wrk rounds. Ratios are the backend's CPU per request over the ceiling's.\n\n",
        );
        let mut header = "| Endpoint | Ceiling req/s | Ceiling CPU/req |".to_owned();
        let mut rule = "|---|---:|---:|".to_owned();
        for mode in &self.modes {
            let _ = write!(header, " {} CPU/req (ratio) |", mode.mode.label());
            rule.push_str("---:|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        for endpoint in ceiling::ENDPOINTS {
            let rounds = self.framework.endpoints.get(&endpoint);
            let mut row = format!(
                "| `{}` | {} | {} |",
                endpoint.route(),
                option(rounds.and_then(|rounds| rounds.throughput(endpoint)), thousands),
                option(self.framework.cpu_per_request(endpoint), microseconds),
            );
            for mode in &self.modes {
                let _ = write!(
                    row,
                    " {} ({}) |",
                    option(mode.backend_cpu_per_request(endpoint), microseconds),
                    option(self.framework_ratio(mode.mode, endpoint), |ratio| format!("{ratio:.2}×")),
                );
            }
            let _ = writeln!(out, "{row}");
        }
        let memory = &self.framework.memory;
        let _ = write!(
            out,
            "\nThe ceiling's own resident memory: {} idle, {} at its peak.\n\n",
            megabytes(memory.idle.resident_bytes),
            megabytes(memory.loaded.peak_resident_bytes),
        );
    }

    fn render_ceiling(&self, out: &mut String) {
        let result = &self.ceiling.result;
        let _ = write!(
            out,
            "## Write ceiling (pgbench)\n\n\
             | Clients | Transactions | Failed | tps | Latency avg |\n|---:|---:|---:|---:|---:|\n\
             | {} | {} | {} | {} | {} |\n\n\
             | Mode | `POST /v1/tasks` req/s | Share of the ceiling |\n|---|---:|---:|\n",
            result.clients,
            thousands(result.transactions as f64),
            result.failed,
            thousands(result.tps),
            milliseconds(result.latency_avg_ms),
        );
        for mode in &self.modes {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                mode.mode.title(),
                option(mode.throughput(Endpoint::Create), thousands),
                option(self.create_share(mode), percent),
            );
        }
        out.push('\n');
    }

    fn render_memory(&self, out: &mut String) {
        out.push_str(
            "## Memory\n\nThe backend's resident set (`VmRSS`) right after start-up and migrations, nothing asked \
             of it yet; then after all its loads, with the most it held at any moment (`VmHWM`).\n\n\
             | Mode | Idle | After the loads | Peak |\n|---|---:|---:|---:|\n",
        );
        for mode in &self.modes {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                mode.mode.title(),
                megabytes(mode.memory.idle.resident_bytes),
                megabytes(mode.memory.loaded.resident_bytes),
                megabytes(mode.memory.loaded.peak_resident_bytes),
            );
        }
        out.push('\n');
    }

    fn render_pipeline(&self, out: &mut String) {
        let pipeline = &self.pipeline;
        let _ = write!(
            out,
            "## The pipeline and every service's memory\n\n\
             `pipeline-bench` (tests/src/pipeline.rs) starts the whole system on the release builds: every service \
             with its own defaults (not the test suite's short polls), the chart's sampler, Postgres and the tansu \
             broker of its own, a local SMTP server. For {seconds} s, {rate} reminders fall due each second, their \
             tasks created {lead} ahead through the API; a reminder's latency runs from its instant to the moment \
             the SMTP server accepted its mail. Then {completions} daily tasks are completed, five a second; each \
             latency runs from the completion's answer to the first listing that shows the next occurrence (listed \
             every {poll} ms).\n\n\
             | Flow | Events | Arrived | p50 | p99 | max |\n|---|---:|---:|---:|---:|---:|\n",
            seconds = pipeline.seconds,
            rate = pipeline.reminders_per_second,
            lead = seconds(Duration::from_millis(pipeline.planning_lead_ms)),
            completions = pipeline.next_occurrences.expected,
            poll = pipeline.poll_interval_ms,
        );
        let row = |out: &mut String, flow: &str, figures: &EventLatencies| {
            let _ = writeln!(
                out,
                "| {flow} | {} | {} | {} | {} | {} |",
                thousands(figures.expected as f64),
                thousands(figures.arrived as f64),
                option(figures.p50_ms, milliseconds),
                option(figures.p99_ms, milliseconds),
                option(figures.max_ms, milliseconds),
            );
        };
        row(out, "Reminder due → mail accepted", &pipeline.reminders);
        row(out, "Completed → next occurrence listed", &pipeline.next_occurrences);
        let _ = write!(
            out,
            "\nDuplicated mails: {}. Reminders whose task was created after their instant: {}.\n\n\
             | Service | Idle | Peak under the pipeline load |\n|---|---:|---:|\n",
            pipeline.duplicated_mails, pipeline.planned_late,
        );
        for memory in &pipeline.memory {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                memory.service,
                megabytes(memory.idle_bytes),
                megabytes(memory.peak_bytes)
            );
        }
        out.push('\n');
    }

    fn render_cpu(&self, out: &mut String) {
        out.push_str(
            "## Where the CPU went\n\nShares of the whole machine (all cores) while each load ran, from `/proc`. \
             \"Interrupts\" is kernel interrupt work charged to no process, mostly the loopback network between \
             the processes; \"other\" is every process outside the bench.\n\n\
             | Load | Backend | Postgres | Load generator | Telemetry sink | Interrupts | Steal | Other | Idle |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for (label, cpu, _) in self.loads() {
            cpu_row(out, &label, &cpu);
        }
        out.push_str(
            "\nThe same as CPU time per request (per transaction for pgbench), in microseconds. \"All\" adds \
             interrupt work to the processes of the bench; cores divided by it is the rate the machine could \
             sustain if the bench had it to itself and were CPU-bound.\n\n\
             | Load | Requests | Backend | Postgres | Load generator | Telemetry sink | All | Cores ÷ all |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for (label, cpu, units) in self.loads() {
            cost_row(out, &label, &cpu, units);
        }
        out.push('\n');
    }

    fn render_evidence(&self, out: &mut String) {
        out.push_str("## What telemetry produced\n\n");
        self.mode_title_header(out);
        let row = |out: &mut String, label: &str, cell: &dyn Fn(&ModeRun) -> String| {
            let cells: Vec<String> = self.modes.iter().map(cell).collect();
            let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
        };
        row(out, "Requests sent (all scenarios)", &|mode| thousands(mode.evidence.requests_sent as f64));
        row(out, "Log lines written", &|mode| thousands(mode.evidence.log_lines as f64));
        row(out, "Log volume", &|mode| megabytes(mode.evidence.log_bytes));
        let rows: [(&str, SinkCell); 6] = [
            ("Spans received and decoded", |s| thousands(s.spans as f64)),
            ("… of them server spans (one per traced request)", |s| thousands(s.server_spans as f64)),
            ("OTLP export requests (volume)", |s| {
                format!("{} ({})", thousands(s.export_requests as f64), megabytes(s.export_bytes))
            }),
            ("Exports refused by the receiver", |s| thousands(s.rejected_exports as f64)),
            ("Scrapes of `/metrics` (failed)", |s| format!("{} ({})", thousands(s.scrapes as f64), s.failed_scrapes)),
            ("Last scrape: samples (size)", |s| {
                format!("{} ({})", thousands(s.last_scrape_samples as f64), kilobytes(s.last_scrape_bytes))
            }),
        ];
        for (label, cell) in rows {
            row(out, label, &|mode| mode.evidence.sink.as_ref().map_or("–".to_owned(), cell));
        }
        out.push('\n');
    }

    fn render_analysis(&self, out: &mut String) {
        out.push_str("## Analysis\n\n");
        for line in self.analysis() {
            let _ = writeln!(out, "- {line}");
        }
    }

    /// Statements that follow from the figures alone.
    fn analysis(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(off) = self.mode(Mode::Off) {
            let create = off.endpoints.get(&Endpoint::Create);
            if let (Some(share), Some(create), Some(cpu)) =
                (self.create_share(off), create, create.and_then(Rounds::cpu))
            {
                let requests = create.total_requests();
                let transactions = self.ceiling.result.transactions;
                let cost = |cpu: &CpuShares, role: Role, units: u64| option(cpu.per_unit(role, units), microseconds);
                lines.push(format!(
                    "Create reaches {share} of the pgbench ceiling with telemetry off, so it {verdict} the {target} \
                     target. Per request, the backend used {backend} of CPU, Postgres {postgres} and wrk {wrk}; per \
                     pgbench transaction, Postgres used {pg_ceiling} and pgbench {pgbench}. {bottleneck}",
                    share = percent(share),
                    verdict = if share >= CREATE_SHARE_OF_CEILING_MIN { "meets" } else { "misses" },
                    target = percent0(CREATE_SHARE_OF_CEILING_MIN),
                    backend = cost(&cpu, Role::Backend, requests),
                    postgres = cost(&cpu, Role::Postgres, requests),
                    wrk = cost(&cpu, Role::LoadGenerator, requests),
                    pg_ceiling = cost(&self.ceiling.cpu, Role::Postgres, transactions),
                    pgbench = cost(&self.ceiling.cpu, Role::LoadGenerator, transactions),
                    bottleneck = bottleneck(&cpu),
                ));
            }
        }
        for mode in [Mode::Production, Mode::Traced] {
            let costs: Vec<String> = Endpoint::ALL
                .into_iter()
                .filter_map(|endpoint| {
                    let throughput = self.telemetry_cost(mode, endpoint)?;
                    let cpu = option(self.cpu_cost(mode, endpoint), signed_percent);
                    Some(format!("{endpoint} {} ({cpu} CPU)", signed_percent(-throughput)))
                })
                .collect();
            if !costs.is_empty() {
                lines.push(format!("{} changes throughput by {}.", mode.title(), costs.join(", ")));
            }
        }
        if let Some(spread) = self.max_spread() {
            lines.push(format!(
                "Rounds of the same endpoint and mode differ by up to ±{} from their mean, so throughput differences \
                 of that size are noise.",
                percent(spread)
            ));
        }
        for mode in &self.modes {
            let Some(sink) = &mode.evidence.sink else { continue };
            let sent = mode.evidence.requests_sent;
            let lost = match mode.mode {
                Mode::Traced if sink.server_spans < sent => format!(
                    "; {} requests have no span at the receiver: the SDK's batch queue dropped spans under load",
                    thousands(sent.saturating_sub(sink.server_spans) as f64)
                ),
                _ => String::new(),
            };
            lines.push(format!(
                "{}: the receiver decoded {} server spans for the {} requests sent ({} scrapes beside them, which make \
                 no span), and the log file got {} lines{lost}.",
                mode.mode.title(),
                thousands(sink.server_spans as f64),
                thousands(sent as f64),
                thousands(sink.scrapes as f64),
                thousands(mode.evidence.log_lines as f64),
            ));
        }
        lines
    }
}

/// `75 %`.
fn percent0(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

/// Renders one figure of the sink's totals.
type SinkCell = fn(&SinkTotals) -> String;

/// Which process took most of the busy time during a load, in words.
fn bottleneck(cpu: &CpuShares) -> String {
    if cpu.idle >= 0.15 {
        return format!(
            "With {} of the CPU idle, the limit is not CPU: it is waiting (connection pool, locks or round trips).",
            percent(cpu.idle)
        );
    }
    let busiest = Role::ALL
        .into_iter()
        .map(|role| (role, role_share(cpu, role)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(role, share)| format!("{role} ({})", percent(share)))
        .unwrap_or_default();
    format!("The CPU is saturated; the largest consumer is {busiest}.")
}

fn role_share(cpu: &CpuShares, role: Role) -> f64 {
    cpu.by_role.get(&role).copied().unwrap_or(0.0)
}

fn cpu_row(out: &mut String, label: &str, cpu: &CpuShares) {
    let cell = |role: Role| cpu.by_role.get(&role).map_or("–".to_owned(), |share| percent(*share));
    let _ = writeln!(
        out,
        "| {label} | {} | {} | {} | {} | {} | {} | {} | {} |",
        cell(Role::Backend),
        cell(Role::Postgres),
        cell(Role::LoadGenerator),
        cell(Role::TelemetrySink),
        percent(cpu.interrupts),
        percent(cpu.steal),
        percent(cpu.other),
        percent(cpu.idle),
    );
}

/// `1,884 (1,850, 1,918)`: all rounds together, then each round.
fn throughput_cell(mode: &ModeRun, endpoint: Endpoint) -> String {
    let Some(rounds) = mode.endpoints.get(&endpoint) else {
        return "–".to_owned();
    };
    let total = option(rounds.throughput(endpoint), thousands);
    let each = rounds.round_throughputs(endpoint);
    if each.len() < 2 {
        return total;
    }
    format!("{total} ({})", each.into_iter().map(thousands).collect::<Vec<_>>().join(", "))
}

fn cost_row(out: &mut String, label: &str, cpu: &CpuShares, units: u64) {
    let cell = |role: Role| option(cpu.per_unit(role, units), microseconds);
    let bench_share = 1.0 - cpu.idle - cpu.other - cpu.steal;
    let busy_seconds = cpu.elapsed.as_secs_f64() * cpu.cores as f64 * bench_share.max(0.0);
    let all = (units > 0).then(|| Duration::from_secs_f64(busy_seconds / units as f64));
    let _ = writeln!(
        out,
        "| {label} | {} | {} | {} | {} | {} | {} | {} |",
        thousands(units as f64),
        cell(Role::Backend),
        cell(Role::Postgres),
        cell(Role::LoadGenerator),
        cell(Role::TelemetrySink),
        option(all, microseconds),
        option(all.filter(|all| !all.is_zero()), |all| format!(
            "{}/s",
            thousands(cpu.cores as f64 / all.as_secs_f64())
        )),
    );
}

fn microseconds(duration: Duration) -> String {
    format!("{:.0} µs", duration.as_secs_f64() * 1e6)
}

/// The hand-written notes of an earlier BENCHMARKS.md, if it has the markers.
pub fn carried_notes(previous: &str) -> Option<&str> {
    let start = previous.find(NOTES_BEGIN)? + NOTES_BEGIN.len();
    let end = start + previous[start..].find(NOTES_END)?;
    Some(previous[start..end].trim())
}

fn yes_no(met: bool) -> &'static str {
    if met { "yes" } else { "**no**" }
}

fn option<T>(value: Option<T>, format: impl Fn(T) -> String) -> String {
    value.map_or_else(|| "–".to_owned(), format)
}

/// `1234.5` → `1,235`.
fn thousands(value: f64) -> String {
    let rounded = value.round();
    let digits = format!("{:.0}", rounded.abs());
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if rounded < 0.0 { format!("-{grouped}") } else { grouped }
}

fn milliseconds(ms: f64) -> String {
    if ms < 10.0 { format!("{ms:.2} ms") } else { format!("{ms:.1} ms") }
}

fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

fn signed_percent(share: f64) -> String {
    format!("{:+.1} %", share * 100.0)
}

fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs >= 120.0 { format!("{:.1} min", secs / 60.0) } else { format!("{secs:.0} s") }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

fn kilobytes(bytes: u64) -> String {
    format!("{:.1} kB", bytes as f64 / 1_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latencies(requests: u64, p99_ms: f64) -> Latencies {
        Latencies { requests, failed: 0, p50_ms: p99_ms / 4.0, p90_ms: p99_ms / 2.0, p99_ms, max_ms: p99_ms * 2.0 }
    }

    fn cpu(backend: f64, postgres: f64, k6: f64, idle: f64) -> CpuShares {
        CpuShares {
            by_role: BTreeMap::from([(Role::Backend, backend), (Role::Postgres, postgres), (Role::LoadGenerator, k6)]),
            interrupts: 0.0,
            steal: 0.0,
            other: 1.0 - backend - postgres - k6 - idle,
            idle,
            elapsed: Duration::from_secs(10),
            cores: 2,
        }
    }

    /// Two rounds of ten seconds of `endpoint`, 2 % below and above `rate` requests per second, the process under
    /// test taking `cpu_share` of the machine.
    fn rounds(endpoint: Endpoint, rate: u64, cpu_share: f64) -> Rounds {
        let round = |requests: u64| LoadRun {
            summary: LoadSummary {
                by_endpoint: BTreeMap::from([(endpoint, latencies(requests, 20.0))]),
                all: Some(latencies(requests, 20.0)),
                total_requests: requests + 100,
                active_window: Duration::from_secs(10),
                dropped_iterations: 0,
                max_vus: 16,
            },
            cpu: cpu(cpu_share, 0.3, 0.15, 0.02),
        };
        Rounds { runs: vec![round(rate * 98 / 10), round(rate * 102 / 10)] }
    }

    /// Two rounds of each endpoint at `rates` (see [`rounds`]), and a mixed run with p99 `mixed_p99`.
    fn mode(mode: Mode, rates: [u64; 4], mixed_p99: f64) -> ModeRun {
        let endpoints = Endpoint::ALL
            .into_iter()
            .zip(rates)
            .map(|(endpoint, rate)| (endpoint, rounds(endpoint, rate, 0.5)))
            .collect();
        let mixed = LoadSummary {
            by_endpoint: BTreeMap::from([(Endpoint::Get, latencies(13_500, mixed_p99))]),
            all: Some(latencies(30_000, mixed_p99)),
            total_requests: 30_032,
            active_window: Duration::from_secs(30),
            dropped_iterations: 0,
            max_vus: 40,
        };
        let memory = |resident_bytes| Memory { resident_bytes, peak_resident_bytes: resident_bytes };
        ModeRun {
            mode,
            endpoints,
            memory: MemoryUse { idle: memory(17_000_000), loaded: memory(40_000_000) },
            mixed: LoadRun { summary: mixed, cpu: cpu(0.3, 0.2, 0.1, 0.38) },
            evidence: TelemetryEvidence { log_lines: 0, log_bytes: 0, requests_sent: 100_000, sink: None },
        }
    }

    /// A framework ceiling as fast as the off mode of [`three_modes`] on get and list, taking `cpu_share` of the
    /// machine where the backend takes half.
    fn framework(rates: [u64; 2], cpu_share: f64) -> FrameworkCeilingRun {
        let memory = Memory { resident_bytes: 9_000_000, peak_resident_bytes: 12_000_000 };
        FrameworkCeilingRun {
            endpoints: ceiling::ENDPOINTS
                .into_iter()
                .zip(rates)
                .map(|(endpoint, rate)| (endpoint, rounds(endpoint, rate, cpu_share)))
                .collect(),
            memory: MemoryUse { idle: memory, loaded: memory },
        }
    }

    fn report(modes: Vec<ModeRun>, framework: FrameworkCeilingRun, ceiling_tps: f64) -> Report {
        Report {
            date: DateTime::from_timestamp(1_800_000_000, 0).expect("valid timestamp"),
            command: "cargo xtask bench".to_owned(),
            elapsed: Duration::from_secs(400),
            machine: Machine {
                cpus: 2,
                cpu_model: "AMD EPYC".to_owned(),
                memory_gib: 23.4,
                os: "Debian GNU/Linux 12 (bookworm)".to_owned(),
                kernel: "6.1.0".to_owned(),
                virtualised: true,
            },
            versions: Versions {
                rustc: "rustc 1.95.0".to_owned(),
                k6: "k6 v1.1.0".to_owned(),
                wrk: "wrk debian/4.1.0-3+b2 [epoll]".to_owned(),
                pgbench: "pgbench (PostgreSQL) 15.20".to_owned(),
                commit: "abc".to_owned(),
            },
            background: cpu(0.0, 0.0, 0.0, 0.99),
            settings: Settings {
                quick: false,
                rounds: 2,
                warm_up: Duration::from_secs(5),
                endpoint_duration: Duration::from_secs(10),
                mixed_duration: Duration::from_secs(30),
                rate: 1000,
                vus: 32,
                pgbench_duration: Duration::from_secs(20),
                database_connections: 10,
                scrape_interval: Duration::from_secs(1),
                pipeline: PipelineLoad { reminders_per_second: 50, seconds: 30, completions: 100 },
            },
            modes,
            framework,
            ceiling: CeilingRun {
                result: PgbenchResult {
                    clients: 10,
                    transactions: 80_000,
                    failed: 0,
                    tps: ceiling_tps,
                    latency_avg_ms: 2.3,
                },
                cpu: cpu(0.0, 0.8, 0.15, 0.02),
            },
            pipeline: PipelineRun {
                reminders_per_second: 50,
                seconds: 30,
                planning_lead_ms: 5_000,
                poll_interval_ms: 20,
                reminders: EventLatencies {
                    expected: 1500,
                    arrived: 1500,
                    p50_ms: Some(600.0),
                    p99_ms: Some(1200.0),
                    max_ms: Some(1300.0),
                },
                planned_late: 0,
                duplicated_mails: 0,
                next_occurrences: EventLatencies {
                    expected: 100,
                    arrived: 100,
                    p50_ms: Some(150.0),
                    p99_ms: Some(400.0),
                    max_ms: Some(450.0),
                },
                memory: ["backend", "reminder"]
                    .map(|service| ServiceMemory {
                        service: service.to_owned(),
                        idle_bytes: 15_000_000,
                        peak_bytes: 25_000_000,
                    })
                    .to_vec(),
            },
        }
    }

    /// Off, production and traced at the given create, get, list and complete rates and mixed p99s.
    fn three_modes(rates: [[u64; 4]; 3], mixed_p99: [f64; 3]) -> Vec<ModeRun> {
        Mode::ALL.into_iter().zip(rates).zip(mixed_p99).map(|((kind, rates), p99)| mode(kind, rates, p99)).collect()
    }

    #[test]
    fn verdicts_follow_the_targets() {
        let modes =
            three_modes([[1600, 2600, 750, 1200], [1580, 2560, 740, 1190], [1500, 2400, 700, 1150]], [8.0, 9.0, 9.5]);
        // Off's get and list at the ceiling's rates, with 0.5 / 0.4 = 1.25 times its CPU.
        let verdicts = report(modes, framework([2600, 750], 0.4), 2000.0).verdicts();
        assert_eq!(verdicts.len(), 9, "{verdicts:?}");
        // 1500 / 2000 = 75 %, the lowest of the three, just meets the target.
        assert!(verdicts[0].met, "{verdicts:?}");
        assert!(verdicts[0].result.contains("75.0 % traced"), "{verdicts:?}");
        // Production: the worst is get, 1 − 2560/2600 = 1.5 %, within 3 %.
        assert!(verdicts[1].met, "{verdicts:?}");
        assert!(verdicts[1].result.contains("worst get: -1.5 %"), "{verdicts:?}");
        // Traced: get again, 1 − 2400/2600 = 7.7 %, within 10 %.
        assert!(verdicts[2].met, "{verdicts:?}");
        assert!(verdicts[3].met, "{verdicts:?}");
        assert!(verdicts[3].result.contains("get 1.25×, list 1.25×"), "{verdicts:?}");
        assert!(verdicts[4].met, "{verdicts:?}");
        assert!(verdicts[5].met, "17 MB idle, 40 MB peak: {verdicts:?}");
        assert!(verdicts[6].met, "15 MB idle, 25 MB peak: {verdicts:?}");
        assert!(verdicts[7].result.contains("p50 600.0 ms, p99 1200.0 ms; 1500 of 1500 delivered"), "{verdicts:?}");
        assert!(verdicts[7].met && verdicts[8].met, "{verdicts:?}");
    }

    #[test]
    fn missed_targets_are_reported_as_missed() {
        let modes =
            three_modes([[1600, 2600, 750, 1200], [1500, 2600, 750, 1200], [1600, 2000, 750, 1200]], [8.0, 12.0, 9.0]);
        let verdicts = report(modes, framework([2600, 750], 0.25), 4000.0).verdicts();
        assert!(!verdicts[0].met, "37.5 % of the ceiling: {verdicts:?}");
        assert!(!verdicts[1].met, "production create 6.3 % slower: {verdicts:?}");
        assert!(!verdicts[2].met, "traced get 23 % slower: {verdicts:?}");
        assert!(!verdicts[3].met, "twice the framework ceiling's CPU: {verdicts:?}");
        assert!(!verdicts[4].met, "12 ms p99 at the production defaults: {verdicts:?}");
    }

    #[test]
    fn rendering_keeps_the_notes_and_shows_every_endpoint_and_mode() {
        let modes =
            three_modes([[1500, 2600, 750, 1200], [1470, 2400, 740, 1190], [1400, 2300, 700, 1100]], [8.0, 9.0, 9.5]);
        let text = report(modes, framework([2600, 750], 0.4), 2000.0)
            .render("Profiled with perf: most time in JSON encoding.");
        for route in Endpoint::ALL.map(Endpoint::route) {
            assert!(text.contains(&format!("`{route}`")), "{route} missing");
        }
        for mode in Mode::ALL {
            assert!(text.contains(mode.title()), "{} missing", mode.title());
        }
        assert!(
            text.contains("| `POST /v1/tasks` | 1,500 (1,470, 1,530) | – | 1,470 (1,441, 1,499) | -2.0 % |"),
            "{text}"
        );
        assert!(text.contains("differ by up to ±2.0 % from their mean"), "{text}");
        assert_eq!(carried_notes(&text), Some("Profiled with perf: most time in JSON encoding."));
        assert!(text.contains("fsync=off"));
        assert!(text.contains("| Telemetry off | 17.0 MB | 40.0 MB | 40.0 MB |"), "{text}");
        assert!(text.contains("## Framework ceiling"), "{text}");
    }

    #[test]
    fn notes_are_absent_without_markers() {
        assert_eq!(carried_notes("# Benchmarks\nno notes here"), None);
    }

    #[test]
    fn numbers_are_formatted_for_people() {
        assert_eq!(thousands(1234.5), "1,235");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_000_000.0), "1,000,000");
        assert_eq!(milliseconds(8.123), "8.12 ms");
        assert_eq!(milliseconds(54.49), "54.5 ms");
        assert_eq!(signed_percent(-0.0312), "-3.1 %");
    }
}
