"""Start-up and shutdown: signals end the server cleanly (exit 0) on every transport, the unix
socket has mode 0660 and is removed on exit, and a socket path is never clobbered."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from groundtruth import meminfo_total_bytes, threads_opening_a_fifo
from rawclient import StdioSession, get, modern_call, modern_meta, unix_post
from servers import free_port, held_proc, server_env, start_server
from waiting import wait_until


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_http_server_exits_0_on_signal(binary, sig):
    server = start_server(binary, "--http", "127.0.0.1:0")
    assert get(server.url, "/healthz").status == 200
    started = time.monotonic()
    assert server.stop(sig) == 0, server.log
    assert time.monotonic() - started < 5
    assert "shutting down" in server.log and "stopped" in server.log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stdio_server_exits_0_on_signal(binary, sig):
    session = StdioSession(binary)
    session.initialize()
    session.process.send_signal(sig)
    assert session.process.wait(timeout=5) == 0


def test_stdio_server_exits_0_when_the_client_closes_stdin(binary):
    session = StdioSession(binary)
    session.initialize()
    assert session.close() == 0


def test_stdio_keeps_stdout_for_protocol_messages_only(binary):
    session = StdioSession(binary)
    session.initialize()
    session.request({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "system_overview", "arguments": {}}})
    assert session.close() == 0
    # Whatever else the server said went to stderr; the reader saw only JSON-RPC lines.
    assert session.lines.empty()
    assert any(b"serving MCP over stdio" in line for line in session.stderr)


def test_unix_socket_mode_and_cleanup(unix_server):
    path = unix_server.socket_path
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert mode == 0o660, oct(mode)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(path))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200")
    assert unix_server.stop() == 0
    assert not path.exists(), "the socket file must be removed on exit"


def test_unix_socket_replaces_a_stale_socket(binary, tmp_path):
    path = tmp_path / "stale.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # bound but nobody listening: what a crashed server leaves behind
    server = start_server(binary, "--unix", str(path))
    try:
        assert stat.S_ISSOCK(os.stat(path).st_mode)
    finally:
        assert server.stop() == 0


def test_unix_socket_refuses_a_live_socket_or_a_regular_file(binary, tmp_path):
    live = start_server(binary, "--unix", str(tmp_path / "live.sock"))
    try:
        second = subprocess.run(
            [str(binary), "serve", "--unix", str(tmp_path / "live.sock")],
            capture_output=True, text=True, timeout=10, env=server_env(),
        )
        assert second.returncode == 1
        assert "in use by another server" in second.stderr
    finally:
        assert live.stop() == 0

    regular = tmp_path / "precious.txt"
    regular.write_text("keep me")
    refused = subprocess.run(
        [str(binary), "serve", "--unix", str(regular)], capture_output=True, text=True, timeout=10, env=server_env()
    )
    assert refused.returncode == 1
    assert "is not a socket" in refused.stderr
    assert regular.read_text() == "keep me"


def test_http_port_in_use_is_a_clear_error(binary, http_server):
    address = http_server.url.removeprefix("http://").removesuffix("/mcp")
    result = subprocess.run(
        [str(binary), "serve", "--http", address], capture_output=True, text=True, timeout=10, env=server_env()
    )
    assert result.returncode == 1
    assert f"cannot listen on {address}" in result.stderr


def test_unix_socket_caller_is_the_local_user(unix_server):
    status, answer = unix_post(
        unix_server.socket_path,
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
         "params": {"name": "system_overview", "arguments": {}, "_meta": modern_meta()}},
        {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "system_overview"},
    )
    assert status == 200 and answer["result"]["isError"] is False, answer
    assert unix_server.stop() == 0
    user = pwd.getpwuid(os.getuid()).pw_name
    call_lines = [line for line in unix_server.log.splitlines() if "tool call" in line]
    assert call_lines, unix_server.log
    assert f"identity=user:{user}" in call_lines[0] and 'transport="unix"' in call_lines[0], call_lines
    assert 'role="operator"' in call_lines[0], call_lines


def write_config(tmp_path, proc, grace: int):
    config = tmp_path / "config.toml"
    config.write_text(f'[host]\nproc = "{proc}"\n\n[limits]\nshutdown_grace_seconds = {grace}\n')
    return config


def call_in_background(url: str) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def call() -> None:
        try:
            outcome["answer"] = modern_call(url, "system_overview", {})
        except Exception as error:  # the connection may be closed under it
            outcome["error"] = error

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread, outcome


def test_sigterm_lets_a_call_in_flight_finish_then_exits_0(binary, tmp_path):
    proc = held_proc(tmp_path)
    server = start_server(binary, "--http", "127.0.0.1:0", config=write_config(tmp_path, proc, grace=20))
    thread, outcome = call_in_background(server.url)
    wait_until(lambda: threads_opening_a_fifo(server.process.pid) >= 1)
    assert thread.is_alive(), "the call should be held on the FIFO"

    server.process.send_signal(signal.SIGTERM)
    # What is checked is that nothing happens: a server that did not wait would be gone by now.
    time.sleep(0.5)
    assert server.process.poll() is None, "the server must wait for the call in flight"
    assert "in_flight=1" in server.log, server.log

    # Release the call: it completes and its answer reaches the client.
    with open(proc / "meminfo", "w") as fifo:
        fifo.write(Path("/proc/meminfo").read_text())
    thread.join(10)
    answer = outcome["answer"]
    assert answer.status == 200
    result = answer.json()["result"]
    assert result["isError"] is False
    assert result["structuredContent"]["memory"]["total_bytes"] == meminfo_total_bytes()
    assert server.process.wait(timeout=10) == 0, server.log


def test_sigterm_exits_0_after_the_grace_period_even_if_a_call_hangs(binary, tmp_path):
    proc = held_proc(tmp_path)
    server = start_server(binary, "--http", "127.0.0.1:0", config=write_config(tmp_path, proc, grace=1))
    thread, _ = call_in_background(server.url)
    wait_until(lambda: threads_opening_a_fifo(server.process.pid) >= 1)  # the call is held
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=10) == 0, server.log
    assert time.monotonic() - started < 5
    assert "still running after the shutdown grace period" in server.log, server.log
    thread.join(5)
    assert not thread.is_alive(), "the client must not be left waiting once the server is gone"


def test_a_bare_port_listens_on_loopback(binary):
    port = free_port()
    server = start_server(binary, "--http", str(port))
    try:
        assert server.url == f"http://127.0.0.1:{port}/mcp"
    finally:
        assert server.stop() == 0
