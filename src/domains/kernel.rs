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
