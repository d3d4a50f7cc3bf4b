"""Ground truth: what this machine says about itself through sources independent of the server
(/proc, /sys, and the usual command-line tools), to check the server's answers against."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path


def meminfo_total_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def command_output(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def host_facts() -> dict[str, object]:
    """What system_overview reports of the host, as the kernel and coreutils give it."""
    return {
        "mem_total": meminfo_total_bytes(),
        "nproc": int(command_output("nproc")),
        "hostname": command_output("uname", "-n"),
        "kernel": command_output("uname", "-r"),
        "arch": command_output("uname", "-m"),
    }


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: field 3 (the state) is item 0."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def comm(pid: int) -> str:
    """The process's name (its comm, at most 15 bytes)."""
    return Path(f"/proc/{pid}/comm").read_text().strip()


def start_time_of(pid: int) -> str:
    """The start time computed independently: btime + starttime / CLK_TCK."""
    return start_time_from_ticks(int(stat_fields(pid)[19]))


def start_time_from_ticks(ticks: int) -> str:
    """The start time of a process that started `ticks` clock ticks after boot (field 22 of
    /proc/PID/stat), as the server writes it."""
    btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
    millis = ticks * 1000 // os.sysconf("SC_CLK_TCK")
    moment = datetime.fromtimestamp(btime + millis / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def threads_opening_a_fifo(pid: int) -> int:
    """How many threads of `pid` wait in open() for a FIFO's other end (their wchan, the kernel
    function they sleep in, is fs/pipe.c's wait_for_partner, or fifo_open where that is
    inlined): calls held on servers.held_proc's FIFO. 0 where the kernel does not say."""
    count = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            count += (task / "wchan").read_text() in ("wait_for_partner", "fifo_open")
        except OSError:
            pass  # the thread ended meanwhile
    return count
