//! `process_list`: the processes of the host, sorted, filtered and paged, in as few bytes as
//! the question needs (`fields` picks the columns).

use std::sync::Arc;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cpu_percent::{CpuBasis, ProcessUsage};
use super::fingerprint::{self, Fingerprints};
use super::table::{self, ProcessStat};
use crate::domains::shared::kernel::{self, tenths};
use crate::domains::shared::nvidia::Nvidia;
use crate::domains::shared::paging::{PageInfo, PageRequest};
use crate::domains::shared::users::{Table, UserNames, name_of};
use crate::render;
use crate::tool::{Collect, Declaration, Domain, OutputCap, Render, ToolContext, ToolError};

pub(crate) static PROCESS_LIST: Declaration = Declaration::read(
    Domain::Process,
    "process_list",
    "List processes",
    "The host's processes, sorted by cpu (default), memory, pid, start or name; \
     filtered by name (substring of the name or command line, or name_regex), \
     user, state or container id; paged with limit (default 20) and cursor. Each \
     row: pid, user, name, state, CPU % (over the last second, like top), RSS, \
     start time (what process_signal wants) and the command line, cut to 120 \
     characters; `fields` picks other columns (ppid, threads, memory_percent, \
     container).",
)
.paged("narrow with name/user/state, fewer `fields`, or page with cursor");

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 500;
const COMMAND_CHARS: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SortKey {
    /// CPU %, busiest first.
    #[default]
    Cpu,
    /// Resident memory, largest first.
    Memory,
    /// Process id, lowest first.
    Pid,
    /// Start time, newest first.
    Start,
    /// Name, A to Z.
    Name,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Order {
    Asc,
    Desc,
}

/// Process states, as `ps` letters name them: R running, S sleeping, D disk_sleep
/// (uninterruptible), Z zombie, T stopped, t tracing_stop, I idle (kernel threads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StateFilter {
    Running,
    Sleeping,
    DiskSleep,
    Zombie,
    Stopped,
    TracingStop,
    Idle,
}

impl StateFilter {
    fn matches(self, letter: char) -> bool {
        table::state_name(letter)
            == match self {
                StateFilter::Running => "running",
                StateFilter::Sleeping => "sleeping",
                StateFilter::DiskSleep => "disk_sleep",
                StateFilter::Zombie => "zombie",
                StateFilter::Stopped => "stopped",
                StateFilter::TracingStop => "tracing_stop",
                StateFilter::Idle => "idle",
            }
    }
}

/// Columns a row can have; `pid` is always there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Field {
    Pid,
    Ppid,
    User,
    Name,
    State,
    CpuPercent,
    MemoryPercent,
    RssBytes,
    Threads,
    StartTime,
    Command,
    Container,
}

const DEFAULT_FIELDS: &[Field] = &[
    Field::User,
    Field::Name,
    Field::State,
    Field::CpuPercent,
    Field::RssBytes,
    Field::StartTime,
    Field::Command,
];

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListArguments {
    /// cpu (default), memory, pid, start or name.
    pub sort: Option<SortKey>,
    /// asc or desc; the default suits the key (busiest, largest, newest first; pid and name
    /// ascending).
    pub order: Option<Order>,
    /// Case-insensitive substring of the process name or its command line.
    pub name: Option<String>,
    /// Regular expression matched against the process name and its command line.
    pub name_regex: Option<String>,
    /// User name or numeric uid (the effective user).
    pub user: Option<String>,
    pub state: Option<StateFilter>,
    /// Container id, or its first characters (12 are what `docker ps` shows).
    pub container: Option<String>,
    /// Columns to return beside pid; default user, name, state, cpu_percent, rss_bytes,
    /// start_time, command.
    pub fields: Option<Vec<Field>>,
    /// Rows per page (default 20, at most 500).
    #[schemars(range(min = 1))]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page (with the same sort and filters).
    pub cursor: Option<String>,
}

/// The answer of `process_list`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ProcessList {
    pub processes: Vec<ProcessRow>,
    #[serde(flatten)]
    pub page: PageInfo,
    pub cpu_basis: CpuBasis,
    /// The time CPU % is measured over, when `cpu_basis` is `interval`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One process; columns not asked for are left out.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub(crate) struct ProcessRow {
    pub pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The executable name (`comm`, at most 15 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// running, sleeping, disk_sleep, zombie, stopped, tracing_stop, idle, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Per core: 200 is two cores busy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// Resident memory as a share of RAM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<u64>,
    /// RFC 3339 with milliseconds; with the pid it names this process for `process_signal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// The command line, cut to 120 characters (`…` marks a cut); `[name]` for kernel
    /// threads. process_get has it whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The first 12 characters of the container id, for processes in a container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// GPU memory it holds, summed over NVIDIA GPUs (bytes): only for processes on a GPU, where
    /// NVIDIA's driver (NVML) is there; `gpu_processes` has it per GPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_memory_bytes: Option<u64>,
}

impl Render for ProcessList {
    fn render_text(&self) -> String {
        let mut lines: Vec<String> = self.processes.iter().map(render_row).collect();
        let mut notes = self.notes.clone();
        if self.cpu_basis == CpuBasis::SinceStart {
            notes.push("CPU % since each process started; ask again for current use".into());
        }
        lines.extend(
            self.page
                .footer(self.processes.len(), ("process", "processes"), &notes),
        );
        lines.join("\n")
    }
}

fn render_row(row: &ProcessRow) -> String {
    let mut parts = vec![row.pid.to_string()];
    if let Some(user) = &row.user {
        parts.push(render::text(user).into_owned());
    }
    if let Some(state) = &row.state {
        parts.push(state.clone());
    }
    if let Some(cpu) = row.cpu_percent {
        parts.push(format!("{cpu}%"));
    }
    if let Some(memory) = row.memory_percent {
        parts.push(format!("mem {memory}%"));
    }
    if let Some(rss) = row.rss_bytes {
        parts.push(render::bytes(rss));
    }
    if let Some(gpu) = row.gpu_memory_bytes {
        parts.push(format!("gpu {}", render::bytes(gpu)));
    }
    if let Some(threads) = row.threads {
        parts.push(render::count(threads, "thread", "threads"));
    }
    if let Some(ppid) = row.ppid {
        parts.push(format!("ppid {ppid}"));
    }
    if let Some(start) = &row.start_time {
        parts.push(start.clone());
    }
    if let Some(container) = &row.container {
        parts.push(format!("container {}", render::text(container)));
    }
    // Names and command lines are whatever the process set (argv, prctl): escaped, so a
    // newline in them cannot start a forged row.
    match (&row.name, &row.command) {
        // A kernel thread's command is its name in brackets: once is enough.
        (Some(name), Some(command)) if *command == format!("[{name}]") => {
            parts.push(render::text(command).into_owned())
        }
        (Some(name), Some(command)) => {
            parts.push(format!("{}: {}", render::text(name), render::text(command)))
        }
        (Some(name), None) => parts.push(render::text(name).into_owned()),
        (None, Some(command)) => parts.push(render::text(command).into_owned()),
        (None, None) => {}
    }
    parts.join(" ")
}

/// Answers `process_list`.
pub(crate) struct ProcessLister {
    usage: Arc<ProcessUsage>,
    users: Arc<UserNames>,
    nvidia: Arc<Nvidia>,
    /// Rows that show a start time give it out: what it was given out for goes here.
    fingerprints: Arc<Fingerprints>,
}

/// A process on its way to a row: the command line and cgroup are read once, when first needed.
struct Candidate {
    stat: ProcessStat,
    cpu_percent: f64,
    command: Option<Option<Vec<String>>>,
    container: Option<Option<String>>,
}

impl Candidate {
    fn command(&mut self, proc: &std::path::Path) -> Option<&Vec<String>> {
        let pid = self.stat.pid;
        self.command
            .get_or_insert_with(|| table::command_line(proc, pid))
            .as_ref()
    }

    fn container(&mut self, proc: &std::path::Path) -> Option<&String> {
        let pid = self.stat.pid;
        self.container
            .get_or_insert_with(|| table::container_id(&table::cgroups(proc, pid)))
            .as_ref()
    }
}

impl ProcessLister {
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

    /// Blocking: reads all of `/proc`.
    pub(crate) fn list(
        &self,
        arguments: &ListArguments,
        cap: OutputCap,
    ) -> Result<ProcessList, ToolError> {
        let page = PageRequest::new(
            arguments.limit,
            arguments.cursor.as_deref(),
            DEFAULT_LIMIT,
            MAX_LIMIT,
        )?;
        let regex = arguments
            .name_regex
            .as_deref()
            .map(|pattern| {
                Regex::new(pattern).map_err(|error| {
                    ToolError::invalid_arguments(format!(
                        "name_regex `{pattern}` is not a valid regular expression: {error}"
                    ))
                })
            })
            .transpose()?;
        let users = self.users.table();
        let uid = arguments
            .user
            .as_deref()
            .map(|user| uid_of(&users, user))
            .transpose()?;
        let proc = self.usage.proc().to_path_buf();
        // A filter must see each process as it is now; a ranking may answer from the last
        // interval, as top does (usage.rs says why).
        let filtered = arguments.name.is_some()
            || arguments.name_regex.is_some()
            || arguments.user.is_some()
            || arguments.state.is_some();
        let snapshot = if filtered {
            self.usage.snapshot()?
        } else {
            self.usage.ranking()?
        };
        let meter = &snapshot.meter;
        let substring = arguments.name.as_ref().map(|name| name.to_lowercase());

        let mut candidates: Vec<Candidate> = Vec::new();
        for stat in snapshot.processes {
            if uid.is_some_and(|uid| stat.uid != uid)
                || arguments
                    .state
                    .is_some_and(|state| !state.matches(stat.state))
            {
                continue;
            }
            let mut candidate = Candidate {
                cpu_percent: meter.percent(&stat),
                stat,
                command: None,
                container: None,
            };
            if let Some(substring) = &substring {
                let in_name = candidate.stat.name.to_lowercase().contains(substring);
                if !in_name
                    && !candidate
                        .command(&proc)
                        .is_some_and(|args| args.join(" ").to_lowercase().contains(substring))
                {
                    continue;
                }
            }
            if let Some(regex) = &regex
                && !regex.is_match(&candidate.stat.name)
                && !candidate
                    .command(&proc)
                    .is_some_and(|args| regex.is_match(&args.join(" ")))
            {
                continue;
            }
            if let Some(wanted) = &arguments.container {
                let wanted = wanted.to_ascii_lowercase();
                if !candidate
                    .container(&proc)
                    .is_some_and(|id| id.starts_with(&wanted))
                {
                    continue;
                }
            }
            candidates.push(candidate);
        }

        sort(
            &mut candidates,
            arguments.sort.unwrap_or_default(),
            arguments.order,
        );
        let (rows, mut page_info) = page.take(candidates);
        let fields = arguments.fields.as_deref().unwrap_or(DEFAULT_FIELDS);
        let mut context = RowContext::new(&proc, self.usage.boot_time()?)?;
        if fields.contains(&Field::StartTime) && fingerprint::same_pid_namespace(&proc) {
            context.fingerprints = Some(&self.fingerprints);
        }
        let mut processes: Vec<ProcessRow> = rows
            .into_iter()
            .map(|candidate| context.row(candidate, fields, &users))
            .collect();
        let on_gpu = self.nvidia.memory_by_pid();
        for row in &mut processes {
            row.gpu_memory_bytes = on_gpu.get(&row.pid).copied().flatten();
        }
        let mut notes: Vec<String> = page.note.clone().into_iter().collect();
        notes.extend(page.fit(&mut processes, &mut page_info, cap));
        let (cpu_basis, window_seconds) = meter.basis();
        Ok(ProcessList {
            processes,
            page: page_info,
            cpu_basis,
            window_seconds,
            notes,
        })
    }
}

fn sort(candidates: &mut [Candidate], key: SortKey, order: Option<Order>) {
    let natural = match key {
        SortKey::Cpu | SortKey::Memory | SortKey::Start => Order::Desc,
        SortKey::Pid | SortKey::Name => Order::Asc,
    };
    let descending = order.unwrap_or(natural) == Order::Desc;
    candidates.sort_by(|a, b| {
        let ordering = match key {
            SortKey::Cpu => a.cpu_percent.total_cmp(&b.cpu_percent),
            SortKey::Memory => a.stat.rss_pages.cmp(&b.stat.rss_pages),
            SortKey::Pid => a.stat.pid.cmp(&b.stat.pid),
            SortKey::Start => a.stat.start_ticks.cmp(&b.stat.start_ticks),
            SortKey::Name => a.stat.name.to_lowercase().cmp(&b.stat.name.to_lowercase()),
        };
        let ordering = if descending {
            ordering.reverse()
        } else {
            ordering
        };
        // Ties: lowest pid first, so pages are stable.
        ordering.then(a.stat.pid.cmp(&b.stat.pid))
    });
}

/// A uid from a user name or number; a name the host does not know is an error.
fn uid_of(users: &Table, user: &str) -> Result<u32, ToolError> {
    if let Ok(uid) = user.parse() {
        return Ok(uid);
    }
    users
        .iter()
        .find(|(_, name)| name.as_str() == user)
        .map(|(uid, _)| *uid)
        .ok_or_else(|| {
            ToolError::not_found(format!(
                "no user named `{user}` on this host (give a name from /etc/passwd or a uid)"
            ))
        })
}

/// What every row needs: the boot time, page size and RAM size, and where the start times
/// shown are recorded (`None` when no row shows one, or `/proc` is another PID namespace, whose
/// processes the server cannot pin).
struct RowContext<'a> {
    proc: &'a std::path::Path,
    boot: chrono::DateTime<chrono::Utc>,
    page_bytes: u64,
    memory_bytes: u64,
    fingerprints: Option<&'a Fingerprints>,
}

impl<'a> RowContext<'a> {
    fn new(
        proc: &'a std::path::Path,
        boot: chrono::DateTime<chrono::Utc>,
    ) -> Result<Self, ToolError> {
        let meminfo: procfs::Meminfo = kernel::read_proc(proc, "meminfo")?;
        Ok(Self {
            proc,
            boot,
            page_bytes: rustix::param::page_size() as u64,
            memory_bytes: meminfo.mem_total,
            fingerprints: None,
        })
    }

    fn row(&self, mut candidate: Candidate, fields: &[Field], users: &Table) -> ProcessRow {
        let has = |field: Field| fields.contains(&field);
        // `/proc/PID/stat`'s RSS is the kernel's per-CPU approximation (off by up to a few
        // hundred KiB); the rows shown get the exact figure and the effective uid from
        // `status`, as `ps` does, and the state, parent and threads as they are now (a
        // ranking's table may be an interval old).
        let exact = [
            Field::RssBytes,
            Field::MemoryPercent,
            Field::User,
            Field::State,
            Field::Ppid,
            Field::Threads,
        ]
        .into_iter()
        .any(has)
        .then(|| table::status(self.proc, candidate.stat.pid))
        .flatten();
        if let Some(status) = &exact {
            let stat = &mut candidate.stat;
            stat.state = status.state.unwrap_or(stat.state);
            stat.ppid = status.ppid.unwrap_or(stat.ppid);
            stat.threads = status.threads.unwrap_or(stat.threads);
        }
        let rss = exact
            .as_ref()
            .and_then(|status| status.rss_bytes)
            .unwrap_or(candidate.stat.rss_pages * self.page_bytes);
        let uid = exact
            .as_ref()
            .map_or(candidate.stat.uid, |status| status.euid);
        // The row gives out its start time: record what the process runs, read through a
        // pidfd, so process_signal can tell it from one that takes its pid within the same
        // clock tick. The command line shown is the one recorded.
        if let Some(fingerprints) = self.fingerprints
            && !candidate.stat.kernel_thread()
            && let Some(running) =
                fingerprints.give_out(self.proc, candidate.stat.pid, candidate.stat.start_ticks)
        {
            candidate.command = Some(running.command_line);
        }
        let command = has(Field::Command).then(|| {
            let kernel_thread = candidate.stat.kernel_thread();
            let name = candidate.stat.name.clone();
            match candidate.command(self.proc) {
                Some(args) => Some(render::cut(&args.join(" "), COMMAND_CHARS)),
                None if kernel_thread => Some(format!("[{name}]")),
                None => None,
            }
        });
        let container = has(Field::Container)
            .then(|| {
                candidate
                    .container(self.proc)
                    .map(|id| id[..12].to_string())
            })
            .flatten();
        let stat = &candidate.stat;
        ProcessRow {
            pid: stat.pid,
            ppid: has(Field::Ppid).then_some(stat.ppid),
            user: has(Field::User).then(|| name_of(users, uid)),
            name: has(Field::Name).then(|| stat.name.clone()),
            state: has(Field::State).then(|| table::state_name(stat.state).to_string()),
            cpu_percent: has(Field::CpuPercent).then_some(candidate.cpu_percent),
            memory_percent: has(Field::MemoryPercent)
                .then(|| tenths(rss as f64 * 100.0 / self.memory_bytes.max(1) as f64)),
            rss_bytes: has(Field::RssBytes).then_some(rss),
            threads: has(Field::Threads).then_some(stat.threads),
            start_time: has(Field::StartTime)
                .then(|| kernel::process_start_time(self.boot, stat.start_ticks)),
            command: command.flatten(),
            container,
            gpu_memory_bytes: None,
        }
    }
}

impl Collect for ProcessLister {
    type Arguments = ListArguments;
    type Output = ProcessList;

    const DECLARATION: &'static Declaration = &PROCESS_LIST;

    fn collect(
        &self,
        arguments: ListArguments,
        context: &ToolContext,
    ) -> Result<ProcessList, ToolError> {
        self.list(&arguments, context.output_cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_cut_on_character_boundaries() {
        assert_eq!(render::cut("short", 10), "short");
        assert_eq!(render::cut("ééééé", 3), "ééé…");
    }
}
