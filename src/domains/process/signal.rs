//! `process_signal`: send TERM, INT, HUP or CONT (tier `operate`), KILL or STOP (tier `admin`)
//! to a process — never to PID 1, the server, its parent, kernel threads or protected names, and
//! never to a process other than the one the caller looked at.
//!
//! The caller names the process by pid *and* start time. The server reads the start time, pins
//! the process with a pidfd, reads the start time again with what the process runs (its
//! [`Fingerprint`]), and signals through the pidfd only if the start times agree and the
//! fingerprint is the one recorded when this server gave that start time out. A start time
//! counts 10 ms clock ticks, so the pair (pid, start time) alone cannot tell a process from one
//! that took its pid within the same tick; the fingerprint can — on Linux 6.9 and later always
//! (the pidfd's inode), before only when the newcomer runs another executable or command line,
//! or as another user (see [`identity`]). A start time this server never
//! gave out (computed elsewhere, forgotten, from before a restart) signals nothing: the answer
//! shows the process and asks to confirm, as a call without a start time does.

use std::path::PathBuf;
use std::sync::Arc;

use rustix::process::Signal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::fingerprint::{self, Fingerprint, Fingerprints, PinError, Pinned};
use super::table::{self, ProcessStat};
use crate::bounded::Bounded;
use crate::domains::shared::kernel;
use crate::domains::shared::users::{UserNames, name_of};
use crate::render;
use crate::tool::{Declaration, Domain, Render, Tier, Tool, ToolContext, ToolError, blocking};

pub(crate) static PROCESS_SIGNAL: Declaration = Declaration::operate(
    Domain::Process,
    "process_signal",
    "Signal a process",
    "Send a signal to one process: TERM (ask it to exit), INT, HUP (many daemons \
     reload), CONT (resume) — tier operate; KILL or STOP — tier admin. Pass the pid \
     and the start_time that process_list or process_get reported for it. Without \
     start_time, or with one this server did not report (or the process runs \
     something else since), nothing is sent: the answer shows the process and the \
     start_time to confirm with. PID 1, the server itself, its parent, kernel \
     threads and protected daemons are refused.",
)
.destructive();

/// The signals this tool sends.
// Spelled as `kill -l` spells them: these are the wire names.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub(crate) enum SignalName {
    #[serde(alias = "SIGTERM")]
    TERM,
    #[serde(alias = "SIGINT")]
    INT,
    #[serde(alias = "SIGHUP")]
    HUP,
    #[serde(alias = "SIGCONT")]
    CONT,
    #[serde(alias = "SIGKILL")]
    KILL,
    #[serde(alias = "SIGSTOP")]
    STOP,
}

impl SignalName {
    fn signal(self) -> Signal {
        match self {
            SignalName::TERM => Signal::TERM,
            SignalName::INT => Signal::INT,
            SignalName::HUP => Signal::HUP,
            SignalName::CONT => Signal::CONT,
            SignalName::KILL => Signal::KILL,
            SignalName::STOP => Signal::STOP,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            SignalName::TERM => "TERM",
            SignalName::INT => "INT",
            SignalName::HUP => "HUP",
            SignalName::CONT => "CONT",
            SignalName::KILL => "KILL",
            SignalName::STOP => "STOP",
        }
    }

    /// KILL cannot be caught and STOP cannot be ignored: they are the admin tier's.
    fn needs_admin(self) -> bool {
        matches!(self, SignalName::KILL | SignalName::STOP)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignalArguments {
    /// The process id.
    pub pid: Bounded<1, 4_194_304>,
    /// TERM, INT, HUP or CONT (tier operate); KILL or STOP (tier admin).
    pub signal: SignalName,
    /// When the process started, as process_list or process_get reported it (RFC 3339, e.g.
    /// "2026-11-24T05:00:00.120Z"). It proves the pid still names the same process; one this
    /// server did not report is answered with the value to confirm with, and nothing is sent.
    pub start_time: Option<String>,
}

/// The answer of `process_signal`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct SignalSent {
    pub pid: u32,
    /// The process name (`/proc/PID/comm`).
    pub name: String,
    pub signal: SignalName,
    pub start_time: String,
}

impl Render for SignalSent {
    fn render_text(&self) -> String {
        format!(
            "sent SIG{} to {} ({}, started {})",
            self.signal.as_str(),
            self.pid,
            crate::render::text(&self.name),
            self.start_time
        )
    }
}

/// Signals processes of the host whose `/proc` is at `proc`.
pub(crate) struct Signaller {
    proc: PathBuf,
    protected_names: Vec<String>,
    /// What each start time the process domain gave out was given out for.
    fingerprints: Arc<Fingerprints>,
    /// To name the process's user in a confirmation.
    users: Arc<UserNames>,
}

/// The longest command line a confirmation shows, in characters.
const COMMAND_CHARS: usize = 200;

impl Signaller {
    pub(crate) fn new(
        proc: PathBuf,
        protected_names: Vec<String>,
        fingerprints: Arc<Fingerprints>,
        users: Arc<UserNames>,
    ) -> Self {
        Self {
            proc,
            protected_names,
            fingerprints,
            users,
        }
    }

    /// `/proc/PID/stat` now; not found when the process has exited.
    fn observe(&self, pid: u32) -> Result<ProcessStat, ToolError> {
        table::read_stat(&self.proc, pid, &mut Vec::with_capacity(512)).ok_or_else(|| {
            ToolError::not_found(format!(
                "no process {pid} (it may have exited); list the processes again"
            ))
        })
    }

    /// Refuses kernel threads and `process.protected_names`, by what `stat` says.
    fn refuse_protected(&self, pid: u32, stat: &ProcessStat) -> Result<(), ToolError> {
        let what = if stat.kernel_thread() {
            format!("{}, a kernel thread", stat.name)
        } else if self.protected_names.contains(&stat.name) {
            format!("{}, protected by process.protected_names", stat.name)
        } else {
            return Ok(());
        };
        Err(refusal(pid, &what))
    }

    /// The start time as callers see it (see [`kernel::process_start_time`]).
    fn start_time(&self, ticks: u64) -> Result<String, ToolError> {
        let boot = kernel::boot_time(&self.proc).ok_or_else(|| {
            ToolError::unavailable(format!(
                "cannot read btime from {}/stat",
                self.proc.display()
            ))
        })?;
        Ok(kernel::process_start_time(boot, ticks))
    }

    /// "confirm …: call again with start_time = "…" (pid P is NAME, user U, running CMD)": the
    /// start time first, so a client finds it before any text the process chose (its name and
    /// command line are the process's own words, shown for the caller to judge).
    fn confirmation(&self, pid: u32, started: &str, pinned: &Pinned) -> String {
        let user = name_of(&self.users.table(), pinned.running.fingerprint.uid);
        let running = match &pinned.running.command_line {
            Some(arguments) => format!(
                "running {}",
                render::cut(&arguments.join(" "), COMMAND_CHARS)
            ),
            None => "its command line unreadable".to_string(),
        };
        format!(
            "confirm it is the process you mean: call again with start_time = \"{started}\" \
             (pid {pid} is {}, user {user}, {running})",
            pinned.stat.name
        )
    }

    /// Sends `signal` to `pid` if it is still the process that started at `start_time` and runs
    /// what it ran when this server gave that start time out. Errors: not found (no such
    /// process, or it exited meanwhile); refused (protected); a confirmation to make (no
    /// `start_time`, one this server did not give out, or a process that runs something else
    /// now), which records the process so that the same call again signals it; failed (the
    /// kernel refused). Blocking (reads /proc): call it from a blocking thread.
    pub(crate) fn send(
        &self,
        pid: u32,
        signal: SignalName,
        start_time: Option<&str>,
    ) -> Result<SignalSent, ToolError> {
        if !fingerprint::same_pid_namespace(&self.proc) {
            return Err(ToolError::unavailable(format!(
                "{} is another PID namespace than the server's, so its pids cannot be signalled \
                 from here (run the container with --pid=host)",
                self.proc.display()
            )));
        }
        let own = rustix::process::getpid().as_raw_nonzero().get();
        let parent = rustix::process::getppid().map(|pid| pid.as_raw_nonzero().get());
        let raw =
            i32::try_from(pid).map_err(|_| ToolError::invalid_arguments("pid out of range"))?;
        if pid == 1 {
            return Err(refusal(pid, "PID 1, the init system"));
        }
        if raw == own {
            return Err(refusal(pid, "the SystemManager server itself"));
        }
        if Some(raw) == parent {
            return Err(refusal(pid, "the server's parent process"));
        }

        let before = self.observe(pid)?;
        let started = self.start_time(before.start_ticks)?;
        self.refuse_protected(pid, &before)?;
        if let Some(expected) = start_time
            && expected != started
        {
            return Err(ToolError::failed(format!(
                "pid {pid} is a different process now ({} started {started}, not {expected}); \
                 nothing was sent. List the processes again.",
                before.name
            )));
        }

        let pinned = fingerprint::pin(&self.proc, pid).map_err(|error| match error {
            PinError::Gone | PinError::Exited => {
                ToolError::not_found(format!("process {pid} exited before it could be signalled"))
            }
            PinError::Open(error) => {
                ToolError::failed(format!("cannot open process {pid}: {error}"))
            }
        })?;
        // The pidfd pins one process; if the pid was reused between the first look and the
        // pidfd, the start time read now differs.
        if pinned.stat.start_ticks != before.start_ticks {
            return Err(ToolError::failed(format!(
                "pid {pid} was reused while it was being checked; nothing was sent"
            )));
        }
        // It may have started another program (another name) since the first look.
        self.refuse_protected(pid, &pinned.stat)?;

        let ticks = pinned.stat.start_ticks;
        let given = self.fingerprints.given_out(pid, ticks);
        let decision = decide(start_time, given, &pinned.running.fingerprint);
        if decision != Decision::Send {
            // What the caller is shown now is what a confirming call will be held to.
            self.fingerprints
                .remember(pid, ticks, pinned.running.fingerprint);
        }
        let confirm = || self.confirmation(pid, &started, &pinned);
        match decision {
            Decision::Send => {}
            Decision::Confirm => {
                return Err(ToolError::invalid_arguments(format!(
                    "to signal pid {pid}, {}",
                    confirm()
                )));
            }
            Decision::NotGivenOut => {
                return Err(ToolError::invalid_arguments(format!(
                    "nothing was sent: this server did not give out start_time {started} for \
                     pid {pid} (or no longer remembers it), and a start time alone cannot tell \
                     a process from one that took its pid within the same clock tick. To \
                     signal pid {pid}, {}",
                    confirm()
                )));
            }
            Decision::Changed => {
                return Err(ToolError::failed(format!(
                    "nothing was sent: pid {pid} does not run what it ran when start_time \
                     {started} was given out (it started another program or changed user, or \
                     its pid was taken by a new process within the same clock tick). To signal \
                     pid {pid}, {}",
                    confirm()
                )));
            }
        }

        rustix::process::pidfd_send_signal(&pinned.pidfd, signal.signal()).map_err(|error| {
            match error {
                rustix::io::Errno::SRCH => {
                    ToolError::not_found(format!("process {pid} exited before the signal arrived"))
                }
                rustix::io::Errno::PERM => ToolError::failed(format!(
                    "the kernel refused: the server's user (uid {}) may not signal pid {pid}",
                    rustix::process::getuid().as_raw()
                )),
                other => ToolError::failed(format!(
                    "sending SIG{} to {pid} failed: {other}",
                    signal.as_str()
                )),
            }
        })?;
        Ok(SignalSent {
            pid,
            name: pinned.stat.name,
            signal,
            start_time: started,
        })
    }
}

fn refusal(pid: u32, what: &str) -> ToolError {
    ToolError::failed(format!(
        "refusing to signal {pid} ({what}); nothing was sent"
    ))
}

/// What to do with a pinned process whose start time matched the caller's (or who gave none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// It runs what it ran when its start time was given out.
    Send,
    /// No start time was given.
    Confirm,
    /// The start time was not given out by this server (or was forgotten).
    NotGivenOut,
    /// It runs something else than when its start time was given out.
    Changed,
}

fn decide(start_time: Option<&str>, given: Option<Fingerprint>, now: &Fingerprint) -> Decision {
    match (start_time, given) {
        (None, _) => Decision::Confirm,
        (Some(_), None) => Decision::NotGivenOut,
        (Some(_), Some(given)) if given != *now => Decision::Changed,
        (Some(_), Some(_)) => Decision::Send,
    }
}

pub(crate) struct ProcessSignalTool {
    signaller: Arc<Signaller>,
}

impl ProcessSignalTool {
    pub(crate) fn new(signaller: Arc<Signaller>) -> Self {
        Self { signaller }
    }
}

impl Tool for ProcessSignalTool {
    type Arguments = SignalArguments;
    type Output = SignalSent;

    fn declaration(&self) -> &'static Declaration {
        &PROCESS_SIGNAL
    }

    fn required_tier(&self, arguments: &SignalArguments) -> Option<(Tier, String)> {
        arguments
            .signal
            .needs_admin()
            .then(|| (Tier::Admin, format!("signal {}", arguments.signal.as_str())))
    }

    async fn run(
        &self,
        arguments: SignalArguments,
        _: ToolContext,
    ) -> Result<SignalSent, ToolError> {
        let signaller = Arc::clone(&self.signaller);
        blocking(move || {
            signaller.send(
                u32::try_from(arguments.pid.get()).unwrap_or(u32::MAX),
                arguments.signal,
                arguments.start_time.as_deref(),
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn only_a_start_time_given_out_for_what_the_process_runs_now_sends() {
        let listed = Fingerprint::new(
            None,
            Some(Path::new("/usr/bin/sleep")),
            Some(b"sleep\x0030\x00"),
            0,
        );
        let execd = Fingerprint::new(
            None,
            Some(Path::new("/usr/bin/sh")),
            Some(b"sh\x00-c\x00x\x00"),
            0,
        );
        assert_eq!(decide(Some("t"), Some(listed), &listed), Decision::Send);
        assert_eq!(decide(Some("t"), Some(listed), &execd), Decision::Changed);
        assert_eq!(decide(Some("t"), None, &listed), Decision::NotGivenOut);
        assert_eq!(decide(None, Some(listed), &listed), Decision::Confirm);
    }

    /// A `sleep 30` child of this test, once it runs sleep (before its exec it is a copy of
    /// the test).
    fn sleeper() -> std::process::Child {
        let child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep starts");
        let deadline = Instant::now() + Duration::from_secs(5);
        while table::command_line(Path::new("/proc"), child.id())
            .is_none_or(|args| args.first().map(String::as_str) != Some("sleep"))
        {
            assert!(Instant::now() < deadline, "sleep did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        child
    }

    #[test]
    fn a_process_whose_executable_or_command_line_differs_from_what_was_listed_is_not_signalled() {
        let proc = PathBuf::from("/proc");
        let fingerprints = Arc::new(Fingerprints::new());
        let signaller = Signaller::new(
            proc.clone(),
            Vec::new(),
            Arc::clone(&fingerprints),
            Arc::new(UserNames::new(Path::new("/"))),
        );
        let mut child = sleeper();
        let pid = child.id();
        let pinned = fingerprint::pin(&proc, pid).expect("pins its child");
        let ticks = pinned.stat.start_ticks;
        let started = signaller.start_time(ticks).expect("boot time");
        let real = pinned.running.fingerprint;
        // As if the start time had been given out for a process with the same pid and start
        // tick that ran another command line, then another executable.
        let other_command_line = Fingerprint {
            command_line: Some([7; 16]),
            ..real
        };
        let other_exe = Fingerprint {
            exe: Some([7; 16]),
            ..real
        };
        for listed in [other_command_line, other_exe] {
            fingerprints.remember(pid, ticks, listed);
            let refused = signaller
                .send(pid, SignalName::TERM, Some(&started))
                .expect_err("a process running something else is not signalled");
            assert_eq!(refused.kind, crate::tool::ToolErrorKind::Failed);
            assert!(
                refused.message.starts_with(&format!(
                    "nothing was sent: pid {pid} does not run what it ran when start_time {started} \
                     was given out"
                )),
                "{}",
                refused.message
            );
            assert!(
                refused
                    .message
                    .contains(&format!("start_time = \"{started}\"")),
                "{}",
                refused.message
            );
            assert!(
                refused.message.contains("running sleep 30)"),
                "{}",
                refused.message
            );
            std::thread::sleep(Duration::from_millis(50));
            assert!(
                child.try_wait().expect("waits").is_none(),
                "nothing was sent"
            );
            // The refusal showed what runs now: that is what the same call again is held to.
            assert_eq!(fingerprints.given_out(pid, ticks), Some(real));
        }

        let sent = signaller
            .send(pid, SignalName::TERM, Some(&started))
            .expect("the confirmed process is signalled");
        assert_eq!((sent.pid, sent.name.as_str()), (pid, "sleep"));
        assert_eq!(child.wait().expect("reaps").signal(), Some(15));
    }
}
