//! Which process a start time was given out for, beyond the pid and the clock tick.
//!
//! A start time counts clock ticks since boot (10 ms each at the usual `USER_HZ` of 100). A
//! process that exits within the tick it started in can hand its pid to a new process that
//! starts in that same tick: then (pid, start time) names both, and `process_signal` could hit
//! the newcomer. So whenever an answer shows a start time (`process_list` and `process_get`
//! rows, `process_signal`'s "confirm with start_time = …"), the server pins the process with a
//! pidfd, reads what it runs — executable, command line, owner, and the pidfd's inode, which
//! since Linux 6.9 (pidfs) is unique to the process — checks that the pinned process has not
//! exited, so all of it was read from that one process, and remembers that [`Fingerprint`]
//! under (pid, start ticks). `process_signal` pins and reads the same way, also rereading the
//! start ticks, and signals only a process whose fingerprint is the one remembered.
//!
//! What this cannot tell apart, before Linux 6.9 only: a newcomer that runs the same executable
//! with the same command line as the same user, started in the same tick (docs/security.md
//! says so). A process that starts another program (exec), changes its user or rewrites its
//! command line (`setproctitle`) after its start time was given out no longer matches:
//! `process_signal` shows what it runs now and asks to confirm again. The command line is
//! compared for all that: before Linux 6.9 it is what tells two runs of one interpreter apart.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags};
use sha2::{Digest as _, Sha256};

use super::table::{self, ProcessStat};

/// How many given-out start times are remembered, the oldest given out forgotten first: more
/// than a host has processes, at about 100 bytes each (under 1 MiB when full).
pub(crate) const CAPACITY: usize = 8_192;

/// The first 128 bits of a SHA-256: small to keep, and no one can make another input with the
/// same digest.
pub(crate) type Digest = [u8; 16];

fn digest(bytes: &[u8]) -> Digest {
    let full = Sha256::digest(bytes);
    let mut short = [0; 16];
    short.copy_from_slice(&full[..16]);
    short
}

/// What a process is and runs, as far as the server can read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    /// The inode of a pidfd of the process on pidfs (Linux 6.9+), never shared with another
    /// process while the system runs; `None` on older kernels, whose pidfds share one inode.
    pub pidfs_inode: Option<u64>,
    /// Digest of the executable's path (`/proc/PID/exe`); `None` where there is none to read
    /// (a zombie) or the server may not (another user's process, without root or
    /// CAP_SYS_PTRACE).
    pub exe: Option<Digest>,
    /// Digest of `/proc/PID/cmdline`, its bytes as the kernel gives them; `None` when unreadable.
    pub command_line: Option<Digest>,
    /// The owner of `/proc/PID`: the effective uid (root for a non-dumpable process).
    pub uid: u32,
}

impl Fingerprint {
    /// The fingerprint of a process with this pidfs inode, executable path, `cmdline` bytes
    /// and owner.
    pub(crate) fn new(
        pidfs_inode: Option<u64>,
        exe: Option<&Path>,
        command_line: Option<&[u8]>,
        uid: u32,
    ) -> Self {
        Self {
            pidfs_inode,
            exe: exe.map(|path| digest(path.as_os_str().as_bytes())),
            command_line: command_line.map(digest),
            uid,
        }
    }
}

/// What was read of a pinned process: its fingerprint and, for display, its arguments.
pub(crate) struct Running {
    pub fingerprint: Fingerprint,
    /// The arguments (lossy UTF-8); `None` when empty or unreadable.
    pub command_line: Option<Vec<String>>,
}

/// A process held by a pidfd, and what was read of it while it was held.
pub(crate) struct Pinned {
    /// Signals sent through it reach this process, whatever its pid names later.
    pub pidfd: OwnedFd,
    /// `/proc/PID/stat`, read after the pidfd was opened.
    pub stat: ProcessStat,
    pub running: Running,
}

/// Why a process could not be pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PinError {
    /// No process has this pid (any more).
    Gone,
    /// The process exited while it was being read, so what was read may be another's.
    Exited,
    /// `pidfd_open` failed otherwise: ENOSYS before Linux 5.3, EMFILE out of descriptors.
    Open(Errno),
}

/// Pins `pid` with a pidfd and reads its stat and what it runs under the host's `/proc` at
/// `proc`. Only meaningful when `proc` shows the server's own PID namespace
/// ([`same_pid_namespace`]): the pidfd is opened by the server's pid.
///
/// The reads come after the pidfd is opened and before the check that its process has not
/// exited: while it has not, its pid names nothing else, so every read was of that process.
pub(crate) fn pin(proc: &Path, pid: u32) -> Result<Pinned, PinError> {
    let pidfd = open_pidfd(pid)?;
    let stat = table::read_stat(proc, pid, &mut Vec::with_capacity(512)).ok_or(PinError::Gone)?;
    let running = read_running(proc, pid, &pidfd).ok_or(PinError::Gone)?;
    if has_exited(&pidfd) {
        return Err(PinError::Exited);
    }
    Ok(Pinned {
        pidfd,
        stat,
        running,
    })
}

fn open_pidfd(pid: u32) -> Result<OwnedFd, PinError> {
    let target = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(PinError::Gone)?;
    rustix::process::pidfd_open(target, PidfdFlags::empty()).map_err(|error| match error {
        Errno::SRCH => PinError::Gone,
        other => PinError::Open(other),
    })
}

/// What `pid` runs, read while `pidfd` pins it; `None` when `/proc/PID` is gone.
fn read_running(proc: &Path, pid: u32, pidfd: &OwnedFd) -> Option<Running> {
    let directory = proc.join(pid.to_string());
    let uid = rustix::fs::stat(&directory).ok()?.st_uid;
    let exe = std::fs::read_link(directory.join("exe")).ok();
    let command_line = table::read_proc_file(&directory.join("cmdline"));
    Some(Running {
        fingerprint: Fingerprint::new(
            pidfs_inode(pidfd),
            exe.as_deref(),
            command_line.as_deref(),
            uid,
        ),
        command_line: command_line.as_deref().and_then(table::parse_command_line),
    })
}

/// The pidfd's inode when pidfds live on pidfs (Linux 6.9+), where each process has its own
/// for as long as the system runs. Before, every pidfd shares one anonymous inode, which tells
/// nothing: `None`.
#[allow(
    clippy::useless_conversion,
    reason = "f_type is i64 here, a 32-bit integer on other architectures"
)]
fn pidfs_inode(pidfd: &OwnedFd) -> Option<u64> {
    /// `PID_FS_MAGIC` of linux/magic.h.
    const PIDFS: i64 = 0x5049_4446;
    static ON_PIDFS: OnceLock<bool> = OnceLock::new();
    // Where pidfds live is the kernel's choice, made once: ask the first pidfd.
    let on_pidfs = *ON_PIDFS
        .get_or_init(|| rustix::fs::fstatfs(pidfd).is_ok_and(|fs| i64::from(fs.f_type) == PIDFS));
    if !on_pidfs {
        return None;
    }
    rustix::fs::fstat(pidfd).ok().map(|stat| stat.st_ino)
}

/// Whether the pidfd's process has exited: from then on the pidfd polls readable. Asked by
/// poll rather than by sending signal 0 through the pidfd, as the kernel allows, because
/// rustix's `Signal` cannot be 0 and this crate forbids the unsafe raw syscall; poll is also
/// stricter (a zombie counts as exited, and signalling one does nothing). When poll itself
/// fails the answer is "exited": the caller then refuses rather than trusts.
fn has_exited(pidfd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        match rustix::event::poll(&mut fds, Some(&now)) {
            // IN when it exited; HUP or ERR say nothing better.
            Ok(_) => return fds.iter().any(|fd| !fd.revents().is_empty()),
            Err(Errno::INTR) => continue,
            Err(_) => return true,
        }
    }
}

/// Whether `proc` shows the server's own PID namespace: only then do its pids name the
/// processes the server can pin and signal (a container needs `--pid=host`).
pub(crate) fn same_pid_namespace(proc: &Path) -> bool {
    let own = rustix::process::getpid().as_raw_nonzero().get();
    std::fs::read_link(proc.join("self"))
        .ok()
        .and_then(|target| target.to_str().and_then(|text| text.parse::<i32>().ok()))
        == Some(own)
}

/// The fingerprints of the processes whose start times answers gave out, keyed by (pid, start
/// ticks), at most [`CAPACITY`] of them. Shared by the process domain's tools.
pub(crate) struct Fingerprints {
    given: Mutex<Given>,
    capacity: usize,
}

#[derive(Default)]
struct Given {
    /// (pid, start ticks) → (when it was last given out, its fingerprint then).
    by_process: HashMap<(u32, u64), (u64, Fingerprint)>,
    /// When given out → (pid, start ticks), the oldest first.
    by_age: BTreeMap<u64, (u32, u64)>,
    /// A counter, not a clock: the order of giving out is all eviction needs.
    next: u64,
}

impl Default for Fingerprints {
    fn default() -> Self {
        Self::new()
    }
}

impl Fingerprints {
    pub(crate) fn new() -> Self {
        Self::with_capacity(CAPACITY)
    }

    /// Remembers at most `capacity` (at least 1) processes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            given: Mutex::new(Given::default()),
            capacity: capacity.max(1),
        }
    }

    fn given(&self) -> std::sync::MutexGuard<'_, Given> {
        // Every update below leaves the maps consistent, so a panic elsewhere while the lock
        // was held leaves nothing half-done.
        self.given.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that the start time of `pid` (`start_ticks`) was given out for a process with
    /// `fingerprint`, replacing what was recorded for that pair, and forgets the oldest given
    /// out beyond the capacity.
    pub(crate) fn remember(&self, pid: u32, start_ticks: u64, fingerprint: Fingerprint) {
        let mut given = self.given();
        let age = given.next;
        given.next += 1;
        if let Some((previous, _)) = given
            .by_process
            .insert((pid, start_ticks), (age, fingerprint))
        {
            given.by_age.remove(&previous);
        }
        given.by_age.insert(age, (pid, start_ticks));
        while given.by_process.len() > self.capacity {
            let Some((_, oldest)) = given.by_age.pop_first() else {
                break;
            };
            given.by_process.remove(&oldest);
        }
    }

    /// The fingerprint recorded when the start time of `pid` (`start_ticks`) was last given
    /// out; `None` when it never was, or was forgotten since.
    pub(crate) fn given_out(&self, pid: u32, start_ticks: u64) -> Option<Fingerprint> {
        self.given()
            .by_process
            .get(&(pid, start_ticks))
            .map(|(_, fingerprint)| *fingerprint)
    }

    /// For an answer about to show the start time of `pid` (`start_ticks`, as the answer read
    /// them): pins the process, reads what it runs, and remembers that. Returns what was read;
    /// `None` when the process has exited (the answer still shows its row; `process_signal`
    /// will ask to confirm). Call it only when [`same_pid_namespace`].
    ///
    /// Cheaper than [`pin`]: a pidfd, a `stat` of `/proc/PID`, the `exe` link and `cmdline`
    /// (which a row shows anyway), no second `/proc/PID/stat`. Rereading the start ticks would
    /// add nothing: if the answer's process has exited since it was read and another took its
    /// pid, either the newcomer started in a later tick — then no process can ever again have
    /// this (pid, start ticks), and the entry is never matched — or in the same tick, which
    /// the ticks cannot show anyway; the fingerprint then is the newcomer's, and so is the
    /// command line the answer shows.
    pub(crate) fn give_out(&self, proc: &Path, pid: u32, start_ticks: u64) -> Option<Running> {
        let pidfd = open_pidfd(pid).ok()?;
        let running = read_running(proc, pid, &pidfd)?;
        if has_exited(&pidfd) {
            return None;
        }
        self.remember(pid, start_ticks, running.fingerprint);
        Some(running)
    }

    /// How many processes are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.given().by_process.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(command_line: &str) -> Fingerprint {
        Fingerprint::new(
            Some(36_906),
            Some(Path::new("/usr/bin/sleep")),
            Some(command_line.as_bytes()),
            0,
        )
    }

    #[test]
    fn the_oldest_given_out_is_forgotten_first() {
        let fingerprints = Fingerprints::with_capacity(3);
        for pid in [10, 11, 12] {
            fingerprints.remember(pid, 500, fingerprint("sleep\x0030\x00"));
        }
        // Giving 10 out again makes it the newest: 11 is now the oldest.
        fingerprints.remember(10, 500, fingerprint("sleep\x0031\x00"));
        fingerprints.remember(13, 500, fingerprint("sleep\x0030\x00"));
        assert_eq!(fingerprints.len(), 3);
        assert_eq!(fingerprints.given_out(11, 500), None);
        assert_eq!(
            fingerprints.given_out(10, 500),
            Some(fingerprint("sleep\x0031\x00"))
        );
        assert!(fingerprints.given_out(12, 500).is_some());
        assert!(fingerprints.given_out(13, 500).is_some());
        // The same pid with other start ticks is another process.
        assert_eq!(fingerprints.given_out(13, 501), None);
    }

    #[test]
    fn a_fingerprint_differs_when_the_executable_command_line_or_user_does() {
        let listed = fingerprint("sleep\x00300\x00");
        assert_eq!(listed, fingerprint("sleep\x00300\x00"));
        assert_ne!(listed, fingerprint("sleep\x00301\x00"));
        let other_exe = Fingerprint::new(
            Some(36_906),
            Some(Path::new("/usr/bin/python3")),
            Some(b"sleep\x00300\x00"),
            0,
        );
        assert_ne!(listed, other_exe);
        let other_user = Fingerprint::new(
            Some(36_906),
            Some(Path::new("/usr/bin/sleep")),
            Some(b"sleep\x00300\x00"),
            1000,
        );
        assert_ne!(listed, other_user);
        let unreadable_exe = Fingerprint::new(Some(36_906), None, Some(b"sleep\x00300\x00"), 0);
        assert_ne!(listed, unreadable_exe);
        // Since Linux 6.9 a newcomer differs even when it runs the very same thing.
        let newcomer = Fingerprint::new(
            Some(36_907),
            Some(Path::new("/usr/bin/sleep")),
            Some(b"sleep\x00300\x00"),
            0,
        );
        assert_ne!(listed, newcomer);
    }

    #[test]
    fn a_pinned_child_reads_as_itself_and_an_exited_one_does_not_pin() {
        let proc = Path::new("/proc");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep starts");
        let pid = child.id();
        // Until it has exec'd, the child is a copy of this test: wait for sleep's cmdline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while table::command_line(proc, pid)
            .is_none_or(|args| args.first().map(String::as_str) != Some("sleep"))
        {
            assert!(std::time::Instant::now() < deadline, "sleep did not start");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let pinned = pin(proc, pid).expect("pins a running child");
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("own child's exe");
        let uid = rustix::process::geteuid().as_raw();
        let inode = pidfs_inode(&pinned.pidfd);
        assert_eq!(
            pinned.running.fingerprint,
            Fingerprint::new(inode, Some(&exe), Some(b"sleep\x0030\x00"), uid)
        );
        assert_eq!(
            pinned.running.command_line,
            Some(vec!["sleep".to_string(), "30".to_string()])
        );
        // Each pidfd of one process has that process's inode (on pidfs), not one of its own.
        let again = pin(proc, pid).expect("pins it again");
        assert_eq!(pidfs_inode(&again.pidfd), inode);
        if let Ok(own) = open_pidfd(std::process::id()) {
            assert!(inode.is_none() || pidfs_inode(&own) != inode);
        }

        let fingerprints = Fingerprints::new();
        let ticks = pinned.stat.start_ticks;
        let given = fingerprints.give_out(proc, pid, ticks).expect("gives out");
        assert_eq!(given.fingerprint, pinned.running.fingerprint);
        assert_eq!(
            fingerprints.given_out(pid, ticks),
            Some(pinned.running.fingerprint)
        );

        child.kill().expect("kills its child");
        // Not reaped yet: a zombie, whose pidfd polls readable.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while table::read_stat(proc, pid, &mut Vec::new()).is_some_and(|stat| stat.state != 'Z') {
            assert!(
                std::time::Instant::now() < deadline,
                "the child did not exit"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(pin(proc, pid).err(), Some(PinError::Exited));
        assert!(fingerprints.give_out(proc, pid, ticks).is_none());
        child.wait().expect("reaps its child");
        assert_eq!(pin(proc, pid).err(), Some(PinError::Gone));
    }
}
