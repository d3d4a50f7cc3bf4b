"""process_signal and the roles and tiers around it, against real processes: the subject's exit
status and /proc state are the ground truth."""

from __future__ import annotations

import os
import re
import time

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from conftest import READ_TOOLS, audit_records, make_config, server_env, start_time_of, stat_fields
from rawclient import StdioSession

pytestmark = pytest.mark.anyio


def signal_call(pid: int, signal: str, start_time: str | None = None, request_id: int = 10) -> dict:
    arguments: dict = {"pid": pid, "signal": signal}
    if start_time is not None:
        arguments["start_time"] = start_time
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": "process_signal", "arguments": arguments}}


def text_of(answer: dict) -> str:
    return answer["result"]["content"][0]["text"]


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
    assert session.request(signal_call(process.pid, "STOP", started, 1))["result"]["isError"] is False
    deadline = time.monotonic() + 5
    while stat_fields(process.pid)[0] != "T":
        assert time.monotonic() < deadline, "the process did not stop"
        time.sleep(0.01)
    assert session.request(signal_call(process.pid, "CONT", started, 2))["result"]["isError"] is False
    while stat_fields(process.pid)[0] == "T":
        assert time.monotonic() < deadline, "the process did not continue"
        time.sleep(0.01)
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
