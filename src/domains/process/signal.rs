//! `process_signal`: send TERM, INT, HUP or CONT (tier `operate`), KILL or STOP (tier `admin`)
//! to a process — never to PID 1, the server, its parent, kernel threads or protected names, and
//! never to a process other than the one the caller looked at.
//!
//! The caller names the process by pid *and* start time. The server reads the start time, opens
//! a pidfd (which pins that very process), reads the start time again, and signals through the
//! pidfd only if all three agree: a pid reused at any moment in between is never signalled.

use std::path::PathBuf;
use std::sync::Arc;

use procfs::process::Process;
use rustix::process::{Pid, PidfdFlags, Signal};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bounded::Bounded;
use crate::domains::kernel;
use crate::tool::{Declaration, Domain, Render, Tier, Tool, ToolContext, ToolError, blocking};

pub static PROCESS_SIGNAL: Declaration = Declaration {
    name: "process_signal",
    title: "Signal a process",
    description: "Send a signal to one process: TERM (ask it to exit), INT, HUP (many daemons \
                  reload), CONT (resume) — tier operate; KILL or STOP — tier admin. Pass the pid \
                  and the process's start_time as reported for it; without start_time the answer \
                  tells you the value to confirm with. PID 1, the server itself, its parent, \
                  kernel threads and protected daemons are refused.",
    domain: Domain::Process,
    tier: Tier::Operate,
    destructive: true,
    idempotent: false,
    open_world: false,
    paging_hint: None,
};

/// The signals this tool sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum SignalName {
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
pub struct SignalArguments {
    /// The process id.
    pub pid: Bounded<1, 4_194_304>,
    /// TERM, INT, HUP or CONT (tier operate); KILL or STOP (tier admin).
    pub signal: SignalName,
    /// When the process started, as reported for it (RFC 3339, e.g.
    /// "2026-11-24T05:00:00.120Z"). It proves the pid still names the same process.
    pub start_time: Option<String>,
}

/// The answer of `process_signal`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SignalSent {
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
            self.name,
            self.start_time
        )
    }
}

/// What a process is, read from `/proc/PID/stat`.
struct Observed {
    name: String,
    start_ticks: u64,
    kernel_thread: bool,
}

/// Signals processes of the host whose `/proc` is at `proc`.
pub struct Signaller {
    proc: PathBuf,
    protected_names: Vec<String>,
}

impl Signaller {
    pub fn new(proc: PathBuf, protected_names: Vec<String>) -> Self {
        Self {
            proc,
            protected_names,
        }
    }

    fn observe(&self, pid: u32) -> Result<Observed, ToolError> {
        let gone = || {
            ToolError::not_found(format!(
                "no process {pid} (it may have exited); list the processes again"
            ))
        };
        let process =
            Process::new_with_root(self.proc.join(pid.to_string())).map_err(|_| gone())?;
        let stat = process.stat().map_err(|_| gone())?;
        Ok(Observed {
            name: stat.comm,
            start_ticks: stat.starttime,
            kernel_thread: u64::from(stat.flags) & super::table::PF_KTHREAD != 0,
        })
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

    /// Sends `signal` to `pid` if it is still the process that started at `start_time`.
    /// Blocking (reads /proc): call it from a blocking thread.
    pub fn send(
        &self,
        pid: u32,
        signal: SignalName,
        start_time: Option<&str>,
    ) -> Result<SignalSent, ToolError> {
        self.same_pid_namespace()?;
        let own = rustix::process::getpid().as_raw_nonzero().get();
        let parent = rustix::process::getppid().map(|pid| pid.as_raw_nonzero().get());
        let raw =
            i32::try_from(pid).map_err(|_| ToolError::invalid_arguments("pid out of range"))?;
        let refuse = |what: String| {
            Err(ToolError::failed(format!(
                "refusing to signal {pid} ({what}); nothing was sent"
            )))
        };
        if pid == 1 {
            return refuse("PID 1, the init system".into());
        }
        if raw == own {
            return refuse("the SystemManager server itself".into());
        }
        if Some(raw) == parent {
            return refuse("the server's parent process".into());
        }

        let before = self.observe(pid)?;
        let started = self.start_time(before.start_ticks)?;
        if before.kernel_thread {
            return refuse(format!("{}, a kernel thread", before.name));
        }
        if self.protected_names.contains(&before.name) {
            return refuse(format!(
                "{}, protected by process.protected_names",
                before.name
            ));
        }
        let Some(expected) = start_time else {
            return Err(ToolError::invalid_arguments(format!(
                "to signal pid {pid} ({}), confirm it is the process you mean: call again with \
                 start_time = \"{started}\"",
                before.name
            )));
        };
        if expected != started {
            return Err(ToolError::failed(format!(
                "pid {pid} is a different process now ({} started {started}, not {expected}); \
                 nothing was sent. List the processes again.",
                before.name
            )));
        }

        let target = Pid::from_raw(raw).ok_or_else(|| ToolError::invalid_arguments("pid 0"))?;
        let pidfd = rustix::process::pidfd_open(target, PidfdFlags::empty()).map_err(|error| {
            if error == rustix::io::Errno::SRCH {
                ToolError::not_found(format!("process {pid} exited before it could be signalled"))
            } else {
                ToolError::failed(format!("cannot open process {pid}: {error}"))
            }
        })?;
        // The pidfd pins one process; if the pid was reused between the first look and the
        // pidfd, the start time read now differs.
        let after = self.observe(pid)?;
        if after.start_ticks != before.start_ticks {
            return Err(ToolError::failed(format!(
                "pid {pid} was reused while it was being checked; nothing was sent"
            )));
        }
        rustix::process::pidfd_send_signal(&pidfd, signal.signal()).map_err(
            |error| match error {
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
            },
        )?;
        Ok(SignalSent {
            pid,
            name: before.name,
            signal,
            start_time: started,
        })
    }

    /// Signals go to pids of the server's own PID namespace; the configured /proc must show the
    /// same namespace (a container needs `--pid=host` to manage host processes).
    fn same_pid_namespace(&self) -> Result<(), ToolError> {
        let own = rustix::process::getpid().as_raw_nonzero().get();
        let seen = std::fs::read_link(self.proc.join("self"))
            .ok()
            .and_then(|target| target.to_str().and_then(|text| text.parse::<i32>().ok()));
        if seen == Some(own) {
            Ok(())
        } else {
            Err(ToolError::unavailable(format!(
                "{} is another PID namespace than the server's, so its pids cannot be signalled \
                 from here (run the container with --pid=host)",
                self.proc.display()
            )))
        }
    }
}

pub struct ProcessSignalTool {
    signaller: Arc<Signaller>,
}

impl ProcessSignalTool {
    pub fn new(signaller: Arc<Signaller>) -> Self {
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
