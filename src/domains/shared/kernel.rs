//! Facts the kernel reports that more than one domain needs. Not a domain: no tools.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};

/// `btime` from `/proc/stat`: the boot time the kernel itself records.
pub(crate) fn boot_time(proc: &Path) -> Option<DateTime<Utc>> {
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
pub(crate) fn process_start_time(boot: DateTime<Utc>, ticks: u64) -> String {
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    let millis = ticks.saturating_mul(1000) / per_second;
    let started = boot + chrono::Duration::milliseconds(i64::try_from(millis).unwrap_or(i64::MAX));
    started.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Reads and parses one file under the host's `/proc` (or `/sys`), with an error that points at
/// the `[host]` configuration when the file is missing.
pub(crate) fn read_proc<T: procfs::FromRead>(
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
pub(crate) fn tenths(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// The kernel reports load averages with two decimals; keep them, not `f32` noise.
pub(crate) fn hundredths(value: f32) -> f64 {
    (f64::from(value) * 100.0).round() / 100.0
}

/// `/proc/cpuinfo` keys that name the CPU model: x86's `model name`, then what ARM, POWER and
/// others use.
pub(crate) const CPU_MODEL_KEYS: &[&str] = &[
    "model name",
    "Model",
    "cpu model",
    "Processor",
    "cpu",
    "Hardware",
];

/// The first CPU's block of `/proc/cpuinfo` (empty when unreadable).
pub(crate) fn first_cpuinfo_block(proc: &Path) -> String {
    let text = std::fs::read_to_string(proc.join("cpuinfo")).unwrap_or_default();
    text.split("\n\n").next().unwrap_or("").to_string()
}

/// The first non-empty value of any of `keys` in a `/proc/cpuinfo` block.
pub(crate) fn cpuinfo_field(block: &str, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|wanted| {
        block.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == *wanted && !value.trim().is_empty()).then(|| value.trim().to_string())
        })
    })
}

/// A sysfs CPU list (`0-3,8-11`) as CPU numbers; `None` when empty or malformed.
pub(crate) fn cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for range in text.trim().split(',').filter(|part| !part.is_empty()) {
        match range.split_once('-') {
            Some((start, end)) => {
                cpus.extend(start.parse::<u32>().ok()?..=end.parse::<u32>().ok()?)
            }
            None => cpus.push(range.parse().ok()?),
        }
    }
    (!cpus.is_empty()).then_some(cpus)
}

/// The online CPUs, from `/sys/devices/system/cpu/online`.
pub(crate) fn online_cpus(sys: &Path) -> Option<Vec<u32>> {
    cpu_list(&std::fs::read_to_string(sys.join("devices/system/cpu/online")).ok()?)
}

/// Physical cores and sockets of `online` CPUs, from their sysfs topology.
pub(crate) fn topology(sys: &Path, online: &[u32]) -> Option<(u32, u32)> {
    let mut cores = BTreeSet::new();
    let mut sockets = BTreeSet::new();
    for cpu in online {
        let topology = sys.join(format!("devices/system/cpu/cpu{cpu}/topology"));
        let read = |file: &str| -> Option<i64> {
            std::fs::read_to_string(topology.join(file))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        let package = read("physical_package_id")?;
        sockets.insert(package);
        cores.insert((package, read("core_id")?));
    }
    Some((cores.len() as u32, sockets.len().max(1) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_expand_ranges() {
        assert_eq!(cpu_list("0-3,8,10-11\n"), Some(vec![0, 1, 2, 3, 8, 10, 11]));
        assert_eq!(cpu_list("0"), Some(vec![0]));
        assert_eq!(cpu_list(""), None);
        assert_eq!(cpu_list("x"), None);
    }
}
