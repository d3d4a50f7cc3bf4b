//! `cpu_usage`: utilisation overall and per core, frequency, load and CPU pressure.
//!
//! Utilisation is the change in the kernel's per-CPU tick counters (`/proc/stat`) between two
//! readings of the background [`Sampler`]. The first question after a quiet spell gets the one
//! reading there is, and the shares since boot, marked as such, rather than waiting a second.
//!
//! `/proc/stat` is parsed here rather than through `procfs::KernelStats`, which drops the CPU
//! numbers: with CPUs offline, the n-th line is not CPU n.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use procfs::LoadAverage;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::overview::LoadAverages;
use crate::config::{HostConfig, SamplerConfig};
use crate::domains::shared::kernel::{self, tenths};
use crate::domains::shared::pressure::{self, Pressure};
use crate::domains::shared::sampling::{Basis, Readings, Sampler};
use crate::tool::{Collect, Declaration, Domain, Render, ToolContext, ToolError};

pub(crate) static CPU_USAGE: Declaration = Declaration::read(
    Domain::System,
    "cpu_usage",
    "CPU usage",
    "CPU utilisation now: overall and per core (busy, user, system, iowait, steal), \
     clock frequency, load averages, running and blocked tasks, and CPU pressure. \
     Shares cover the last second; the first answer after a quiet spell covers the \
     time since boot and says so (`basis`) — ask again for current figures.",
);

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CpuUsageArguments {
    /// Include one entry per CPU (default true); false gives only the overall figures.
    pub per_core: Option<bool>,
}

impl Collect for CpuMonitor {
    type Arguments = CpuUsageArguments;
    type Output = CpuUsage;

    const DECLARATION: &'static Declaration = &CPU_USAGE;
    // procfs reads are in-memory and take microseconds.
    const INLINE: bool = true;

    fn collect(
        &self,
        arguments: CpuUsageArguments,
        _: &ToolContext,
    ) -> Result<CpuUsage, ToolError> {
        let mut usage = self.usage()?;
        if arguments.per_core == Some(false) {
            usage.cores.clear();
        }
        Ok(usage)
    }
}

/// The answer of `cpu_usage`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct CpuUsage {
    pub basis: Basis,
    /// The time the shares are measured over, when `basis` is `interval`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<f64>,
    /// Online logical CPUs.
    pub logical_cpus: u32,
    /// All CPUs together.
    pub overall: CpuShares,
    /// One entry per online CPU.
    pub cores: Vec<CoreUsage>,
    pub load_average: LoadAverages,
    /// Tasks running or runnable now.
    pub tasks_running: u32,
    /// Tasks blocked on I/O now.
    pub tasks_blocked: u32,
    /// Share of time runnable tasks waited for a CPU, when the kernel reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pressure: Option<Pressure>,
}

/// Percent of CPU time. `busy` is everything but `idle` and `iowait`; `user` includes nice
/// time, `system` includes hard and soft interrupts; `steal` is time the hypervisor gave
/// another guest.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct CpuShares {
    pub busy_percent: f64,
    pub user_percent: f64,
    pub system_percent: f64,
    pub iowait_percent: f64,
    pub steal_percent: f64,
    pub idle_percent: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct CoreUsage {
    /// The CPU number, as in `cpuN`.
    pub cpu: u32,
    #[serde(flatten)]
    pub shares: CpuShares,
    /// Current clock frequency, when the kernel reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mhz: Option<f64>,
}

impl Render for CpuUsage {
    fn render_text(&self) -> String {
        let basis = match (self.basis, self.window_seconds) {
            (Basis::Interval, Some(window)) => format!("over {window}s"),
            _ => "since boot".into(),
        };
        let load = &self.load_average;
        let mut text = format!(
            "CPU {} ({}) {basis}; load {:.2} {:.2} {:.2}; {} running, {} blocked",
            render_shares(&self.overall),
            crate::render::count(self.logical_cpus, "CPU", "CPUs"),
            load.one,
            load.five,
            load.fifteen,
            self.tasks_running,
            self.tasks_blocked,
        );
        if let Some(pressure) = &self.pressure {
            text.push_str(&format!("; pressure {}", pressure.render()));
        }
        for core in &self.cores {
            text.push_str(&format!(
                "\ncpu{} {}",
                core.cpu,
                render_shares(&core.shares)
            ));
            if let Some(mhz) = core.mhz {
                text.push_str(&format!(" {mhz:.0} MHz"));
            }
        }
        text
    }
}

fn render_shares(shares: &CpuShares) -> String {
    format!(
        "{}% busy (user {}, system {}, iowait {}, steal {})",
        shares.busy_percent,
        shares.user_percent,
        shares.system_percent,
        shares.iowait_percent,
        shares.steal_percent
    )
}

/// One CPU's (or all CPUs') tick counters from a `cpu` line of `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Ticks {
    user: u64,
    nice: u64,
    system: u64,
    idle: u64,
    iowait: u64,
    irq: u64,
    softirq: u64,
    steal: u64,
}

impl Ticks {
    /// Guest time is already counted in `user` and `nice`, so it is not added again.
    fn total(&self) -> u64 {
        self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
    }

    /// The change since `earlier`. Per-CPU `iowait` can go backwards on some kernels; such a
    /// field counts as no change rather than wrapping.
    fn since(&self, earlier: &Ticks) -> Ticks {
        Ticks {
            user: self.user.saturating_sub(earlier.user),
            nice: self.nice.saturating_sub(earlier.nice),
            system: self.system.saturating_sub(earlier.system),
            idle: self.idle.saturating_sub(earlier.idle),
            iowait: self.iowait.saturating_sub(earlier.iowait),
            irq: self.irq.saturating_sub(earlier.irq),
            softirq: self.softirq.saturating_sub(earlier.softirq),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }

    fn shares(&self) -> CpuShares {
        let total = self.total();
        let percent = |ticks: u64| {
            if total == 0 {
                0.0
            } else {
                tenths(ticks as f64 * 100.0 / total as f64)
            }
        };
        CpuShares {
            busy_percent: percent(total - self.idle - self.iowait),
            user_percent: percent(self.user + self.nice),
            system_percent: percent(self.system + self.irq + self.softirq),
            iowait_percent: percent(self.iowait),
            steal_percent: percent(self.steal),
            idle_percent: percent(self.idle),
        }
    }
}

/// One background reading.
#[derive(Debug, Clone, Default)]
pub(crate) struct CpuReading {
    all: Ticks,
    cores: Vec<(u32, Ticks)>,
    tasks_running: u32,
    tasks_blocked: u32,
    mhz: BTreeMap<u32, f64>,
}

fn parse_stat(text: &str) -> Result<CpuReading, String> {
    let mut reading = CpuReading::default();
    let mut saw_total = false;
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(key) = fields.next() else { continue };
        if let Some(number) = key.strip_prefix("cpu") {
            let mut values = fields.map(|field| field.parse::<u64>().unwrap_or(0));
            let mut next = || values.next().unwrap_or(0);
            let ticks = Ticks {
                user: next(),
                nice: next(),
                system: next(),
                idle: next(),
                iowait: next(),
                irq: next(),
                softirq: next(),
                steal: next(),
            };
            if number.is_empty() {
                reading.all = ticks;
                saw_total = true;
            } else if let Ok(cpu) = number.parse() {
                reading.cores.push((cpu, ticks));
            }
        } else if key == "procs_running" {
            reading.tasks_running = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        } else if key == "procs_blocked" {
            reading.tasks_blocked = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    if saw_total {
        Ok(reading)
    } else {
        Err("no `cpu` line in /proc/stat".into())
    }
}

/// Current frequencies: cpufreq's `scaling_cur_freq` (kHz) where the CPU has a driver, else the
/// `cpu MHz` lines of `/proc/cpuinfo` (x86 reports them; many VMs have no cpufreq).
fn frequencies(proc: &Path, sys: &Path, cpus: &[(u32, Ticks)]) -> BTreeMap<u32, f64> {
    let cpufreq = |cpu: u32| {
        let path = sys.join(format!(
            "devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq"
        ));
        let khz: f64 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
        Some(khz / 1000.0)
    };
    let mut found: BTreeMap<u32, f64> = cpus
        .iter()
        .filter_map(|(cpu, _)| Some((*cpu, cpufreq(*cpu)?)))
        .collect();
    if found.len() < cpus.len()
        && let Ok(text) = std::fs::read_to_string(proc.join("cpuinfo"))
    {
        for block in text.split("\n\n") {
            let value = |wanted: &str| {
                block.lines().find_map(|line| {
                    let (key, value) = line.split_once(':')?;
                    (key.trim() == wanted).then(|| value.trim())
                })
            };
            let cpu = value("processor").and_then(|v| v.parse::<u32>().ok());
            let mhz = value("cpu MHz").and_then(|v| v.parse::<f64>().ok());
            if let (Some(cpu), Some(mhz)) = (cpu, mhz) {
                found.entry(cpu).or_insert(mhz);
            }
        }
    }
    found
}

/// Answers `cpu_usage` for the host `[host]` locates.
pub(crate) struct CpuMonitor {
    proc: PathBuf,
    sampler: Sampler<CpuReading>,
}

impl CpuMonitor {
    pub(crate) fn new(host: &HostConfig, sampler: &SamplerConfig) -> Self {
        let (proc, sys) = (host.proc.clone(), host.sys.clone());
        Self {
            proc: host.proc.clone(),
            sampler: Sampler::new(sampler, move || {
                let text = std::fs::read_to_string(proc.join("stat")).map_err(|error| {
                    format!("cannot read {}: {error}", proc.join("stat").display())
                })?;
                let mut reading = parse_stat(&text)?;
                reading.mhz = frequencies(&proc, &sys, &reading.cores);
                Ok(reading)
            }),
        }
    }

    /// The usage now. May read `/proc/stat` on the caller's thread (a fast in-memory read).
    pub(crate) fn usage(&self) -> Result<CpuUsage, ToolError> {
        let readings = self.sampler.readings().map_err(|error| {
            ToolError::unavailable(format!("{error} (is host.proc in the config right?)"))
        })?;
        let load: LoadAverage = kernel::read_proc(&self.proc, "loadavg")?;
        Ok(usage_from(&readings, &load, pressure::cpu(&self.proc)))
    }
}

fn usage_from(
    readings: &Readings<CpuReading>,
    load: &LoadAverage,
    pressure: Option<Pressure>,
) -> CpuUsage {
    let latest = &readings.latest.value;
    let previous = readings.earlier();
    let (basis, window_seconds) = readings.basis();
    let change = |now: &Ticks, before: Option<&Ticks>| match before {
        Some(before) => now.since(before),
        None => *now,
    };
    let before_core = |cpu: u32| {
        previous.and_then(|(_, earlier)| {
            earlier
                .cores
                .iter()
                .find(|(number, _)| *number == cpu)
                .map(|(_, ticks)| ticks)
        })
    };
    let cores: Vec<CoreUsage> = latest
        .cores
        .iter()
        .map(|(cpu, ticks)| CoreUsage {
            cpu: *cpu,
            shares: change(ticks, before_core(*cpu)).shares(),
            mhz: latest.mhz.get(cpu).map(|mhz| mhz.round()),
        })
        .collect();
    CpuUsage {
        basis,
        window_seconds,
        logical_cpus: cores.len() as u32,
        overall: change(&latest.all, previous.map(|(_, earlier)| &earlier.all)).shares(),
        cores,
        load_average: LoadAverages::from(load),
        tasks_running: latest.tasks_running,
        tasks_blocked: latest.tasks_blocked,
        pressure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 0 50 800 50 0 0 0 0 0\n\
                        cpu0 60 0 20 400 20 0 0 0 0 0\n\
                        cpu2 40 0 30 400 30 0 0 0 0 0\n\
                        intr 1 2 3\nprocs_running 3\nprocs_blocked 1\n";

    #[test]
    fn stat_keeps_cpu_numbers_and_task_counts() {
        let reading = parse_stat(STAT).expect("parses");
        assert_eq!(reading.all.total(), 1000);
        assert_eq!(
            reading
                .cores
                .iter()
                .map(|(cpu, _)| *cpu)
                .collect::<Vec<_>>(),
            [0, 2]
        );
        assert_eq!((reading.tasks_running, reading.tasks_blocked), (3, 1));
        assert!(parse_stat("intr 1\n").is_err());
    }

    #[test]
    fn shares_split_busy_from_idle_and_iowait() {
        let shares = parse_stat(STAT).expect("parses").all.shares();
        assert_eq!(shares.busy_percent, 15.0);
        assert_eq!(shares.user_percent, 10.0);
        assert_eq!(shares.system_percent, 5.0);
        assert_eq!(shares.iowait_percent, 5.0);
        assert_eq!(shares.idle_percent, 80.0);
    }

    #[test]
    fn a_counter_going_backwards_counts_as_no_change() {
        let before = Ticks {
            user: 10,
            iowait: 50,
            idle: 10,
            ..Ticks::default()
        };
        let after = Ticks {
            user: 20,
            iowait: 40,
            idle: 20,
            ..Ticks::default()
        };
        let change = after.since(&before);
        assert_eq!(change.iowait, 0);
        assert_eq!(change.shares().busy_percent, 50.0);
    }
}
