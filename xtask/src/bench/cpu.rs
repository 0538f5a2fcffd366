//! Where the machine's CPU time went while a load ran: the backend, Postgres, the load generator, the
//! telemetry sink, everything else, and idle. On two shared cores this is what explains a throughput figure.
//!
//! Read from `/proc` in clock ticks; only ratios are reported, so the tick length never matters.
//! The load generator is a child this process waits for, so its time is read from our own "children's time"
//! (`cutime`/`cstime`), which the kernel adds when the child is reaped.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A group of processes whose CPU time is reported together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Backend,
    Postgres,
    LoadGenerator,
    TelemetrySink,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Backend, Role::Postgres, Role::LoadGenerator, Role::TelemetrySink];
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Role::Backend => "backend",
            Role::Postgres => "postgres",
            Role::LoadGenerator => "load generator",
            Role::TelemetrySink => "telemetry sink",
        })
    }
}

/// The processes to account for.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    /// The Postgres server's main process; its live children (one per connection, plus helpers) count too.
    pub postmaster: u32,
    pub backend: Option<u32>,
    pub telemetry_sink: Option<u32>,
}

/// Cumulative CPU ticks at one moment.
#[derive(Debug, Clone)]
pub struct CpuSample {
    taken: Instant,
    machine: MachineTicks,
    by_role: BTreeMap<Role, u64>,
}

/// Shares of the machine's capacity (all cores) between two samples; they sum to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuShares {
    pub by_role: BTreeMap<Role, f64>,
    /// Interrupt handling, charged to no process: mostly the loopback network between the processes.
    pub interrupts: f64,
    /// Taken by the hypervisor for other guests (virtual machines only).
    pub steal: f64,
    /// Everything else: processes outside the bench (other users' work shows up here).
    pub other: f64,
    pub idle: f64,
    /// Wall-clock time between the samples.
    pub elapsed: Duration,
    /// Cores of the machine: `elapsed × cores` is the capacity the shares divide.
    pub cores: usize,
}

impl CpuShares {
    /// Several windows as one: each share weighted by its window's length.
    pub fn combine(parts: &[CpuShares]) -> Option<CpuShares> {
        let first = parts.first()?;
        let total: f64 = parts.iter().map(|part| part.elapsed.as_secs_f64()).sum();
        if total <= 0.0 {
            return Some(first.clone());
        }
        let weighted = |share: fn(&CpuShares) -> f64| {
            parts.iter().map(|part| share(part) * part.elapsed.as_secs_f64()).sum::<f64>() / total
        };
        let mut by_role = BTreeMap::new();
        for part in parts {
            for (role, share) in &part.by_role {
                *by_role.entry(*role).or_insert(0.0) += share * part.elapsed.as_secs_f64() / total;
            }
        }
        Some(CpuShares {
            by_role,
            interrupts: weighted(|part| part.interrupts),
            steal: weighted(|part| part.steal),
            other: weighted(|part| part.other),
            idle: weighted(|part| part.idle),
            elapsed: parts.iter().map(|part| part.elapsed).sum(),
            cores: first.cores,
        })
    }

    /// CPU time `role` spent per unit of work (`units` requests or transactions in the window).
    pub fn per_unit(&self, role: Role, units: u64) -> Option<Duration> {
        let share = self.by_role.get(&role)?;
        let busy = self.elapsed.as_secs_f64() * self.cores as f64 * share;
        (units > 0).then(|| Duration::from_secs_f64(busy / units as f64))
    }
}

/// Cumulative ticks of all cores, from the first line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MachineTicks {
    total: u64,
    /// Idle and I/O wait.
    idle: u64,
    /// irq and softirq.
    interrupts: u64,
    steal: u64,
}

impl CpuMeter {
    pub fn sample(&self) -> anyhow::Result<CpuSample> {
        let taken = Instant::now();
        let machine = machine_ticks()?;
        let mut by_role = BTreeMap::new();
        by_role.insert(Role::Postgres, postgres_ticks(self.postmaster)?);
        // Children we reaped: the load generator (k6 or pgbench) is the only one that ends during a load.
        by_role.insert(Role::LoadGenerator, read_stat("self")?.children_ticks());
        if let Some(pid) = self.backend {
            by_role.insert(Role::Backend, read_stat(&pid.to_string())?.own_ticks());
        }
        if let Some(pid) = self.telemetry_sink {
            by_role.insert(Role::TelemetrySink, read_stat(&pid.to_string())?.own_ticks());
        }
        Ok(CpuSample { taken, machine, by_role })
    }
}

impl CpuSample {
    /// What happened between `self` (earlier) and `later`.
    pub fn shares_until(&self, later: &CpuSample) -> CpuShares {
        let (earlier, now) = (self.machine, later.machine);
        let capacity = now.total.saturating_sub(earlier.total).max(1) as f64;
        let share = |before: u64, after: u64| after.saturating_sub(before) as f64 / capacity;
        let idle = share(earlier.idle, now.idle);
        let interrupts = share(earlier.interrupts, now.interrupts);
        let steal = share(earlier.steal, now.steal);
        let by_role: BTreeMap<Role, f64> = later
            .by_role
            .iter()
            .map(|(role, ticks)| {
                let before = self.by_role.get(role).copied().unwrap_or(0);
                (*role, ticks.saturating_sub(before) as f64 / capacity)
            })
            .collect();
        let accounted: f64 = by_role.values().sum::<f64>() + idle + interrupts + steal;
        CpuShares {
            by_role,
            interrupts,
            steal,
            other: (1.0 - accounted).max(0.0),
            idle,
            elapsed: later.taken.saturating_duration_since(self.taken),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// The parent of process `pid`.
pub fn parent_pid(pid: u32) -> anyhow::Result<u32> {
    Ok(read_stat(&pid.to_string())?.parent)
}

fn machine_ticks() -> anyhow::Result<MachineTicks> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat.lines().next().context("/proc/stat is empty")?;
    parse_machine_line(line)
}

fn parse_machine_line(line: &str) -> anyhow::Result<MachineTicks> {
    let mut fields = line.split_whitespace();
    if fields.next() != Some("cpu") {
        bail!("unexpected first line of /proc/stat: {line}");
    }
    // user nice system idle iowait irq softirq steal (guest time is already inside user and nice).
    let values: Vec<u64> = fields.take(8).map(str::parse).collect::<Result<_, _>>().context("parsing /proc/stat")?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = values[..] else {
        bail!("/proc/stat has fewer than 8 cpu fields: {line}");
    };
    Ok(MachineTicks {
        total: user + nice + system + idle + iowait + irq + softirq + steal,
        idle: idle + iowait,
        interrupts: irq + softirq,
        steal,
    })
}

/// The postmaster's own time and that of its reaped children, plus its live children's own time.
fn postgres_ticks(postmaster: u32) -> anyhow::Result<u64> {
    let main = read_stat(&postmaster.to_string()).context("reading the Postgres server's CPU time")?;
    let live: u64 = children_of(postmaster)?.iter().map(ProcessStat::own_ticks).sum();
    Ok(main.own_ticks() + main.children_ticks() + live)
}

/// How many processes the postmaster has now: its helpers and one per open connection.
pub fn postgres_processes(postmaster: u32) -> anyhow::Result<usize> {
    Ok(children_of(postmaster)?.len())
}

/// The live children of `parent`.
fn children_of(parent: u32) -> anyhow::Result<Vec<ProcessStat>> {
    let entries = std::fs::read_dir("/proc").context("listing /proc")?;
    Ok(entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let pid = name.to_str().filter(|name| name.bytes().all(|byte| byte.is_ascii_digit()))?;
            // A process may exit between listing and reading; its time then moves to the postmaster's children.
            read_stat(pid).ok().filter(|stat| stat.parent == parent)
        })
        .collect())
}

/// The fields of `/proc/PID/stat` we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcessStat {
    parent: u32,
    user: u64,
    system: u64,
    children_user: u64,
    children_system: u64,
}

impl ProcessStat {
    fn own_ticks(&self) -> u64 {
        self.user + self.system
    }

    fn children_ticks(&self) -> u64 {
        self.children_user + self.children_system
    }
}

fn read_stat(pid: &str) -> anyhow::Result<ProcessStat> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_process_stat(&text).with_context(|| format!("parsing {path}"))
}

fn parse_process_stat(text: &str) -> anyhow::Result<ProcessStat> {
    // The command name (field 2) is in parentheses and may itself contain spaces and parentheses.
    let (_, rest) = text.rsplit_once(')').context("no `)` after the command name")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field N is at index N - 3.
    let field = |number: usize| -> anyhow::Result<u64> {
        let raw = fields.get(number - 3).with_context(|| format!("field {number} missing"))?;
        raw.parse().with_context(|| format!("field {number} is `{raw}`"))
    };
    Ok(ProcessStat {
        parent: u32::try_from(field(4)?).context("parent pid out of range")?,
        user: field(14)?,
        system: field(15)?,
        children_user: field(16)?,
        children_system: field(17)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_stat_survives_odd_command_names() {
        let text = "4242 (tokio (rt) x) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 9 0 123 456 789";
        let stat = parse_process_stat(text).expect("parses");
        assert_eq!(stat, ProcessStat { parent: 17, user: 250, system: 50, children_user: 7, children_system: 3 });
        assert_eq!(stat.own_ticks(), 300);
        assert_eq!(stat.children_ticks(), 10);
    }

    #[test]
    fn machine_line_counts_iowait_as_idle() {
        let ticks = parse_machine_line("cpu  100 5 50 800 20 1 4 10 0 0").expect("parses");
        assert_eq!(ticks, MachineTicks { total: 990, idle: 820, interrupts: 5, steal: 10 });
    }

    #[test]
    fn shares_split_the_window() {
        let start = Instant::now();
        let sample = |total, idle, interrupts, backend, postgres| CpuSample {
            taken: start,
            machine: MachineTicks { total, idle, interrupts, steal: 0 },
            by_role: BTreeMap::from([(Role::Backend, backend), (Role::Postgres, postgres)]),
        };
        let shares = sample(1_000, 500, 10, 100, 100).shares_until(&sample(2_000, 700, 110, 500, 300));
        assert_eq!(shares.idle, 0.2);
        assert_eq!(shares.interrupts, 0.1);
        assert_eq!(shares.by_role[&Role::Backend], 0.4);
        assert_eq!(shares.by_role[&Role::Postgres], 0.2);
        assert!((shares.other - 0.1).abs() < 1e-9, "{shares:?}");
    }

    #[test]
    fn combined_windows_weigh_by_length() {
        let window = |backend: f64, seconds: u64| CpuShares {
            by_role: BTreeMap::from([(Role::Backend, backend)]),
            interrupts: 0.0,
            steal: 0.0,
            other: 0.0,
            idle: 1.0 - backend,
            elapsed: Duration::from_secs(seconds),
            cores: 2,
        };
        let combined = CpuShares::combine(&[window(0.2, 10), window(0.5, 30)]).expect("two windows");
        assert!((combined.by_role[&Role::Backend] - 0.425).abs() < 1e-9, "{combined:?}");
        assert!((combined.idle - 0.575).abs() < 1e-9, "{combined:?}");
        assert_eq!(combined.elapsed, Duration::from_secs(40));
        assert_eq!(CpuShares::combine(&[]), None);
    }

    #[test]
    fn per_unit_divides_the_busy_time() {
        let shares = CpuShares {
            by_role: BTreeMap::from([(Role::Backend, 0.25)]),
            interrupts: 0.0,
            steal: 0.0,
            other: 0.0,
            idle: 0.75,
            elapsed: Duration::from_secs(10),
            cores: 2,
        };
        // A quarter of 2 cores for 10 s is 5 CPU-seconds, over 10,000 requests.
        assert_eq!(shares.per_unit(Role::Backend, 10_000), Some(Duration::from_micros(500)));
        assert_eq!(shares.per_unit(Role::Postgres, 10_000), None);
        assert_eq!(shares.per_unit(Role::Backend, 0), None);
    }
}
