//! CPU % of processes, as `top` shows it: CPU time used over the last interval, per core (a
//! process busy on two cores shows 200%).
//!
//! The background [`Sampler`] keeps a recent reading of the whole table. A question that must
//! see every process as it is now (a filter on name, user or state) reads the table afresh and
//! measures against that reading. A ranking ("the top 20 by CPU") or a tree answers as `top` does, from
//! the last interval: the sampler's latest table for the processes it saw, a fresh read for
//! those started since, and none that have exited; the rows it shows are read afresh. On a
//! thousand processes that is a list of `/proc` instead of a thousand reads of
//! `/proc/PID/stat`. The first question after a quiet spell has no earlier reading: it gets
//! each process's average since it started, as `ps` shows it, and says so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

use super::table::{self, ProcessStat};
use crate::config::SamplerConfig;
use crate::domains::shared::kernel::tenths;
use crate::domains::shared::sampling::{Reading, Readings, SHORTEST_WINDOW, Sampler};
use crate::tool::ToolError;

/// How the CPU % in an answer was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CpuBasis {
    /// Over the last `window_seconds`.
    Interval,
    /// Averaged over each process's lifetime (the first answer after a quiet spell; ask again
    /// for current figures).
    SinceStart,
}

/// A fresh table is measured against the latest reading only when that is at least this old;
/// else against the one before.
const FRESH_AFTER: Duration = Duration::from_millis(250);

/// The table now and what to measure CPU use against.
pub(crate) struct Snapshot {
    pub processes: Vec<ProcessStat>,
    pub meter: CpuMeter,
}

/// pid → (start ticks, CPU ticks) in an earlier reading.
type EarlierTicks = HashMap<u32, (u64, u64)>;

/// Turns CPU ticks into percent for one snapshot.
pub(crate) struct CpuMeter {
    /// The window in seconds and the ticks at its start.
    baseline: Option<(f64, EarlierTicks)>,
    uptime_seconds: f64,
    ticks_per_second: f64,
}

impl CpuMeter {
    pub(crate) fn basis(&self) -> (CpuBasis, Option<f64>) {
        match &self.baseline {
            Some((window, _)) => (CpuBasis::Interval, Some((window * 100.0).round() / 100.0)),
            None => (CpuBasis::SinceStart, None),
        }
    }

    /// CPU % of `process`: over the window when it was in the earlier reading, else over its
    /// lifetime (it started within the window, or there is no window).
    pub(crate) fn percent(&self, process: &ProcessStat) -> f64 {
        let earlier = self.baseline.as_ref().and_then(|(window, ticks)| {
            let (start, before) = ticks.get(&process.pid)?;
            (*start == process.start_ticks).then_some((*window, *before))
        });
        let (seconds, ticks) = match earlier {
            Some((window, before)) => (window, process.cpu_ticks.saturating_sub(before)),
            None => (
                self.uptime_seconds - process.start_ticks as f64 / self.ticks_per_second,
                process.cpu_ticks,
            ),
        };
        if seconds <= 0.0 {
            return 0.0;
        }
        tenths(ticks as f64 / self.ticks_per_second / seconds * 100.0)
    }
}

/// Keeps the recent readings of the process table.
pub(crate) struct ProcessUsage {
    proc: PathBuf,
    sampler: Sampler<Vec<ProcessStat>>,
    /// Read once: the boot time does not change while the host runs.
    boot: OnceLock<DateTime<Utc>>,
}

impl ProcessUsage {
    pub(crate) fn new(proc: PathBuf, sampler: &SamplerConfig) -> Arc<Self> {
        let root = proc.clone();
        Arc::new(Self {
            proc,
            sampler: Sampler::new(sampler, move || {
                table::snapshot(&root)
                    .map_err(|error| format!("cannot list {}: {error}", root.display()))
            }),
            boot: OnceLock::new(),
        })
    }

    pub(crate) fn proc(&self) -> &Path {
        &self.proc
    }

    /// When the host booted (`btime`), which process start times count from.
    pub(crate) fn boot_time(&self) -> Result<DateTime<Utc>, ToolError> {
        if let Some(boot) = self.boot.get() {
            return Ok(*boot);
        }
        let boot = crate::domains::shared::kernel::boot_time(&self.proc).ok_or_else(|| {
            ToolError::unavailable(format!(
                "cannot read btime from {}/stat",
                self.proc.display()
            ))
        })?;
        Ok(*self.boot.get_or_init(|| boot))
    }

    /// The process table now, with a meter for CPU %. Blocking: reads all of `/proc`.
    pub(crate) fn snapshot(&self) -> Result<Snapshot, ToolError> {
        let readings = self.readings()?;
        let latest = &readings.latest;
        // A reading taken for this very question is the table now; otherwise read it afresh.
        if latest.at.elapsed() < SHORTEST_WINDOW / 2 {
            let meter = self.meter(latest.at, readings.previous.clone())?;
            return Ok(Snapshot {
                processes: latest.value.clone(),
                meter,
            });
        }
        let processes = table::snapshot(&self.proc).map_err(|error| {
            ToolError::unavailable(format!("cannot list {}: {error}", self.proc.display()))
        })?;
        let meter = self.meter(Instant::now(), baseline(&readings))?;
        Ok(Snapshot { processes, meter })
    }

    /// The table as of the last interval when the sampler is warm (see the module comment),
    /// else [`Self::snapshot`].
    pub(crate) fn ranking(&self) -> Result<Snapshot, ToolError> {
        let readings = self.readings()?;
        let Some(previous) = readings.previous.clone() else {
            return self.snapshot();
        };
        let latest = &readings.latest;
        if latest.at.elapsed() > self.sampler.interval() + SHORTEST_WINDOW
            || latest.at.saturating_duration_since(previous.at) < SHORTEST_WINDOW
        {
            return self.snapshot();
        }
        let known: HashMap<u32, &ProcessStat> =
            latest.value.iter().map(|stat| (stat.pid, stat)).collect();
        let directory = table::ProcDirectory::open(&self.proc).map_err(|error| {
            ToolError::unavailable(format!("cannot open {}: {error}", self.proc.display()))
        })?;
        let mut buffer = Vec::with_capacity(512);
        let processes = table::pids(&self.proc)
            .map_err(|error| {
                ToolError::unavailable(format!("cannot list {}: {error}", self.proc.display()))
            })?
            .into_iter()
            .filter_map(|pid| match known.get(&pid) {
                Some(stat) => Some((*stat).clone()),
                None => directory.read_stat(pid, &mut buffer),
            })
            .collect();
        let meter = self.meter(latest.at, Some(previous))?;
        Ok(Snapshot { processes, meter })
    }

    /// One process now (`None` when there is no such process), with a meter for its CPU %.
    pub(crate) fn one(&self, pid: u32) -> Result<Option<(ProcessStat, CpuMeter)>, ToolError> {
        let readings = self.readings()?;
        let Some(process) = table::read_stat(&self.proc, pid, &mut Vec::new()) else {
            return Ok(None);
        };
        let meter = self.meter(Instant::now(), baseline(&readings))?;
        Ok(Some((process, meter)))
    }

    fn readings(&self) -> Result<Readings<Vec<ProcessStat>>, ToolError> {
        self.sampler.readings().map_err(|error| {
            ToolError::unavailable(format!("{error} (is host.proc in the config right?)"))
        })
    }

    fn meter(
        &self,
        now: Instant,
        baseline: Option<Arc<Reading<Vec<ProcessStat>>>>,
    ) -> Result<CpuMeter, ToolError> {
        let baseline = baseline.and_then(|reading| {
            let window = now.saturating_duration_since(reading.at);
            if window < SHORTEST_WINDOW {
                return None;
            }
            let window = window.as_secs_f64();
            let ticks = reading
                .value
                .iter()
                .map(|p| (p.pid, (p.start_ticks, p.cpu_ticks)))
                .collect();
            Some((window, ticks))
        });
        Ok(CpuMeter {
            baseline,
            uptime_seconds: uptime(&self.proc)?,
            ticks_per_second: rustix::param::clock_ticks_per_second().max(1) as f64,
        })
    }
}

/// The reading to measure a fresh table against: the latest unless it is too recent to give a
/// window worth the name, then the one before.
fn baseline(readings: &Readings<Vec<ProcessStat>>) -> Option<Arc<Reading<Vec<ProcessStat>>>> {
    if readings.latest.at.elapsed() >= FRESH_AFTER {
        Some(Arc::clone(&readings.latest))
    } else {
        readings.previous.clone()
    }
}

fn uptime(proc: &Path) -> Result<f64, ToolError> {
    let uptime: procfs::Uptime = crate::domains::shared::kernel::read_proc(proc, "uptime")?;
    Ok(uptime.uptime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: u32, start_ticks: u64, cpu_ticks: u64) -> ProcessStat {
        table::parse_stat(
            pid,
            &format!(
                "{pid} (p) S 1 1 1 0 -1 0 0 0 0 0 {cpu_ticks} 0 0 0 20 0 1 0 {start_ticks} 0 0"
            ),
            0,
        )
        .expect("parses")
    }

    #[test]
    fn percent_is_over_the_window_or_else_the_lifetime() {
        let meter = CpuMeter {
            baseline: Some((2.0, HashMap::from([(10, (100, 500)), (11, (100, 0))]))),
            uptime_seconds: 100.0,
            ticks_per_second: 100.0,
        };
        // 100 ticks in 2 s at 100 ticks/s: half a core.
        assert_eq!(meter.percent(&process(10, 100, 600)), 50.0);
        // Pid 11 was reused (another start time): measured over its own life of 50 s.
        assert_eq!(meter.percent(&process(11, 5000, 250)), 5.0);
        assert_eq!(meter.basis(), (CpuBasis::Interval, Some(2.0)));
    }
}
