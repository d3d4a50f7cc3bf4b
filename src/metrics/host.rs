//! The host's figures under node_exporter's names and units, so dashboards and alerts written
//! for node_exporter read them unchanged: CPU time by mode (`/proc/stat`), memory (`/proc/meminfo`),
//! load (`/proc/loadavg`), pressure stall totals (`/proc/pressure/*`), boot time, and
//! filesystems (`statvfs` of the mount table, as `disk_usage` measures them). Read at each
//! scrape; a file the kernel does not have leaves its series out.

use std::fs::File;
use std::path::Path;

use procfs::{FromRead, FromReadSI, KernelStats, LoadAverage, Meminfo};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::config::HostConfig;
use crate::domains::shared::filesystems::{DiskUsageArguments, DiskUsageCollector};

type Encoded = Result<(), std::fmt::Error>;

#[derive(Debug)]
pub(super) struct HostCollector {
    host: HostConfig,
}

impl HostCollector {
    pub(super) fn new(host: HostConfig) -> Self {
        Self { host }
    }
}

impl Collector for HostCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Encoded {
        let proc = &self.host.proc;
        if let Ok(file) = File::open(proc.join("stat"))
            && let Ok(stats) = KernelStats::from_read(file, procfs::current_system_info())
        {
            cpu_seconds(&mut encoder, &stats)?;
            gauge(
                &mut encoder,
                "node_boot_time_seconds",
                "Node boot time, in unixtime",
                stats.btime as f64,
            )?;
        }
        if let Ok(memory) = Meminfo::from_file(proc.join("meminfo")) {
            memory_bytes(&mut encoder, &memory)?;
        }
        if let Ok(load) = LoadAverage::from_file(proc.join("loadavg")) {
            gauge(
                &mut encoder,
                "node_load1",
                "1m load average",
                f64::from(load.one),
            )?;
            gauge(
                &mut encoder,
                "node_load5",
                "5m load average",
                f64::from(load.five),
            )?;
            gauge(
                &mut encoder,
                "node_load15",
                "15m load average",
                f64::from(load.fifteen),
            )?;
        }
        pressure_seconds(&mut encoder, proc)?;
        filesystems(&mut encoder, &self.host)
    }
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> Encoded {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> Encoded {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// `node_cpu_seconds_total{cpu,mode}`: seconds each CPU spent in each mode since boot.
fn cpu_seconds(encoder: &mut DescriptorEncoder, stats: &KernelStats) -> Encoded {
    let per_second = rustix::param::clock_ticks_per_second().max(1) as f64;
    let mut family = encoder.encode_descriptor(
        "node_cpu_seconds",
        "Seconds the CPUs spent in each mode",
        None,
        MetricType::Counter,
    )?;
    for (index, cpu) in stats.cpu_time.iter().enumerate() {
        let modes = [
            ("user", Some(cpu.user)),
            ("nice", Some(cpu.nice)),
            ("system", Some(cpu.system)),
            ("idle", Some(cpu.idle)),
            ("iowait", cpu.iowait),
            ("irq", cpu.irq),
            ("softirq", cpu.softirq),
            ("steal", cpu.steal),
        ];
        let cpu_label = index.to_string();
        for (mode, ticks) in modes {
            let Some(ticks) = ticks else { continue };
            let labels = [("cpu", cpu_label.as_str()), ("mode", mode)];
            ConstCounter::new(ticks as f64 / per_second).encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// `node_memory_*_bytes`, named after `/proc/meminfo`'s fields as node_exporter names them.
fn memory_bytes(encoder: &mut DescriptorEncoder, memory: &Meminfo) -> Encoded {
    let fields = [
        (
            "node_memory_MemTotal_bytes",
            "Memory information field MemTotal_bytes.",
            Some(memory.mem_total),
        ),
        (
            "node_memory_MemFree_bytes",
            "Memory information field MemFree_bytes.",
            Some(memory.mem_free),
        ),
        (
            "node_memory_MemAvailable_bytes",
            "Memory information field MemAvailable_bytes.",
            memory.mem_available,
        ),
        (
            "node_memory_Buffers_bytes",
            "Memory information field Buffers_bytes.",
            Some(memory.buffers),
        ),
        (
            "node_memory_Cached_bytes",
            "Memory information field Cached_bytes.",
            Some(memory.cached),
        ),
        (
            "node_memory_SwapTotal_bytes",
            "Memory information field SwapTotal_bytes.",
            Some(memory.swap_total),
        ),
        (
            "node_memory_SwapFree_bytes",
            "Memory information field SwapFree_bytes.",
            Some(memory.swap_free),
        ),
    ];
    for (name, help, value) in fields {
        if let Some(bytes) = value {
            gauge(encoder, name, help, bytes as f64)?;
        }
    }
    Ok(())
}

/// `node_pressure_{cpu,memory,io}_{waiting,stalled}_seconds_total`: the kernel's `total=`
/// stall time (µs) as seconds, as node_exporter's pressure collector reports it (CPU has no
/// `full` line system-wide, so no `stalled` series).
fn pressure_seconds(encoder: &mut DescriptorEncoder, proc: &Path) -> Encoded {
    let file = |resource: &str| proc.join("pressure").join(resource);
    if let Ok(cpu) = procfs::CpuPressure::from_file(file("cpu")) {
        stall_seconds(encoder, "cpu", "CPU time", cpu.some.total, None)?;
    }
    if let Ok(memory) = procfs::MemoryPressure::from_file(file("memory")) {
        let full = Some(memory.full.total);
        stall_seconds(encoder, "memory", "memory", memory.some.total, full)?;
    }
    if let Ok(io) = procfs::IoPressure::from_file(file("io")) {
        stall_seconds(encoder, "io", "IO", io.some.total, Some(io.full.total))?;
    }
    Ok(())
}

/// The waiting (`some`) and, where the kernel reports it, stalled (`full`) series of one
/// resource, from microseconds.
fn stall_seconds(
    encoder: &mut DescriptorEncoder,
    resource: &str,
    what: &str,
    some_micros: u64,
    full_micros: Option<u64>,
) -> Encoded {
    let seconds = |micros: u64| micros as f64 * 1e-6;
    counter(
        encoder,
        &format!("node_pressure_{resource}_waiting_seconds"),
        &format!("Total time in seconds that processes have waited for {what}"),
        seconds(some_micros),
    )?;
    if let Some(full) = full_micros {
        counter(
            encoder,
            &format!("node_pressure_{resource}_stalled_seconds"),
            &format!("Total time in seconds no process could make progress for want of {what}"),
            seconds(full),
        )?;
    }
    Ok(())
}

/// `node_filesystem_{size,free,avail}_bytes{device,fstype,mountpoint}` and `_readonly`, for
/// the filesystems `disk_usage` lists by default (no pseudo filesystems).
fn filesystems(encoder: &mut DescriptorEncoder, host: &HostConfig) -> Encoded {
    let arguments = DiskUsageArguments {
        include_pseudo: Some(false),
        path: None,
    };
    let Ok(usage) = DiskUsageCollector::new(host.clone()).usage(&arguments) else {
        return Ok(());
    };
    let series = [
        ("node_filesystem_size_bytes", "Filesystem size in bytes"),
        (
            "node_filesystem_free_bytes",
            "Filesystem free space in bytes",
        ),
        (
            "node_filesystem_avail_bytes",
            "Filesystem space available to non-root users in bytes",
        ),
        ("node_filesystem_readonly", "Filesystem read-only status"),
    ];
    for (index, (name, help)) in series.into_iter().enumerate() {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for filesystem in &usage.filesystems {
            let value = match index {
                0 => filesystem.size_bytes as f64,
                1 => filesystem.size_bytes.saturating_sub(filesystem.used_bytes) as f64,
                2 => filesystem.available_bytes as f64,
                _ => f64::from(u8::from(filesystem.read_only)),
            };
            let labels = [
                ("device", filesystem.device.as_str()),
                ("fstype", filesystem.fs_type.as_str()),
                ("mountpoint", filesystem.mount_point.as_str()),
            ];
            ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}
