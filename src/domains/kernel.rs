//! Facts the kernel reports that more than one domain needs. Not a domain: no tools.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};

/// `btime` from `/proc/stat`: the boot time the kernel itself records.
pub fn boot_time(proc: &Path) -> Option<DateTime<Utc>> {
    let text = std::fs::read_to_string(proc.join("stat")).ok()?;
    let seconds: i64 = text
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    DateTime::from_timestamp(seconds, 0)
}

/// A process's start time as callers see it: the boot time plus the `starttime` clock ticks of
/// `/proc/PID/stat`, RFC 3339 in UTC with milliseconds.
pub fn process_start_time(boot: DateTime<Utc>, ticks: u64) -> String {
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    let millis = ticks.saturating_mul(1000) / per_second;
    let started = boot + chrono::Duration::milliseconds(i64::try_from(millis).unwrap_or(i64::MAX));
    started.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Reads and parses one file under the host's `/proc` (or `/sys`), with an error that points at
/// the `[host]` configuration when the file is missing.
pub fn read_proc<T: procfs::FromRead>(
    root: &Path,
    file: &str,
) -> Result<T, crate::tool::ToolError> {
    let path = root.join(file);
    T::from_file(&path).map_err(|error| {
        crate::tool::ToolError::unavailable(format!(
            "cannot read {}: {error} (is [host] in the config right?)",
            path.display()
        ))
    })
}

/// Rounds a share or rate to one decimal: the precision a reader uses, without float noise.
pub fn tenths(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// The kernel reports load averages with two decimals; keep them, not `f32` noise.
pub fn hundredths(value: f32) -> f64 {
    (f64::from(value) * 100.0).round() / 100.0
}
