//! `disk_io`: per block device throughput, IOPS and utilisation, from the change in
//! `/proc/diskstats` between two background readings (since boot for the first answer).
//!
//! `/proc/diskstats` counts in 512-byte sectors whatever the device's own sector size, and its
//! `io_ticks` (milliseconds with at least one request in flight) gives utilisation as
//! `iostat -x` computes `%util`.

use std::collections::HashSet;
use std::path::PathBuf;

use procfs::{DiskStat, DiskStats, FromRead, Uptime};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{HostConfig, SamplerConfig};
use crate::domains::shared::kernel::tenths;
use crate::domains::shared::pressure::{self, Pressure};
use crate::domains::shared::sampling::{Basis, Readings, Sampler};
use crate::render;
use crate::tool::{Collect, Declaration, Domain, Render, ToolContext, ToolError};

const SECTOR_BYTES: u64 = 512;

pub(crate) static DISK_IO: Declaration = Declaration::read(
    Domain::Storage,
    "disk_io",
    "Disk I/O",
    "Per block device: read and write bytes/s, reads and writes per second (IOPS), \
     utilisation % (time busy), requests in flight, and bytes moved since boot; \
     plus I/O pressure. Whole disks with any I/O since boot by default; \
     include_partitions and include_idle widen the list. Rates cover the last \
     second; the first answer after a quiet spell averages since boot and says so.",
)
.paged("pass `device` to ask about one device");

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiskIoArguments {
    /// Only this device, by kernel name (`sda`, `nvme0n1`, `vda1`, `dm-0`).
    pub device: Option<String>,
    /// Also list partitions, not only whole disks.
    pub include_partitions: Option<bool>,
    /// Also list devices with no I/O since boot (unused loop and ram devices).
    pub include_idle: Option<bool>,
}

/// The answer of `disk_io`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct DiskIo {
    pub basis: Basis,
    /// The time the rates are measured over, when `basis` is `interval`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<f64>,
    pub devices: Vec<DeviceIo>,
    /// Devices left out as partitions or idle.
    pub hidden: u32,
    /// Share of time tasks stalled on I/O, when the kernel reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pressure: Option<Pressure>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct DeviceIo {
    /// Kernel name, as in `/dev/NAME`.
    pub device: String,
    /// A partition rather than a whole disk.
    pub partition: bool,
    pub read_bytes_per_second: u64,
    pub write_bytes_per_second: u64,
    pub reads_per_second: f64,
    pub writes_per_second: f64,
    /// Share of time with at least one request in flight (`iostat -x` `%util`).
    pub utilization_percent: f64,
    /// Requests in flight now.
    pub in_flight: u64,
    /// Bytes read since boot.
    pub read_bytes: u64,
    /// Bytes written since boot.
    pub written_bytes: u64,
}

impl Render for DiskIo {
    fn render_text(&self) -> String {
        let basis = match (self.basis, self.window_seconds) {
            (Basis::Interval, Some(window)) => format!("over {window}s"),
            _ => "since boot".into(),
        };
        let mut lines = vec![match &self.pressure {
            Some(pressure) => format!("disk I/O {basis}; pressure {}", pressure.render()),
            None => format!("disk I/O {basis}"),
        }];
        for device in &self.devices {
            lines.push(format!(
                "{} read {}/s ({} IOPS), write {}/s ({} IOPS), {}% busy, {} in flight",
                render::text(&device.device),
                render::bytes(device.read_bytes_per_second),
                device.reads_per_second,
                render::bytes(device.write_bytes_per_second),
                device.writes_per_second,
                device.utilization_percent,
                device.in_flight,
            ));
        }
        if self.hidden > 0 {
            lines.push(format!(
                "({} hidden; include_partitions / include_idle)",
                render::count(
                    self.hidden,
                    "partition or idle device",
                    "partitions or idle devices"
                )
            ));
        }
        lines.join("\n")
    }
}

/// One background reading: the counters, the uptime they accumulated over, and which devices
/// are whole disks.
pub(crate) struct DiskReading {
    stats: Vec<DiskStat>,
    uptime_seconds: f64,
    whole_disks: HashSet<String>,
}

fn read(host: &HostConfig) -> Result<DiskReading, String> {
    let stats = DiskStats::from_file(host.proc.join("diskstats"))
        .map_err(|error| format!("cannot read {}/diskstats: {error}", host.proc.display()))?;
    let uptime = Uptime::from_file(host.proc.join("uptime"))
        .map_err(|error| format!("cannot read {}/uptime: {error}", host.proc.display()))?;
    // /sys/block lists whole disks; names with '/' (cciss/c0d0) appear there with '!'.
    let whole_disks = std::fs::read_dir(host.sys.join("block"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().replace('!', "/"))
                .collect()
        })
        .unwrap_or_default();
    Ok(DiskReading {
        stats: stats.0,
        uptime_seconds: uptime.uptime,
        whole_disks,
    })
}

/// Answers `disk_io` for the host `[host]` locates.
pub(crate) struct DiskIoMonitor {
    proc: PathBuf,
    sampler: Sampler<DiskReading>,
}

impl DiskIoMonitor {
    pub(crate) fn new(host: &HostConfig, sampler: &SamplerConfig) -> Self {
        let host_for_readings = host.clone();
        Self {
            proc: host.proc.clone(),
            sampler: Sampler::new(sampler, move || read(&host_for_readings)),
        }
    }

    pub(crate) fn io(&self, arguments: &DiskIoArguments) -> Result<DiskIo, ToolError> {
        let readings = self.sampler.readings().map_err(|error| {
            ToolError::unavailable(format!("{error} (is [host] in the config right?)"))
        })?;
        let answer = io_from(&readings, arguments, pressure::io(&self.proc));
        if let Some(device) = &arguments.device
            && answer.devices.is_empty()
        {
            let known: Vec<&str> = readings
                .latest
                .value
                .stats
                .iter()
                .map(|stat| stat.name.as_str())
                .collect();
            return Err(ToolError::not_found(format!(
                "no block device is named `{device}`; the host has: {}",
                known.join(", ")
            )));
        }
        Ok(answer)
    }
}

fn io_from(
    readings: &Readings<DiskReading>,
    arguments: &DiskIoArguments,
    pressure: Option<Pressure>,
) -> DiskIo {
    let latest = &readings.latest.value;
    let earlier = readings.earlier();
    let (basis, window_seconds) = readings.basis();
    let mut devices = Vec::new();
    let mut hidden = 0;
    for stat in &latest.stats {
        let partition = !latest.whole_disks.contains(&stat.name);
        let idle = stat.reads == 0 && stat.writes == 0;
        let wanted = match &arguments.device {
            Some(device) => *device == stat.name,
            None => {
                let shown = (!partition || arguments.include_partitions == Some(true))
                    && (!idle || arguments.include_idle == Some(true));
                hidden += u32::from(!shown);
                shown
            }
        };
        if !wanted {
            continue;
        }
        let before = earlier.and_then(|(window, reading)| {
            let stat_before = reading.stats.iter().find(|old| old.name == stat.name)?;
            Some((window.as_secs_f64(), stat_before))
        });
        devices.push(device_io(stat, before, latest.uptime_seconds, partition));
    }
    DiskIo {
        basis,
        window_seconds,
        devices,
        hidden,
        pressure,
    }
}

/// Rates over the window since `before`, or since boot (`uptime` seconds) without it.
fn device_io(
    stat: &DiskStat,
    before: Option<(f64, &DiskStat)>,
    uptime: f64,
    partition: bool,
) -> DeviceIo {
    let zero = DiskStat {
        reads: 0,
        sectors_read: 0,
        writes: 0,
        sectors_written: 0,
        time_in_progress: 0,
        ..stat.clone()
    };
    let (seconds, base) = before.unwrap_or((uptime, &zero));
    let seconds = seconds.max(0.001);
    let delta = |now: u64, then: u64| now.saturating_sub(then) as f64;
    let per_second = |now: u64, then: u64| delta(now, then) / seconds;
    let busy_ms = delta(stat.time_in_progress, base.time_in_progress);
    DeviceIo {
        device: stat.name.clone(),
        partition,
        read_bytes_per_second: (per_second(stat.sectors_read, base.sectors_read)
            * SECTOR_BYTES as f64)
            .round() as u64,
        write_bytes_per_second: (per_second(stat.sectors_written, base.sectors_written)
            * SECTOR_BYTES as f64)
            .round() as u64,
        reads_per_second: tenths(per_second(stat.reads, base.reads)),
        writes_per_second: tenths(per_second(stat.writes, base.writes)),
        utilization_percent: tenths((busy_ms / (seconds * 10.0)).min(100.0)),
        in_flight: stat.in_progress,
        read_bytes: stat.sectors_read * SECTOR_BYTES,
        written_bytes: stat.sectors_written * SECTOR_BYTES,
    }
}

impl Collect for DiskIoMonitor {
    type Arguments = DiskIoArguments;
    type Output = DiskIo;

    const DECLARATION: &'static Declaration = &DISK_IO;
    // procfs reads are in-memory and take microseconds.
    const INLINE: bool = true;

    fn collect(&self, arguments: DiskIoArguments, _: &ToolContext) -> Result<DiskIo, ToolError> {
        self.io(&arguments)
    }
}
