//! `process_get`: one process in depth — command line, executable, working directory, users,
//! CPU and memory, threads, open files and limits, cgroup and container, I/O counters,
//! children — and, for the admin tier only, its environment with secret-looking values
//! redacted.
//!
//! One process, many files: read through `procfs`. Files the server may not read (another
//! user's `exe`, `cwd`, `fd`, `io`, `environ` need root or CAP_SYS_PTRACE) are left out and
//! named in `unreadable`.

use std::collections::BTreeMap;
use std::sync::Arc;

use procfs::process::{Limit, LimitValue, Process};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cpu_percent::{CpuBasis, ProcessUsage};
use super::fingerprint::{self, Fingerprints};
use super::table;
use crate::bounded::Bounded;
use crate::domains::shared::kernel;
use crate::domains::shared::nvidia::Nvidia;
use crate::domains::shared::secret_names::is_secret_key;
use crate::domains::shared::users::{UserNames, name_of};
use crate::render;
use crate::tool::{Collect, Declaration, Domain, Render, Tier, ToolContext, ToolError};

pub(crate) static PROCESS_GET: Declaration = Declaration::read(
    Domain::Process,
    "process_get",
    "Process details",
    "One process in depth: full command line, executable, working directory, real \
     and effective user, state, start time, CPU % and CPU seconds, memory (RSS, \
     virtual, swap), threads, open file descriptors against their limit, resource \
     limits, cgroup and container id, I/O counters, and child pids. \
     include_environment (admin tier only) adds its environment, with \
     secret-looking values redacted. Pass start_time from process_list to be sure \
     the pid still names the same process.",
);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetArguments {
    pub pid: Bounded<1, 4_194_304>,
    /// The start time process_list reported; when given, a pid now naming another process is
    /// an error rather than an answer about the wrong process.
    pub start_time: Option<String>,
    /// Add the environment (tier admin; values of secret-looking keys are redacted).
    pub include_environment: Option<bool>,
}

/// The answer of `process_get`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ProcessDetails {
    pub pid: u32,
    pub ppid: u32,
    pub name: String,
    pub state: String,
    /// The arguments, `argv[0]` first; empty for kernel threads and zombies.
    pub command_line: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The effective user.
    pub user: String,
    /// The real user, when it differs (setuid programs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_user: Option<String>,
    pub start_time: String,
    pub kernel_thread: bool,
    pub cpu: ProcessCpu,
    pub memory: ProcessMemory,
    pub threads: u64,
    pub nice: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_files: Option<OpenFiles>,
    /// Resource limits (`ulimit`); `unlimited` or a number in the unit given.
    pub limits: Vec<ResourceLimit>,
    /// The cgroups the process is in: each distinct path once, with the controllers (cgroup
    /// v1 hierarchies) that place it there; on a cgroup v2 host one path and no controllers.
    pub cgroups: Vec<CgroupMembership>,
    /// The full container id, for a process in a container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io: Option<ProcessIo>,
    /// Pids of the direct children.
    pub children: Vec<u32>,
    /// With include_environment (admin tier): variables, secret-looking values as
    /// `[redacted]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<BTreeMap<String, String>>,
    /// Parts this server was not allowed to read (another user's process without root or
    /// CAP_SYS_PTRACE). A zombie has none of them, and says so in the text instead.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

/// One cgroup path and the v1 controllers whose hierarchies place the process at it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct CgroupMembership {
    /// `cpu`, `memory`, `name=systemd`, ...; empty for the cgroup v2 (unified) hierarchy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub controllers: Vec<String>,
    pub path: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ProcessCpu {
    /// Per core: 200 is two cores busy.
    pub percent: f64,
    pub basis: CpuBasis,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<f64>,
    pub user_seconds: f64,
    pub system_seconds: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ProcessMemory {
    pub rss_bytes: u64,
    pub virtual_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_bytes: Option<u64>,
    /// The largest RSS it has had.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// GPU memory it holds, summed over NVIDIA GPUs (NVML); only for processes on a GPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct OpenFiles {
    pub count: u64,
    /// The soft limit on open files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ResourceLimit {
    pub name: String,
    pub soft: String,
    pub hard: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// `/proc/PID/io`: bytes through system calls (`rchar`, `wchar`) and bytes that reached storage.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ProcessIo {
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub read_chars: u64,
    pub write_chars: u64,
    pub read_syscalls: u64,
    pub write_syscalls: u64,
}

impl Render for ProcessDetails {
    fn render_text(&self) -> String {
        let mut lines = vec![format!(
            "{} {} ({}) user {} started {}, ppid {}",
            self.pid,
            render::text(&self.name),
            self.state,
            render::text(&self.user),
            self.start_time,
            self.ppid
        )];
        if !self.command_line.is_empty() {
            lines.push(format!(
                "command: {}",
                render::join(&self.command_line, " ")
            ));
        }
        if let Some(exe) = &self.exe {
            lines.push(format!("exe: {}", render::text(exe)));
        }
        if let Some(cwd) = &self.cwd {
            lines.push(format!("cwd: {}", render::text(cwd)));
        }
        lines.push(format!(
            "cpu {}% ({}s user, {}s system); rss {}, virtual {}; {}",
            self.cpu.percent,
            self.cpu.user_seconds,
            self.cpu.system_seconds,
            render::bytes(self.memory.rss_bytes),
            render::bytes(self.memory.virtual_bytes),
            render::count(self.threads, "thread", "threads")
        ));
        if let Some(gpu) = self.memory.gpu_bytes {
            lines.push(format!("gpu memory {}", render::bytes(gpu)));
        }
        if let Some(files) = &self.open_files {
            match files.limit {
                Some(limit) => lines.push(format!("open files {} of {limit}", files.count)),
                None => lines.push(format!("open files {}", files.count)),
            }
        }
        if let Some(io) = &self.io {
            lines.push(format!(
                "io read {} written {}",
                render::bytes(io.read_bytes),
                render::bytes(io.write_bytes)
            ));
        }
        if let Some(container) = &self.container_id {
            lines.push(format!("container {}", render::text(container)));
        }
        for cgroup in &self.cgroups {
            if cgroup.controllers.is_empty() {
                lines.push(format!("cgroup {}", render::text(&cgroup.path)));
            } else {
                lines.push(format!(
                    "cgroup {}: {}",
                    render::join(&cgroup.controllers, ","),
                    render::text(&cgroup.path)
                ));
            }
        }
        if !self.children.is_empty() {
            let children: Vec<String> = self.children.iter().map(u32::to_string).collect();
            lines.push(format!("children {}", children.join(" ")));
        }
        if let Some(environment) = &self.environment {
            lines.extend(
                environment.iter().map(|(key, value)| {
                    format!("env {}={}", render::text(key), render::text(value))
                }),
            );
        }
        if self.state == table::state_name('Z') {
            lines.push(
                "(a zombie: it has exited and waits for its parent to collect its exit status; \
                 it has no memory, files, executable or working directory left)"
                    .into(),
            );
        } else if !self.unreadable.is_empty() {
            lines.push(format!(
                "(not readable here: {})",
                self.unreadable.join(", ")
            ));
        }
        lines.join("\n")
    }
}

/// The entries of `/proc/PID/fd`. (procfs's `fd_count` counts `.` and `..` when the kernel
/// does not give the count as the directory's size, so a process with no open files had 2.)
/// Open descriptors against the soft `RLIMIT_NOFILE`, from `/proc/PID/fd`.
fn open_files(
    proc: &std::path::Path,
    pid: u32,
    limits: Option<&procfs::process::Limits>,
) -> Option<OpenFiles> {
    let count = open_descriptors(proc, pid).ok()?;
    let limit = limits.and_then(|l| match l.max_open_files.soft_limit {
        LimitValue::Value(value) => Some(value),
        LimitValue::Unlimited => None,
    });
    Some(OpenFiles { count, limit })
}

/// `/proc/PID/io`, readable only for the process's owner (or root).
fn io_counters(process: &Process) -> Option<ProcessIo> {
    let io = process.io().ok()?;
    Some(ProcessIo {
        read_bytes: io.read_bytes,
        write_bytes: io.write_bytes,
        read_chars: io.rchar,
        write_chars: io.wchar,
        read_syscalls: io.syscr,
        write_syscalls: io.syscw,
    })
}

/// `/proc/PID/environ`, each value under a secret-looking name redacted.
fn environment(process: &Process) -> Option<BTreeMap<String, String>> {
    let variables = process.environ().ok()?;
    Some(
        variables
            .into_iter()
            .map(|(key, value)| {
                let key = key.to_string_lossy().into_owned();
                let value = if is_secret_key(&key) {
                    "[redacted]".to_string()
                } else {
                    value.to_string_lossy().into_owned()
                };
                (key, value)
            })
            .collect(),
    )
}

/// The pids whose parent is `pid`: from `/proc/PID/task/*/children` where the kernel has it,
/// else from a walk of the whole table.
fn children(proc: &std::path::Path, pid: u32) -> Vec<u32> {
    match table::children(proc, pid) {
        Some(children) => children,
        None => table::snapshot(proc)
            .map(|all| table::children_of(&all).remove(&pid).unwrap_or_default())
            .unwrap_or_default(),
    }
}

fn open_descriptors(proc: &std::path::Path, pid: u32) -> std::io::Result<u64> {
    let directory = proc.join(pid.to_string()).join("fd");
    let size = std::fs::metadata(&directory)?.len();
    if size > 0 {
        // Linux 6.2 and later give the count as the size.
        return Ok(size);
    }
    Ok(std::fs::read_dir(&directory)?.count() as u64)
}

/// Each distinct path once, with every controller that places the process there.
fn grouped(memberships: Vec<(Vec<String>, String)>) -> Vec<CgroupMembership> {
    let mut groups: Vec<CgroupMembership> = Vec::new();
    for (controllers, path) in memberships {
        match groups.iter_mut().find(|group| group.path == path) {
            Some(group) => group.controllers.extend(controllers),
            None => groups.push(CgroupMembership { controllers, path }),
        }
    }
    for group in &mut groups {
        group.controllers.sort();
        group.controllers.dedup();
    }
    groups
}

/// Answers `process_get`.
pub(crate) struct ProcessInspector {
    usage: Arc<ProcessUsage>,
    users: Arc<UserNames>,
    nvidia: Arc<Nvidia>,
    /// The answer gives out a start time: what it was given out for goes here.
    fingerprints: Arc<Fingerprints>,
}

impl ProcessInspector {
    pub(crate) fn new(
        usage: Arc<ProcessUsage>,
        users: Arc<UserNames>,
        nvidia: Arc<Nvidia>,
        fingerprints: Arc<Fingerprints>,
    ) -> Self {
        Self {
            usage,
            users,
            nvidia,
            fingerprints,
        }
    }

    /// Blocking: reads several files of `/proc/PID`.
    pub(crate) fn get(&self, arguments: &GetArguments) -> Result<ProcessDetails, ToolError> {
        let pid = arguments.pid.get() as u32;
        let proc = self.usage.proc();
        let gone = || {
            ToolError::not_found(format!(
                "no process {pid}: it has exited, or never existed; list the processes again"
            ))
        };
        let process = Process::new_with_root(proc.join(pid.to_string())).map_err(|_| gone())?;
        let (stat, meter) = self.usage.one(pid)?.ok_or_else(gone)?;
        let boot = self.usage.boot_time()?;
        let start_time = kernel::process_start_time(boot, stat.start_ticks);
        if let Some(expected) = &arguments.start_time
            && *expected != start_time
        {
            return Err(ToolError::not_found(format!(
                "pid {pid} is another process now ({} started {start_time}, not {expected}): \
                 the one you saw has exited",
                stat.name
            )));
        }
        // This answer gives out the start time: record what the process runs, so that
        // process_signal with it can tell this process from one that takes its pid within the
        // same clock tick. Kernel threads are never signalled.
        if !stat.kernel_thread() && fingerprint::same_pid_namespace(proc) {
            self.fingerprints.give_out(proc, pid, stat.start_ticks);
        }

        let mut unreadable = Vec::new();
        let mut note = |what: &str| unreadable.push(what.to_string());
        let status = process.status().ok();
        let users = self.users.table();
        let euid = status.as_ref().map_or(stat.uid, |s| s.euid);
        let ruid = status.as_ref().map(|s| s.ruid).filter(|ruid| *ruid != euid);
        let kib = |value: Option<u64>| value.map(|kib| kib * 1024);
        let limits = process.limits().ok();
        let exe = process.exe().ok().map(|path| path.display().to_string());
        if exe.is_none() && !stat.kernel_thread() {
            note("exe");
        }
        let cwd = process.cwd().ok().map(|path| path.display().to_string());
        if cwd.is_none() {
            note("cwd");
        }
        let open_files = open_files(proc, pid, limits.as_ref());
        if open_files.is_none() {
            note("fd");
        }
        let io = io_counters(&process);
        if io.is_none() {
            note("io");
        }
        let environment = if arguments.include_environment == Some(true) {
            let environment = environment(&process);
            if environment.is_none() {
                note("environ");
            }
            environment
        } else {
            None
        };
        let memberships = table::cgroup_memberships(proc, pid);
        let cgroups: Vec<String> = memberships.iter().map(|(_, path)| path.clone()).collect();
        let children = children(proc, pid);
        let ticks = rustix::param::clock_ticks_per_second().max(1) as f64;
        let (utime, stime) = process
            .stat()
            .map(|full| (full.utime, full.stime))
            .unwrap_or((stat.cpu_ticks, 0));
        let (basis, window_seconds) = meter.basis();
        let page = rustix::param::page_size() as u64;
        Ok(ProcessDetails {
            pid,
            ppid: stat.ppid,
            name: stat.name.clone(),
            state: table::state_name(stat.state).into(),
            command_line: table::command_line(proc, pid).unwrap_or_default(),
            exe,
            cwd,
            user: name_of(&users, euid),
            real_user: ruid.map(|uid| name_of(&users, uid)),
            start_time,
            kernel_thread: stat.kernel_thread(),
            cpu: ProcessCpu {
                percent: meter.percent(&stat),
                basis,
                window_seconds,
                user_seconds: (utime as f64 / ticks * 100.0).round() / 100.0,
                system_seconds: (stime as f64 / ticks * 100.0).round() / 100.0,
            },
            memory: ProcessMemory {
                // status sums the kernel's per-CPU counters; stat's figure is approximate.
                rss_bytes: kib(status.as_ref().and_then(|s| s.vmrss))
                    .unwrap_or(stat.rss_pages * page),
                virtual_bytes: stat.virtual_bytes,
                swap_bytes: kib(status.as_ref().and_then(|s| s.vmswap)),
                peak_rss_bytes: kib(status.as_ref().and_then(|s| s.vmhwm)),
                gpu_bytes: self.nvidia.memory_by_pid().get(&pid).copied().flatten(),
            },
            threads: stat.threads,
            nice: stat.nice,
            open_files,
            limits: limits.map(|l| resource_limits(&l)).unwrap_or_default(),
            container_id: table::container_id(&cgroups),
            cgroups: grouped(memberships),
            io,
            children,
            environment,
            unreadable,
        })
    }
}

fn resource_limits(limits: &procfs::process::Limits) -> Vec<ResourceLimit> {
    let entry = |name: &str, limit: &Limit, unit: Option<&str>| {
        let text = |value: &LimitValue| match value {
            LimitValue::Unlimited => "unlimited".to_string(),
            LimitValue::Value(value) => value.to_string(),
        };
        ResourceLimit {
            name: name.into(),
            soft: text(&limit.soft_limit),
            hard: text(&limit.hard_limit),
            unit: unit.map(String::from),
        }
    };
    vec![
        entry("open_files", &limits.max_open_files, Some("files")),
        entry("processes", &limits.max_processes, Some("processes")),
        entry("cpu_time", &limits.max_cpu_time, Some("seconds")),
        entry("file_size", &limits.max_file_size, Some("bytes")),
        entry("data_size", &limits.max_data_size, Some("bytes")),
        entry("stack_size", &limits.max_stack_size, Some("bytes")),
        entry("core_file_size", &limits.max_core_file_size, Some("bytes")),
        entry("resident_set", &limits.max_resident_set, Some("bytes")),
        entry("locked_memory", &limits.max_locked_memory, Some("bytes")),
        entry("address_space", &limits.max_address_space, Some("bytes")),
        entry("file_locks", &limits.max_file_locks, Some("locks")),
        entry(
            "pending_signals",
            &limits.max_pending_signals,
            Some("signals"),
        ),
        entry("msgqueue_size", &limits.max_msgqueue_size, Some("bytes")),
        entry("nice_priority", &limits.max_nice_priority, None),
        entry("realtime_priority", &limits.max_realtime_priority, None),
        entry("realtime_timeout", &limits.max_realtime_timeout, Some("us")),
    ]
}

impl Collect for ProcessInspector {
    type Arguments = GetArguments;
    type Output = ProcessDetails;

    const DECLARATION: &'static Declaration = &PROCESS_GET;

    fn collect(
        &self,
        arguments: GetArguments,
        _: &ToolContext,
    ) -> Result<ProcessDetails, ToolError> {
        self.get(&arguments)
    }

    /// The environment holds what a process was given to keep (tokens, passwords in
    /// variables with plain names): only the `admin` tier reads it.
    fn required_tier(&self, arguments: &GetArguments) -> Option<(Tier, String)> {
        (arguments.include_environment == Some(true))
            .then(|| (Tier::Admin, "include_environment".to_string()))
    }
}
