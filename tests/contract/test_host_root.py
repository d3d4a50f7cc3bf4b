"""`[host]` points the server at the host's /proc from inside a container-like PID namespace.

The server runs under `unshare --pid --fork --mount-proc`, so its own /proc shows only its
namespace, as in a container without `--pid=host`; the host's procfs is bind-mounted where a
container would mount it (`/host/proc`). With `host.proc` set, the answers are the host's."""

from __future__ import annotations

import os
import subprocess

import pytest

from policy import require
from sdk import stdio_session
from servers import make_config

pytestmark = pytest.mark.anyio

CONTAINER = ["unshare", "--pid", "--fork", "--mount-proc"]


@pytest.fixture
def host_proc(tmp_path):
    require(os.geteuid() == 0, "PID namespaces and bind mounts need root")
    target = tmp_path / "host" / "proc"
    target.mkdir(parents=True)
    subprocess.run(["mount", "--bind", "/proc", str(target)], check=True)
    yield target
    subprocess.run(["umount", "-l", str(target)], check=True)


async def test_host_proc_shows_the_hosts_processes_from_a_pid_namespace(binary, host_proc, subject):
    mine = subject()
    find = {"name": "sm-test-subject", "fields": ["name", "user"]}
    async with stdio_session(binary, wrapper=CONTAINER) as session:
        inside = (await session.call_tool("process_list", find)).structured_content
        own = (await session.call_tool("process_list", {"sort": "pid", "fields": ["name"]})).structured_content
    assert inside["processes"] == [], "the namespace's own /proc does not show the host's processes"
    assert own["processes"][0]["pid"] == 1, "in the namespace the server's parent is pid 1"

    config = make_config(f'[host]\nproc = "{host_proc}"\n')
    async with stdio_session(binary, "--config", str(config), wrapper=CONTAINER) as session:
        host = (await session.call_tool("process_list", find)).structured_content
        memory = (await session.call_tool("memory_usage", {})).structured_content
        signal = await session.call_tool("process_signal", {"pid": mine.pid, "signal": "TERM"})
    assert host["processes"] == [{"pid": mine.pid, "name": "sm-test-subject", "user": "root"}]
    assert memory["total_bytes"] > 0
    assert signal.is_error is True
    assert "is another PID namespace than the server's" in signal.content[0].text
    assert mine.poll() is None, "nothing was signalled"
