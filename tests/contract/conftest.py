"""Shared fixtures: the server binary, servers started per test, and the host's ground truth.

The server is the binary the test command just built (override with SYSTEMMANAGER_BIN). Under
CI=true a missing component fails the run; nothing here skips.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("SYSTEMMANAGER_BIN", REPO / "target" / "debug" / "systemmanager"))
LISTENING = re.compile(r"serving MCP over HTTPS? at (https?)://(\S+)/mcp")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def binary() -> Path:
    assert BINARY.is_file(), f"{BINARY} is missing: build it first (cargo build)"
    return BINARY


def server_env(**extra: str) -> dict[str, str]:
    """The environment for a server under test: the test state (not the machine's), plain logs."""
    env = {k: v for k, v in os.environ.items() if k not in ("SYSTEMMANAGER_CONFIG", "RUST_LOG")}
    env["NO_COLOR"] = "1"
    env["SYSTEMMANAGER_CONFIG"] = str(DEFAULT_CONFIG)
    env.update(extra)
    return env


@dataclass
class RunningServer:
    """A `systemmanager serve` process and what it printed on stderr."""

    process: subprocess.Popen
    config: Path
    url: str | None = None
    socket_path: Path | None = None
    token: str | None = None
    stderr_lines: list[str] = field(default_factory=list)

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    @property
    def log(self) -> str:
        return "".join(self.stderr_lines)

    def audit(self) -> list[dict]:
        """The server's audit records so far."""
        return audit_records(self.config)


def set_in_section(config_text: str, section: str, line: str) -> str:
    """`config_text` with `line` added to `[section]` (created when missing)."""
    header = re.compile(rf"^\[{re.escape(section)}\]\s*$", re.MULTILINE)
    if header.search(config_text):
        return header.sub(f"[{section}]\n{line}", config_text, count=1)
    return f"{config_text}\n[{section}]\n{line}\n"


def with_state(config_text: str, directory: Path) -> str:
    """`config_text` with the token file and the audit log in `directory`, so tests never touch
    the machine's real state."""
    text = config_text
    if "token_file" not in text:
        text = set_in_section(text, "security", f'token_file = "{directory / "tokens.json"}"')
    if not re.search(r"^path\s*=", text, re.MULTILINE):
        text = set_in_section(text, "audit", f'path = "{directory / "audit.jsonl"}"')
    return text


def make_config(config: Path | str | None = None) -> Path:
    """A config file in a fresh directory, with its own token file and audit log; `config` adds
    to it."""
    directory = Path(tempfile.mkdtemp(prefix="sm-test-"))
    text = config.read_text() if isinstance(config, Path) else (config or "")
    path = directory / "config.toml"
    path.write_text(with_state(text, directory))
    return path


# Servers started without --config (stdio sessions, the SDK's stdio client) read this one.
DEFAULT_CONFIG = make_config()


def create_token(binary: Path, config: Path, name: str = "test", role: str = "operator", expires: str = "1d") -> str:
    result = subprocess.run(
        [str(binary), "token", "create", "--name", name, "--role", role, "--expires", expires, "--config", str(config)],
        capture_output=True, text=True, env=server_env(), timeout=10,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# Servers started by the current test; any still running when it ends (a failed assertion before
# its `stop`) are killed, so no test leaves a server behind for the next to trip over.
STARTED_SERVERS: list[RunningServer] = []


@pytest.fixture(autouse=True)
def no_server_outlives_its_test():
    yield
    while STARTED_SERVERS:
        server = STARTED_SERVERS.pop()
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def start_server(
    binary: Path, *args: str, config: Path | str | None = None, role: str | None = "operator"
) -> RunningServer:
    """Starts the server with a private config and token file, and (unless `role` is None) a
    token of that role; waits until it says where it listens."""
    config_path = make_config(config)
    token = create_token(binary, config_path, role=role) if role else None
    command = [str(binary), "serve", *args, "--config", str(config_path)]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=server_env(),
        text=True,
    )
    server = RunningServer(process, config=config_path, token=token)
    STARTED_SERVERS.append(server)
    ready = threading.Event()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            server.stderr_lines.append(line)
            match = LISTENING.search(line)
            if match:
                server.url = f"{match.group(1)}://{match.group(2)}/mcp"
                ready.set()
            if "on unix socket" in line:
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    assert ready.wait(10), "the server did not start listening within 10 s"
    assert process.poll() is None, f"the server exited early:\n{server.log}"
    if server.url and token:
        import rawclient

        rawclient.AUTH[server.url] = token
    return server


@pytest.fixture
def http_server(binary: Path):
    server = start_server(binary, "--http", "127.0.0.1:0")
    yield server
    assert server.stop() == 0, f"unclean exit:\n{server.log}"


@pytest.fixture
def unix_server(binary: Path, tmp_path: Path):
    path = tmp_path / "mcp.sock"
    server = start_server(binary, "--unix", str(path))
    server.socket_path = path
    deadline = time.monotonic() + 5
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    yield server
    assert server.stop() == 0, f"unclean exit:\n{server.log}"


@pytest.fixture(params=["stdio", "http", "unix"])
def transport(request):
    """Each transport a client can reach us by."""
    return request.param


@pytest.fixture
def endpoint(request, transport, binary, tmp_path):
    """Starts an HTTP or unix-socket server when the transport needs one. Over HTTP the client
    carries a bearer token; over the unix socket it is the local user the kernel reports."""
    if transport == "stdio":
        yield None, None, None
        return
    fixture = "http_server" if transport == "http" else "unix_server"
    server = request.getfixturevalue(fixture)
    yield server.url, server.socket_path, server.token


def audit_records(config: Path) -> list[dict]:
    """The decisions recorded by the server run with `config` (its log sits beside the config);
    the log's own records (`"event": "log"`: its start, rotations) are left out."""
    path = config.parent / "audit.jsonl"
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [record for record in records if record.get("event") != "log"]


def wait_for_record(server: "RunningServer", predicate, timeout: float = 5.0) -> dict:
    """The first audit record matching `predicate`, waiting for the server to write it."""
    deadline = time.monotonic() + timeout
    while True:
        for record in server.audit():
            if predicate(record):
                return record
        assert time.monotonic() < deadline, f"no matching audit record in {server.audit()}"
        time.sleep(0.05)


# --- ground truth: independent sources on this machine -------------------------------------------


def meminfo_total_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def command_output(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="session")
def host_truth() -> dict[str, object]:
    return {
        "mem_total": meminfo_total_bytes(),
        "nproc": int(command_output("nproc")),
        "hostname": command_output("uname", "-n"),
        "kernel": command_output("uname", "-r"),
        "arch": command_output("uname", "-m"),
    }


# --- subjects: processes the tests start and the server should see --------------------------------


@pytest.fixture
def subject(tmp_path):
    """A `sleep` running under a distinctive name (its comm), killed at teardown if still alive."""
    started = []

    def start(name: str = "sm-test-subject") -> subprocess.Popen:
        link = tmp_path / name
        if not link.exists():
            link.symlink_to("/bin/sleep")
        process = subprocess.Popen([str(link), "300"])
        started.append(process)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{process.pid}/comm").read_text().strip() != name[:15]:
            assert time.monotonic() < deadline, "the subject did not start"
            time.sleep(0.01)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


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



# The tools in `tools/list` order (registration order: domain by domain).
HOST_READ_TOOLS = [
    "system_overview",
    "cpu_usage",
    "memory_usage",
    "disk_usage",
    "disk_io",
    "network_interfaces",
    "network_connections",
    "network_routes",
    "hardware_info",
    "process_list",
    "process_get",
    "process_tree",
]
DOCKER_READ_TOOLS = [
    "docker_info",
    "docker_container_list",
    "docker_container_inspect",
    "docker_container_logs",
    "docker_container_stats",
    "docker_container_top",
    "docker_image_list",
    "docker_image_inspect",
    "docker_network_list",
    "docker_network_inspect",
    "docker_volume_list",
    "docker_volume_inspect",
    "docker_system_df",
    "docker_events",
]
DOCKER_OPERATE_TOOLS = [
    "docker_container_start",
    "docker_container_stop",
    "docker_container_restart",
    "docker_container_pause",
    "docker_container_unpause",
    "docker_network_connect",
    "docker_network_disconnect",
]
# What a viewer sees, and all a read-only server has.
READ_TOOLS = [*HOST_READ_TOOLS, *DOCKER_READ_TOOLS]
# What an operator sees: the read tools and the operate tier's.
OPERATOR_TOOLS = [*HOST_READ_TOOLS, "process_signal", *DOCKER_READ_TOOLS, *DOCKER_OPERATE_TOOLS]


def require(condition: bool, reason: str) -> None:
    """A component this test needs: missing, the test skips locally and fails under CI=true."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"missing under CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dumps(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"))


def pytest_sessionfinish(session, exitstatus):
    """Under CI=true a skipped test is a failure: every component must be present and run."""
    if os.environ.get("CI") != "true":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        reporter.write_line(f"CI=true: {skipped} test(s) skipped; under CI every test must run", red=True)
        session.exitstatus = 1
