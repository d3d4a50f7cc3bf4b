"""pytest's fixtures and hooks for the contract tests; the helpers they use are modules of their
own, which test modules import directly:

- servers.py: the binary, private configs and state, tokens, servers started and stopped, audit logs
- rawclient.py, sdk.py: the raw JSON-RPC clients and the official MCP Python SDK client
- groundtruth.py: what the machine says about itself, to check answers against
- catalogue.py: the server's tools by tier and role
- policy.py: `require`, and CI=true's rule that nothing skips
- waiting.py: `wait_until`, instead of fixed sleeps
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import groundtruth
import policy
import servers
from waiting import wait_until


@pytest.fixture(scope="session", autouse=True)
def server_state_under_pytest_tmp(tmp_path_factory):
    """Servers keep their configs, token files and audit logs under pytest's temporary
    directory for this session."""
    servers.use_temp_factory(tmp_path_factory)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def binary() -> Path:
    assert servers.BINARY.is_file(), f"{servers.BINARY} is missing: build it first (cargo build)"
    return servers.BINARY


@pytest.fixture(autouse=True)
def no_server_outlives_its_test():
    yield
    servers.kill_leftover_servers()


@pytest.fixture
def http_server(binary: Path):
    server = servers.start_server(binary, "--http", "127.0.0.1:0")
    yield server
    assert server.stop() == 0, f"unclean exit:\n{server.log}"


@pytest.fixture
def unix_server(binary: Path, tmp_path: Path):
    path = tmp_path / "mcp.sock"
    server = servers.start_server(binary, "--unix", str(path))
    server.socket_path = path
    wait_until(path.exists)
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


@pytest.fixture(scope="session")
def host_truth() -> dict[str, object]:
    return groundtruth.host_facts()


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
        assert wait_until(lambda: groundtruth.comm(process.pid) == name[:15], interval=0.01), "the subject did not start"
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def pytest_sessionfinish(session, exitstatus):
    policy.fail_skips_under_ci(session)
