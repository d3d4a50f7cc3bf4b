"""process_signal and the roles and tiers around it, against real processes: the subject's exit
status and /proc state are the ground truth."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from catalogue import READ_TOOLS
from groundtruth import comm, start_time_from_ticks, start_time_of, stat_fields
from policy import require
from rawclient import StdioSession
from servers import audit_records, make_config, server_env
from waiting import wait_until

pytestmark = pytest.mark.anyio


def signal_call(pid: int, signal: str, start_time: str | None = None, request_id: int = 10) -> dict:
    arguments: dict = {"pid": pid, "signal": signal}
    if start_time is not None:
        arguments["start_time"] = start_time
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": "process_signal", "arguments": arguments}}


def text_of(answer: dict) -> str:
    return answer["result"]["content"][0]["text"]


def tool_call(name: str, arguments: dict, request_id: int) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


@pytest.fixture
def server(binary, tmp_path):
    """A stdio server with the given config text (default: built-in defaults)."""
    sessions = []

    def start(config: str | None = None, *extra: str) -> StdioSession:
        args = list(extra)
        path = make_config(config)
        args += ["--config", str(path)]
        session = StdioSession(binary, *args)
        session.config = path
        session.initialize()
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        assert session.close() == 0


async def test_sdk_client_terminates_a_process_after_confirming_its_start_time(binary, subject):
    process = subject()
    params = StdioServerParameters(command=str(binary), args=["serve"], env=server_env())
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        annotations = tools["process_signal"].annotations
        assert annotations.read_only_hint is False and annotations.destructive_hint is True

        first = await session.call_tool("process_signal", {"pid": process.pid, "signal": "TERM"})
        assert first.is_error is True
        confirm = re.search(r'start_time = "([^"]+)"', first.content[0].text).group(1)
        assert confirm == start_time_of(process.pid)
        assert process.poll() is None, "nothing may be sent without the confirmation"

        sent = await session.call_tool(
            "process_signal", {"pid": process.pid, "signal": "TERM", "start_time": confirm}
        )
        assert sent.is_error is False, sent.content
        assert sent.structured_content == {
            "pid": process.pid, "name": "sm-test-subject", "signal": "TERM", "start_time": confirm,
        }
    assert process.wait(timeout=5) == -15


def test_a_wrong_start_time_sends_nothing(server, subject):
    process = subject()
    answer = server().request(signal_call(process.pid, "TERM", "2020-01-01T00:00:00.000Z"))
    assert answer["result"]["isError"] is True
    assert "is a different process now" in text_of(answer)
    # What is checked is that nothing happens: a signal sent would have landed by now.
    time.sleep(0.1)
    assert process.poll() is None


def test_kill_needs_the_admin_tier_which_is_off_by_default(server, subject):
    process = subject()
    answer = server().request(signal_call(process.pid, "KILL", start_time_of(process.pid)))
    assert answer["result"]["isError"] is True
    assert text_of(answer) == (
        "permission denied: process_signal needs the `admin` tier (signal KILL), which this "
        "server's config disables (security.admin_tier = false). Nothing was done."
    )
    assert process.poll() is None


def test_an_admin_can_kill_stop_and_continue(server, subject):
    session = server('[security]\nadmin_tier = true\nlocal_role = "admin"\n')
    process = subject()
    started = start_time_of(process.pid)
    # Computed here, not given out by the server: the first call shows the process and asks.
    confirm = session.request(signal_call(process.pid, "STOP", started, 4))
    assert confirm["result"]["isError"] is True and f'start_time = "{started}"' in text_of(confirm)
    assert session.request(signal_call(process.pid, "STOP", started, 1))["result"]["isError"] is False
    assert wait_until(lambda: stat_fields(process.pid)[0] == "T", interval=0.01), "the process did not stop"
    assert session.request(signal_call(process.pid, "CONT", started, 2))["result"]["isError"] is False
    assert wait_until(lambda: stat_fields(process.pid)[0] != "T", interval=0.01), "the process did not continue"
    assert session.request(signal_call(process.pid, "KILL", started, 3))["result"]["isError"] is False
    assert process.wait(timeout=5) == -9


def test_an_operator_may_not_kill_even_with_the_admin_tier_enabled(server, subject):
    process = subject()
    answer = server("[security]\nadmin_tier = true\n").request(signal_call(process.pid, "KILL", start_time_of(process.pid)))
    assert "role `operator` grants: read, operate" in text_of(answer)
    assert process.poll() is None


def test_a_viewer_neither_sees_nor_may_call_process_signal(server, subject):
    process = subject()
    session = server('[security]\nlocal_role = "viewer"\n')
    listing = session.request({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert [tool["name"] for tool in listing["result"]["tools"]] == READ_TOOLS
    answer = session.request(signal_call(process.pid, "TERM", start_time_of(process.pid)))
    assert text_of(answer).startswith("permission denied: process_signal needs the `operate` tier")
    assert process.poll() is None
    record = audit_records(session.config)[-1]
    assert (record["decision"], record["role"], record["transport"]) == ("denied", "viewer", "stdio")
    assert record["args"]["pid"] == process.pid


def test_read_only_mode_registers_no_write_tool(server, subject):
    process = subject()
    session = server("", "--read-only")
    listing = session.request({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert [tool["name"] for tool in listing["result"]["tools"]] == READ_TOOLS
    answer = session.request(signal_call(process.pid, "TERM", start_time_of(process.pid)))
    assert answer["error"]["code"] == -32602
    assert answer["error"]["message"] == "Unknown tool: process_signal"
    assert process.poll() is None
    record = audit_records(session.config)[-1]
    assert (record["tool"], record["decision"], record["outcome"]) == ("process_signal", "refused", "unknown_tool")


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("init", "PID 1, the init system"),
        ("server", "the SystemManager server itself"),
        ("parent", "the server's parent process"),
        ("protected", "sshd, protected by process.protected_names"),
        ("kthread", "a kernel thread"),
    ],
)
def test_protected_processes_are_refused(server, subject, target, reason):
    session = server()
    pid = {
        "init": lambda: 1,
        "server": lambda: session.process.pid,
        "parent": lambda: os.getpid(),
        "protected": lambda: subject("sshd").pid,
        "kthread": lambda: 2,  # kthreadd
    }[target]()
    answer = session.request(signal_call(pid, "TERM", "2020-01-01T00:00:00.000Z"))
    assert answer["result"]["isError"] is True
    assert reason in text_of(answer), text_of(answer)
    assert "nothing was sent" in text_of(answer)


def test_an_unknown_pid_is_not_found(server):
    answer = server().request(signal_call(4_000_000, "TERM"))
    assert answer["result"]["isError"] is True
    assert "no process 4000000" in text_of(answer)


def test_a_bad_signal_name_lists_the_valid_ones(server):
    answer = server().request(signal_call(12345, "QUIT"))
    text = text_of(answer)
    assert "invalid argument `signal`" in text and "TERM" in text and "KILL" in text, text


# Forks A (which exits at once), reaps it, sets the kernel's last pid to A's pid - 1 and forks B,
# which runs argv[1:]; retried until B has A's pid and A's start tick (field 22 of
# /proc/PID/stat). Prints "A_PID A_TICKS B_PID B_TICKS", then B's wait status when it ends.
SAME_TICK_REUSE = """
import os, sys

def ticks(pid):
    text = open(f"/proc/{pid}/stat").read()
    return int(text[text.rindex(")") + 2:].split()[19])

for attempt in range(2000):
    a = os.fork()
    if a == 0:
        os._exit(0)
    a_ticks = ticks(a)  # a zombie until reaped: its stat is still there
    os.waitpid(a, 0)
    with open("/proc/sys/kernel/ns_last_pid", "w") as last:
        last.write(str(a - 1))
    b = os.fork()
    if b == 0:
        os.execv(sys.argv[1], sys.argv[1:])
    b_ticks = ticks(b)
    if b == a and b_ticks == a_ticks:
        print(a, a_ticks, b, b_ticks, flush=True)
        print(os.waitpid(b, 0)[1], flush=True)
        sys.exit(0)
    os.kill(b, 9)
    os.waitpid(b, 0)
sys.exit("no pid reuse within one tick in 2000 attempts")
"""


def test_a_pid_reused_within_its_start_tick_is_not_signalled(server, tmp_path):
    last_pid = Path("/proc/sys/kernel/ns_last_pid")
    require(os.geteuid() == 0 and last_pid.exists(), "forcing a pid reuse writes ns_last_pid, as root")
    newcomer = tmp_path / "sm-newcomer"
    newcomer.symlink_to("/bin/sleep")
    helper = subprocess.Popen(
        [sys.executable, "-c", SAME_TICK_REUSE, str(newcomer), "300"], stdout=subprocess.PIPE, text=True
    )
    b = None
    try:
        line = helper.stdout.readline()
        assert line, f"the helper could not reuse a pid within one tick (exit {helper.wait(10)})"
        a, a_ticks, b, b_ticks = map(int, line.split())
        assert (b, b_ticks) == (a, a_ticks)
        assert wait_until(lambda: comm(b) == "sm-newcomer", interval=0.01), "B did not start"
        assert int(stat_fields(b)[19]) == a_ticks, "B started in A's tick"
        a_started = start_time_from_ticks(a_ticks)

        session = server()
        answer = session.request(signal_call(a, "TERM", a_started, 1))
        text = text_of(answer)
        assert answer["result"]["isError"] is True, text
        assert text.startswith(f"nothing was sent: this server did not give out start_time {a_started} for pid {a}"), text
        assert f'call again with start_time = "{a_started}"' in text, text
        assert f"(pid {a} is sm-newcomer, user root, running {newcomer} 300)" in text, text
        # What is checked is that nothing happens: a signal sent would have landed by now.
        time.sleep(0.2)
        assert helper.poll() is None and stat_fields(b)[0] == "S", "B was not signalled"

        # Confirmed after being shown B, the caller means B: the same call now signals it.
        sent = session.request(signal_call(b, "TERM", a_started, 2))
        assert sent["result"]["isError"] is False, text_of(sent)
        assert int(helper.stdout.readline()) == 15, "B ended by SIGTERM"
        assert helper.wait(5) == 0
    finally:
        if helper.poll() is None:
            if b is not None:
                os.kill(b, 9)
            helper.kill()
            helper.wait()


def test_only_start_times_this_server_gave_out_signal_at_once(server, subject):
    session = server()
    computed, listed, inspected = subject("sm-computed"), subject("sm-listed"), subject("sm-inspected")

    # Computed here: the server has not shown this process, so it shows it and asks first.
    started = start_time_of(computed.pid)
    first = session.request(signal_call(computed.pid, "TERM", started, 1))
    assert first["result"]["isError"] is True
    assert f'call again with start_time = "{started}" (pid {computed.pid} is sm-computed, user root, running ' in text_of(first)
    # What is checked is that nothing happens: a signal sent would have landed by now.
    time.sleep(0.1)
    assert computed.poll() is None, "nothing may be sent before the confirmation"
    assert session.request(signal_call(computed.pid, "TERM", started, 2))["result"]["isError"] is False
    assert computed.wait(timeout=5) == -15

    # From process_list or process_get: one call.
    rows = session.request(tool_call("process_list", {"name": "sm-listed"}, 3))["result"]["structuredContent"]["processes"]
    row = next(row for row in rows if row["pid"] == listed.pid)
    assert row["start_time"] == start_time_of(listed.pid)
    sent = session.request(signal_call(listed.pid, "TERM", row["start_time"], 4))
    assert sent["result"]["isError"] is False, text_of(sent)
    assert listed.wait(timeout=5) == -15

    details = session.request(tool_call("process_get", {"pid": inspected.pid}, 5))["result"]["structuredContent"]
    sent = session.request(signal_call(inspected.pid, "TERM", details["start_time"], 6))
    assert sent["result"]["isError"] is False, text_of(sent)
    assert inspected.wait(timeout=5) == -15


def test_a_process_that_runs_another_program_since_it_was_listed_is_asked_about_again(server, tmp_path):
    after = tmp_path / "sm-after-exec"
    after.symlink_to("/bin/sleep")
    # The same process (pid and start time) before and after the exec: only what it runs differs.
    process = subprocess.Popen(["/bin/sh", "-c", f"read _; exec {after} 300"], stdin=subprocess.PIPE, text=True)
    try:
        session = server()

        def rows() -> list[dict]:
            answer = session.request(tool_call("process_list", {"name": "sm-after-exec", "fields": ["start_time", "command"]}, 1))
            return [row for row in answer["result"]["structuredContent"]["processes"] if row["pid"] == process.pid]

        listed_rows = wait_until(rows, interval=0.01)
        assert listed_rows, "the shell did not start"
        listed = listed_rows[0]
        assert listed["command"] == f"/bin/sh -c read _; exec {after} 300"

        process.stdin.write("\n")
        process.stdin.flush()
        assert wait_until(lambda: comm(process.pid) == "sm-after-exec", interval=0.01), "the shell did not exec"
        assert start_time_of(process.pid) == listed["start_time"]

        answer = session.request(signal_call(process.pid, "TERM", listed["start_time"], 2))
        text = text_of(answer)
        assert answer["result"]["isError"] is True, text
        assert text.startswith(f"nothing was sent: pid {process.pid} does not run what it ran when start_time"), text
        assert f"running {after} 300)" in text, text
        # What is checked is that nothing happens: a signal sent would have landed by now.
        time.sleep(0.1)
        assert process.poll() is None, "nothing was sent"

        assert session.request(signal_call(process.pid, "TERM", listed["start_time"], 3))["result"]["isError"] is False
        assert process.wait(timeout=5) == -15
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
