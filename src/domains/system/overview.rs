//! `system_overview`: the host at a glance, from the kernel: `uname`, `/proc`, `/sys` and
//! `statvfs`.
//!
//! Facts that cannot change while the host runs (OS release, CPU model and topology, boot time)
//! are read once; everything else is read fresh on every call, which costs a few small reads of
//! in-memory files.

use std::path::Path;
use std::sync::OnceLock;

use chrono::{DateTime, SecondsFormat, Utc};
use procfs::{LoadAverage, Meminfo, Uptime};
use schemars::JsonSchema;
use serde::Serialize;

use crate::config::HostConfig;
use crate::domains::shared::kernel;
use crate::render;
use crate::tool::{Collect, Declaration, Domain, NoArguments, Render, ToolContext, ToolError};

/// The answer of `system_overview`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct SystemOverview {
    /// The host name (`uname -n`).
    pub hostname: String,
    pub os: OperatingSystem,
    /// The kernel release (`uname -r`).
    pub kernel: String,
    /// The machine architecture (`uname -m`).
    pub arch: String,
    pub uptime_seconds: u64,
    /// When the host booted, RFC 3339 in UTC.
    pub boot_time: String,
    pub cpu: CpuSummary,
    pub load_average: LoadAverages,
    pub memory: MemorySummary,
    pub swap: SwapSummary,
    pub root_filesystem: FilesystemSummary,
    /// Processes (not threads) running now.
    pub process_count: u64,
}

/// The distribution, from `os-release`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct OperatingSystem {
    /// `NAME`, e.g. "Debian GNU/Linux".
    pub name: String,
    /// `VERSION`, e.g. "12 (bookworm)", when the distribution has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `ID`, e.g. "debian", when the distribution has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `PRETTY_NAME`, e.g. "Debian GNU/Linux 12 (bookworm)".
    pub pretty_name: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct CpuSummary {
    pub model: String,
    /// Online logical CPUs (hardware threads).
    pub logical_cpus: u32,
    /// Physical cores across all sockets.
    pub physical_cores: u32,
    pub sockets: u32,
}

/// Run-queue load averages over 1, 5 and 15 minutes.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct LoadAverages {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// RAM in bytes. `used` is `total - available`, what is not available to new work.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct MemorySummary {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct SwapSummary {
    pub total_bytes: u64,
    pub used_bytes: u64,
}

/// Sizes as `df` reports them: `used` counts blocks in use, `available` what unprivileged users
/// may still write (reserved blocks excluded).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct FilesystemSummary {
    pub mount_point: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
}

impl From<&LoadAverage> for LoadAverages {
    fn from(load: &LoadAverage) -> Self {
        Self {
            one: kernel::hundredths(load.one),
            five: kernel::hundredths(load.five),
            fifteen: kernel::hundredths(load.fifteen),
        }
    }
}

impl Render for SystemOverview {
    fn render_text(&self) -> String {
        let cpu = &self.cpu;
        let load = &self.load_average;
        let memory = &self.memory;
        let root = &self.root_filesystem;
        format!(
            "{host}: {os}, kernel {kernel} {arch}, up {uptime}; \
             {logical} ({cores}, {model}), load {l1:.2} {l5:.2} {l15:.2}; \
             memory {mem_used} used of {mem_total} ({mem_avail} available), \
             swap {swap_used} of {swap_total}; \
             {mount} {fs_used} used of {fs_size} ({fs_avail} available); {procs}",
            host = render::text(&self.hostname),
            os = render::text(&self.os.pretty_name),
            kernel = render::text(&self.kernel),
            arch = render::text(&self.arch),
            uptime = render::duration(self.uptime_seconds),
            logical = render::count(cpu.logical_cpus, "CPU", "CPUs"),
            cores = render::count(cpu.physical_cores, "core", "cores"),
            model = render::text(&cpu.model),
            l1 = load.one,
            l5 = load.five,
            l15 = load.fifteen,
            mem_used = render::bytes(memory.used_bytes),
            mem_total = render::bytes(memory.total_bytes),
            mem_avail = render::bytes(memory.available_bytes),
            swap_used = render::bytes(self.swap.used_bytes),
            swap_total = render::bytes(self.swap.total_bytes),
            mount = render::text(&root.mount_point),
            fs_used = render::bytes(root.used_bytes),
            fs_size = render::bytes(root.size_bytes),
            fs_avail = render::bytes(root.available_bytes),
            procs = render::count(self.process_count, "process", "processes"),
        )
    }
}

pub(crate) static SYSTEM_OVERVIEW: Declaration = Declaration::read(
    Domain::System,
    "system_overview",
    "System overview",
    "One-call summary of the host: hostname, OS and kernel, architecture, uptime and \
     boot time, CPU model and core counts, load averages, memory and swap, the root \
     filesystem, and the number of processes. Start here when asked how a machine \
     is doing.",
);

impl Collect for OverviewCollector {
    type Arguments = NoArguments;
    type Output = SystemOverview;

    const DECLARATION: &'static Declaration = &SYSTEM_OVERVIEW;

    fn collect(&self, _: NoArguments, _: &ToolContext) -> Result<SystemOverview, ToolError> {
        // statvfs on a hung network root could block: on the blocking pool.
        self.overview()
    }
}

/// Facts read once per process.
#[derive(Debug, Clone)]
struct StaticFacts {
    os: OperatingSystem,
    cpu_model: String,
    physical_cores: Option<u32>,
    sockets: Option<u32>,
    boot_time: Option<DateTime<Utc>>,
}

/// Reads the overview of the host whose filesystems [`HostConfig`] locates.
pub(crate) struct OverviewCollector {
    host: HostConfig,
    facts: OnceLock<StaticFacts>,
}

impl OverviewCollector {
    pub(crate) fn new(host: HostConfig) -> Self {
        Self {
            host,
            facts: OnceLock::new(),
        }
    }

    /// Collects the overview. Blocking: call it from a blocking thread.
    pub(crate) fn overview(&self) -> Result<SystemOverview, ToolError> {
        let proc = &self.host.proc;
        let facts = self.facts.get_or_init(|| self.static_facts());
        let uname = rustix::system::uname();
        let text = |bytes: &std::ffi::CStr| bytes.to_string_lossy().into_owned();

        let meminfo: Meminfo = kernel::read_proc(proc, "meminfo")?;
        let load: LoadAverage = kernel::read_proc(proc, "loadavg")?;
        let uptime: Uptime = kernel::read_proc(proc, "uptime")?;
        let logical_cpus = kernel::online_cpus(&self.host.sys)
            .map(|cpus| cpus.len() as u32)
            .unwrap_or_else(|| cpuinfo_count(proc));
        let root = filesystem(&self.host.rootfs)?;

        let uptime_seconds = uptime.uptime.max(0.0) as u64;
        let boot_time = facts.boot_time.unwrap_or_else(|| {
            Utc::now() - chrono::Duration::seconds(i64::try_from(uptime_seconds).unwrap_or(0))
        });
        let available = meminfo.mem_available.unwrap_or(meminfo.mem_free);
        Ok(SystemOverview {
            hostname: text(uname.nodename()),
            os: facts.os.clone(),
            kernel: text(uname.release()),
            arch: text(uname.machine()),
            uptime_seconds,
            boot_time: boot_time.to_rfc3339_opts(SecondsFormat::Secs, true),
            cpu: CpuSummary {
                model: facts.cpu_model.clone(),
                logical_cpus,
                physical_cores: facts.physical_cores.unwrap_or(logical_cpus),
                sockets: facts.sockets.unwrap_or(1),
            },
            load_average: LoadAverages::from(&load),
            memory: MemorySummary {
                total_bytes: meminfo.mem_total,
                used_bytes: meminfo.mem_total.saturating_sub(available),
                available_bytes: available,
            },
            swap: SwapSummary {
                total_bytes: meminfo.swap_total,
                used_bytes: meminfo.swap_total.saturating_sub(meminfo.swap_free),
            },
            root_filesystem: root,
            process_count: process_count(proc)?,
        })
    }

    fn static_facts(&self) -> StaticFacts {
        let proc = &self.host.proc;
        let (physical_cores, sockets) = kernel::online_cpus(&self.host.sys)
            .and_then(|online| kernel::topology(&self.host.sys, &online))
            .unzip();
        StaticFacts {
            os: os_release(&self.host.rootfs),
            cpu_model: kernel::cpuinfo_field(
                &kernel::first_cpuinfo_block(proc),
                kernel::CPU_MODEL_KEYS,
            )
            .unwrap_or_else(|| "unknown".into()),
            physical_cores,
            sockets,
            boot_time: kernel::boot_time(proc),
        }
    }
}

/// `os-release(5)`: `KEY=value` lines, values optionally shell-quoted. Parsed here because the
/// format is a few lines of rules and no crate for it is better kept than this.
fn os_release(rootfs: &Path) -> OperatingSystem {
    let text = ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|file| std::fs::read_to_string(rootfs.join(file)).ok())
        .unwrap_or_default();
    let value = |key: &str| {
        text.lines().find_map(|line| {
            let (name, value) = line.trim().split_once('=')?;
            (name == key).then(|| unquote(value.trim()))
        })
    };
    let name = value("NAME").unwrap_or_else(|| "Linux".into());
    let version = value("VERSION").or_else(|| value("VERSION_ID"));
    let pretty_name = value("PRETTY_NAME").unwrap_or_else(|| match &version {
        Some(version) => format!("{name} {version}"),
        None => name.clone(),
    });
    OperatingSystem {
        name,
        version,
        id: value("ID"),
        pretty_name,
    }
}

fn unquote(value: &str) -> String {
    let inner = value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .or_else(|| {
            value
                .strip_prefix('\'')
                .and_then(|rest| rest.strip_suffix('\''))
        })
        .unwrap_or(value);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn cpuinfo_count(proc: &Path) -> u32 {
    std::fs::read_to_string(proc.join("cpuinfo"))
        .map(|text| {
            text.lines()
                .filter(|line| {
                    line.split(':')
                        .next()
                        .is_some_and(|key| key.trim() == "processor")
                })
                .count() as u32
        })
        .unwrap_or(1)
        .max(1)
}

fn filesystem(mount_point: &Path) -> Result<FilesystemSummary, ToolError> {
    let stats = rustix::fs::statvfs(mount_point).map_err(|error| {
        ToolError::unavailable(format!(
            "cannot stat the filesystem at {}: {error}",
            mount_point.display()
        ))
    })?;
    let fragment = stats.f_frsize;
    Ok(FilesystemSummary {
        mount_point: "/".into(),
        size_bytes: stats.f_blocks * fragment,
        used_bytes: stats.f_blocks.saturating_sub(stats.f_bfree) * fragment,
        available_bytes: stats.f_bavail * fragment,
    })
}

/// Processes are the numeric directories of `/proc`.
fn process_count(proc: &Path) -> Result<u64, ToolError> {
    let entries = std::fs::read_dir(proc).map_err(|error| {
        ToolError::unavailable(format!("cannot list {}: {error}", proc.display()))
    })?;
    Ok(entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()))
        })
        .count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_are_unquoted() {
        assert_eq!(unquote(r#""Debian GNU/Linux""#), "Debian GNU/Linux");
        assert_eq!(unquote("'single'"), "single");
        assert_eq!(unquote("bare"), "bare");
        assert_eq!(unquote(r#""with \"escapes\"""#), r#"with "escapes""#);
    }

    #[test]
    fn os_release_reads_a_fake_root() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("etc")).expect("etc");
        std::fs::write(
            root.path().join("etc/os-release"),
            "NAME=\"Test OS\"\nVERSION_ID=7\nID=test\n",
        )
        .expect("write");
        let os = os_release(root.path());
        assert_eq!(os.name, "Test OS");
        assert_eq!(os.version.as_deref(), Some("7"));
        assert_eq!(os.id.as_deref(), Some("test"));
        assert_eq!(os.pretty_name, "Test OS 7");
    }
}
