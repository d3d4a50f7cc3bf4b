"""Servers under test: the binary, private configs and state, tokens, `systemmanager serve`
processes started and stopped, and what they wrote to their audit logs.

The server is the binary the test command just built (override with SYSTEMMANAGER_BIN). Every
server keeps its config, token file and audit log in a directory of its own under pytest's
temporary directory (conftest.py hands over pytest's tmp_path_factory), never in the machine's
state."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("SYSTEMMANAGER_BIN", REPO / "target" / "debug" / "systemmanager"))
LISTENING = re.compile(r"serving MCP over HTTPS? at (https?)://(\S+)/mcp")

# --- configs and state --------------------------------------------------------------------------

_temp: pytest.TempPathFactory | None = None
_default_config: Path | None = None


def use_temp_factory(factory: pytest.TempPathFactory) -> None:
    """Where make_config creates its directories: pytest's, for this session (conftest.py)."""
    global _temp
    _temp = factory


def state_directory() -> Path:
    """A fresh directory for one server's config, token file and audit log."""
    assert _temp is not None, "servers.use_temp_factory was not called (conftest.py does, for every session)"
    return _temp.mktemp("sm-test-")


def server_env(**extra: str) -> dict[str, str]:
    """The environment for a server under test: the test state (not the machine's), plain logs."""
    env = {k: v for k, v in os.environ.items() if k not in ("SYSTEMMANAGER_CONFIG", "RUST_LOG")}
    env["NO_COLOR"] = "1"
    env["SYSTEMMANAGER_CONFIG"] = str(default_config())
    env.update(extra)
    return env


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
    directory = state_directory()
    text = config.read_text() if isinstance(config, Path) else (config or "")
    path = directory / "config.toml"
    path.write_text(with_state(text, directory))
    return path


def default_config() -> Path:
    """The config that servers started without --config (stdio sessions, the SDK's stdio client)
    read, through SYSTEMMANAGER_CONFIG: one for the whole session."""
    global _default_config
    if _default_config is None:
        _default_config = make_config()
    return _default_config


# --- tokens -------------------------------------------------------------------------------------

# A running server rereads its token file when a request comes and a second has passed since it
# last looked (RELOAD_INTERVAL in src/auth/tokens.rs). A test that changes the file and may not
# send a request to find out when the change counts (the request would be audited, spend a rate
# budget, or be the very thing the test checks) waits this long: the interval and a margin.
# Where a probe is harmless, rawclient.wait_for_token waits for the change itself.
TOKEN_RELOAD_WAIT = 1.2

# Bearer tokens by server URL: requests rawclient sends to a URL listed here carry its token
# unless the test sends its own Authorization header or asks for none.
TOKENS_BY_URL: dict[str, str] = {}


def create_token(binary: Path, config: Path, name: str = "test", role: str = "operator", expires: str = "1d") -> str:
    result = subprocess.run(
        [str(binary), "token", "create", "--name", name, "--role", role, "--expires", expires, "--config", str(config)],
        capture_output=True,
        text=True,
        env=server_env(),
        timeout=10,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# --- serve processes ----------------------------------------------------------------------------


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


# Servers started by the current test; any still running when it ends (a failed assertion before
# its `stop`) are killed, so no test leaves a server behind for the next to trip over.
STARTED_SERVERS: list[RunningServer] = []


def kill_leftover_servers() -> None:
    while STARTED_SERVERS:
        server = STARTED_SERVERS.pop()
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def start_server(binary: Path, *args: str, config: Path | str | None = None, role: str | None = "operator") -> RunningServer:
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
        TOKENS_BY_URL[server.url] = token
    return server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def held_proc(directory: Path) -> Path:
    """A stand-in for /proc (config `host.proc`) whose `meminfo` is a FIFO: a system_overview
    call blocks opening it until the test writes, which holds the call in flight for as long as
    the test wants. groundtruth.threads_opening_a_fifo shows when calls are held."""
    proc = directory / "proc"
    proc.mkdir()
    for name in ("cpuinfo", "loadavg", "uptime", "stat"):
        (proc / name).symlink_to(f"/proc/{name}")
    os.mkfifo(proc / "meminfo")
    return proc


# --- the audit log ------------------------------------------------------------------------------


def audit_records(config: Path) -> list[dict]:
    """The decisions recorded by the server run with `config` (its log sits beside the config);
    the log's own records (`"event": "log"`: its start, rotations) are left out."""
    path = config.parent / "audit.jsonl"
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [record for record in records if record.get("event") != "log"]


def wait_for_record(server: RunningServer, predicate, timeout: float = 5.0) -> dict:
    """The first audit record matching `predicate`, waiting for the server to write it."""
    record = wait_until(lambda: next((r for r in server.audit() if predicate(r)), None), timeout, interval=0.05)
    assert record is not None, f"no matching audit record in {server.audit()}"
    return record


def audit_verify(binary: Path, *files: Path) -> subprocess.CompletedProcess:
    """`systemmanager audit verify FILES`."""
    return subprocess.run([str(binary), "audit", "verify", *map(str, files)], capture_output=True, text=True, env=server_env())
