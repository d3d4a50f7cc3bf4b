//! The process table: one `/proc/PID/stat` read per process, and its owner.
//!
//! A process list must read every process on every call, so this is the hot path of the
//! domain. `/proc/PID/stat` is parsed here, four fields of it, rather than through
//! `procfs::Process::stat`, which opens a directory handle per process and parses all 52
//! fields: on 1,000 processes that doubles the cost of a list. Everything else (command line,
//! cgroup) is read only for the rows an answer shows, or the rows a filter needs.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Flag of kernel threads in `/proc/PID/stat`.
pub(crate) const PF_KTHREAD: u64 = 0x0020_0000;

/// What `/proc/PID/stat` and the owner of `/proc/PID` say about one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcessStat {
    pub pid: u32,
    pub ppid: u32,
    /// `comm`: the executable name, at most 15 bytes.
    pub name: String,
    /// The state letter: R, S, D, Z, T, t, I, X, ...
    pub state: char,
    pub flags: u64,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Start time after boot, in clock ticks: with the pid, it names one process for good.
    pub start_ticks: u64,
    pub threads: u64,
    pub nice: i64,
    pub virtual_bytes: u64,
    pub rss_pages: u64,
    /// The effective uid (the owner of `/proc/PID`; root for non-dumpable processes).
    pub uid: u32,
}

impl ProcessStat {
    pub(crate) fn kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// Parses the text of `/proc/PID/stat`. The name is between the first `(` and the last `)`:
/// it may itself hold spaces and parentheses.
pub(crate) fn parse_stat(pid: u32, text: &str, uid: u32) -> Option<ProcessStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_string();
    // Fields after the name, numbered as in proc(5) from 3 (state).
    let fields: Vec<&str> = text.get(close + 2..)?.split(' ').collect();
    let field = |number: usize| fields.get(number - 3).copied();
    let number = |n: usize| field(n).and_then(|value| value.parse::<u64>().ok());
    Some(ProcessStat {
        pid,
        ppid: number(4)? as u32,
        name,
        state: field(3)?.chars().next()?,
        flags: number(9)?,
        cpu_ticks: number(14)? + number(15)?,
        start_ticks: number(22)?,
        threads: number(20)?,
        nice: field(19)?.parse().ok()?,
        virtual_bytes: number(23)?,
        rss_pages: number(24)?,
        uid,
    })
}

/// Reads one process, `None` when it has exited (or never existed).
pub(crate) fn read_stat(proc: &Path, pid: u32, buffer: &mut Vec<u8>) -> Option<ProcessStat> {
    let directory = ProcDirectory::open(proc).ok()?;
    directory.read_stat(pid, buffer)
}

/// `/proc` opened once, so each process costs one `openat` relative to it, one `fstat` of the
/// open file (a process's `/proc` files belong to its effective uid) and one read: no path
/// walks from `/`, no second lookup of `/proc/PID` for the owner.
pub(crate) struct ProcDirectory {
    fd: rustix::fd::OwnedFd,
}

impl ProcDirectory {
    pub(crate) fn open(proc: &Path) -> std::io::Result<Self> {
        let fd = rustix::fs::open(
            proc,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        Ok(Self { fd })
    }

    pub(crate) fn read_stat(&self, pid: u32, buffer: &mut Vec<u8>) -> Option<ProcessStat> {
        let file = rustix::fs::openat(
            &self.fd,
            format!("{pid}/stat").as_str(),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()?;
        let uid = rustix::fs::fstat(&file).ok()?.st_uid;
        buffer.clear();
        std::fs::File::from(file)
            .take(u64::MAX)
            .read_to_end(buffer)
            .ok()?;
        parse_stat(pid, std::str::from_utf8(buffer).ok()?, uid)
    }
}

/// A whole `/proc` file. Its size reads as 0, so `std::fs::read` would start with a 32-byte
/// probe and grow, one syscall each; a page-sized buffer takes most files in one read.
pub(crate) fn read_proc_file(path: &Path) -> Option<Vec<u8>> {
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::with_capacity(4096);
    // Through `Take` (not `File::read_to_end`), which does not ask for the file's size.
    file.take(u64::MAX).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// The pids of `/proc` now, in ascending order.
pub(crate) fn pids(proc: &Path) -> std::io::Result<Vec<u32>> {
    let mut pids: Vec<u32> = std::fs::read_dir(proc)?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Every process now. Processes that exit while being read are left out.
pub(crate) fn snapshot(proc: &Path) -> std::io::Result<Vec<ProcessStat>> {
    let directory = ProcDirectory::open(proc)?;
    let mut buffer = Vec::with_capacity(512);
    Ok(pids(proc)?
        .into_iter()
        .filter_map(|pid| directory.read_stat(pid, &mut buffer))
        .collect())
}

/// pid → its children's pids, in ascending order.
pub(crate) fn children_of(table: &[ProcessStat]) -> HashMap<u32, Vec<u32>> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for process in table {
        if process.pid != process.ppid {
            children.entry(process.ppid).or_default().push(process.pid);
        }
    }
    children
}

/// What a row takes from `/proc/PID/status`: the exact RSS and effective uid, and the
/// figures that change while a process runs, read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub euid: u32,
    /// `VmRSS`; absent for kernel threads.
    pub rss_bytes: Option<u64>,
    pub state: Option<char>,
    pub ppid: Option<u32>,
    pub threads: Option<u64>,
}

/// Reads the effective uid, exact RSS, state, parent and thread count of one process.
pub(crate) fn status(proc: &Path, pid: u32) -> Option<Status> {
    let bytes = read_proc_file(&proc.join(pid.to_string()).join("status"))?;
    parse_status(std::str::from_utf8(&bytes).ok()?)
}

fn parse_status(text: &str) -> Option<Status> {
    let mut euid = None;
    let mut rss_bytes = None;
    let (mut state, mut ppid, mut threads) = (None, None, None);
    for line in text.lines() {
        if let Some(letter) = line.strip_prefix("State:") {
            state = letter.trim_start().chars().next();
        } else if let Some(parent) = line.strip_prefix("PPid:") {
            ppid = parent.trim().parse().ok();
        } else if let Some(count) = line.strip_prefix("Threads:") {
            threads = count.trim().parse().ok();
        } else if let Some(uids) = line.strip_prefix("Uid:") {
            euid = uids.split_ascii_whitespace().nth(1)?.parse().ok();
        } else if let Some(rss) = line.strip_prefix("VmRSS:") {
            let kib: u64 = rss.split_ascii_whitespace().next()?.parse().ok()?;
            rss_bytes = Some(kib * 1024);
        }
    }
    Some(Status {
        euid: euid?,
        rss_bytes,
        state,
        ppid,
        threads,
    })
}

/// The direct children of a process, from `/proc/PID/task/TID/children` of each of its
/// threads (kernels since 3.5 with CONFIG_PROC_CHILDREN); `None` when the kernel lacks them.
pub(crate) fn children(proc: &Path, pid: u32) -> Option<Vec<u32>> {
    let tasks = std::fs::read_dir(proc.join(pid.to_string()).join("task")).ok()?;
    let mut children = Vec::new();
    for task in tasks.filter_map(Result::ok) {
        let text = std::fs::read_to_string(task.path().join("children")).ok()?;
        children.extend(
            text.split_ascii_whitespace()
                .filter_map(|pid| pid.parse::<u32>().ok()),
        );
    }
    children.sort_unstable();
    Some(children)
}

/// The command line, arguments joined by spaces; `None` for kernel threads and zombies (an
/// empty `cmdline`) or when unreadable.
pub(crate) fn command_line(proc: &Path, pid: u32) -> Option<Vec<String>> {
    parse_command_line(&read_proc_file(
        &proc.join(pid.to_string()).join("cmdline"),
    )?)
}

/// The arguments in the bytes of `/proc/PID/cmdline` (NUL-separated, lossy UTF-8); `None` when
/// empty (kernel threads, zombies).
pub(crate) fn parse_command_line(bytes: &[u8]) -> Option<Vec<String>> {
    if bytes.is_empty() {
        return None;
    }
    let trimmed = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    Some(
        trimmed
            .split(|byte| *byte == 0)
            .map(|argument| String::from_utf8_lossy(argument).into_owned())
            .collect(),
    )
}

/// The cgroup paths of a process (`/proc/PID/cgroup`), one per hierarchy.
pub(crate) fn cgroups(proc: &Path, pid: u32) -> Vec<String> {
    cgroup_memberships(proc, pid)
        .into_iter()
        .map(|(_, path)| path)
        .collect()
}

/// `/proc/PID/cgroup` line by line: each hierarchy's controllers (`cpu,cpuacct`,
/// `name=systemd`; none for the v2 hierarchy, `0::PATH`) and the process's path in it.
pub(crate) fn cgroup_memberships(proc: &Path, pid: u32) -> Vec<(Vec<String>, String)> {
    read_proc_file(&proc.join(pid.to_string()).join("cgroup"))
        .map(|bytes| {
            String::from_utf8_lossy(&bytes)
                .lines()
                .filter_map(|line| {
                    let mut fields = line.splitn(3, ':');
                    let _hierarchy = fields.next()?;
                    let controllers = fields
                        .next()?
                        .split(',')
                        .filter(|name| !name.is_empty())
                        .map(String::from)
                        .collect();
                    Some((controllers, fields.next()?.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The container a process runs in, from its cgroup paths: the 64-hex-digit id that Docker
/// (`/docker/ID`, `docker-ID.scope`), containerd (`cri-containerd-ID.scope`), CRI-O
/// (`crio-ID.scope`) and Podman (`libpod-ID.scope`) put in the path.
pub(crate) fn container_id(cgroup_paths: &[String]) -> Option<String> {
    cgroup_paths.iter().find_map(|path| {
        path.split('/').rev().find_map(|component| {
            let component = component.strip_suffix(".scope").unwrap_or(component);
            let candidate = component.rsplit(['-', ':']).next()?;
            (candidate.len() == 64 && candidate.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| candidate.to_ascii_lowercase())
        })
    })
}

/// A process's state letter as a word.
pub(crate) fn state_name(letter: char) -> &'static str {
    match letter {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk_sleep",
        'Z' => "zombie",
        'T' => "stopped",
        't' => "tracing_stop",
        'X' | 'x' => "dead",
        'I' => "idle",
        'P' => "parked",
        'W' => "waking",
        'K' => "wakekill",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "25315 (a (weird) name) R 25313 25313 1039 0 -1 4194304 98 0 0 0 7 3 0 0 \
                        20 -5 4 0 914209 3133440 380 18446744073709551615 1 2 3";

    #[test]
    fn stat_fields_are_read_after_a_name_with_spaces_and_parentheses() {
        let stat = parse_stat(25315, STAT, 1000).expect("parses");
        assert_eq!(stat.name, "a (weird) name");
        assert_eq!((stat.ppid, stat.state, stat.flags), (25313, 'R', 4_194_304));
        assert_eq!((stat.cpu_ticks, stat.threads, stat.nice), (10, 4, -5));
        assert_eq!(
            (stat.start_ticks, stat.virtual_bytes, stat.rss_pages),
            (914_209, 3_133_440, 380)
        );
        assert!(!stat.kernel_thread());
        assert_eq!(parse_stat(1, "1 (truncated", 0), None);
    }

    #[test]
    fn status_gives_the_effective_uid_exact_rss_and_current_state() {
        let text = "Name:\tsleep\nState:\tT (stopped)\nPPid:\t812\nUid:\t1000\t0\t0\t0\n\
                    VmRSS:\t    1804 kB\nThreads:\t3\n";
        assert_eq!(
            parse_status(text),
            Some(Status {
                euid: 0,
                rss_bytes: Some(1804 * 1024),
                state: Some('T'),
                ppid: Some(812),
                threads: Some(3),
            })
        );
        assert_eq!(
            parse_status("Name:\tkthreadd\nUid:\t0\t0\t0\t0\n")
                .expect("parses")
                .rss_bytes,
            None
        );
    }

    #[test]
    fn container_ids_come_from_the_runtimes_cgroup_names() {
        let id = "3f1c".repeat(16);
        for path in [
            format!("/system.slice/docker-{id}.scope"),
            format!("/docker/{id}"),
            format!("/kubepods/besteffort/pod1/cri-containerd-{id}.scope"),
            format!("/machine.slice/libpod-{id}.scope/container"),
            format!("/system.slice/crio-{id}.scope"),
        ] {
            assert_eq!(
                container_id(std::slice::from_ref(&path)),
                Some(id.clone()),
                "{path}"
            );
        }
        assert_eq!(container_id(&["/user.slice/user-1000.slice".into()]), None);
        assert_eq!(
            container_id(&["/process_api/047c133a1c62e203e1da4d92bb9337a0".into()]),
            None
        );
    }
}
