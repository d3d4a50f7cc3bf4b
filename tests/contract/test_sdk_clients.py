"""The official MCP Python SDK client, over stdio and Streamable HTTP, in both protocol eras:
lists the tools and checks system_overview's figures against the host."""

from __future__ import annotations

import asyncio
import os
import shutil
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path

import httpx2
import jsonschema
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from conftest import server_env

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def connect(transport: str, binary: Path, http_url: str | None, socket_path: Path | None, token: str | None = None):
    if transport == "stdio":
        params = StdioServerParameters(command=str(binary), args=["serve"], env=server_env())
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            yield session
    elif transport == "http":
        client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
        async with client, streamable_http_client(http_url, http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                yield session
    else:
        tolerate_anyio_unix_close_race()
        client = httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(uds=str(socket_path)))
        async with client, streamable_http_client("http://localhost/mcp", http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                yield session


def tolerate_anyio_unix_close_race() -> None:
    """anyio's raw UNIX socket stream waits for readability with
    `loop.add_reader(sock, future.set_result, None)` and its `aclose()` resolves that future
    itself; when the reader callback is already queued, asyncio then reports
    `InvalidStateError` from `Future.set_result` (anyio/_backends/_asyncio.py,
    `_RawSocketMixin`). That is a client-side race at connection close, seen under CPU load, and
    says nothing about the server: ignore exactly that report, pass every other one on."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        exception = context.get("exception")
        if isinstance(exception, asyncio.InvalidStateError) and "Future.set_result" in repr(context.get("handle")):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


async def open_era(session: ClientSession, era: str) -> str:
    if era == "initialize":
        result = await session.initialize()
        assert result.server_info.name == "systemmanager"
        assert result.capabilities.tools is not None
        return result.protocol_version
    result = await session.discover()
    assert "2026-07-28" in result.supported_versions
    assert "2025-11-25" in result.supported_versions
    return session.protocol_version


TRANSPORTS = ["stdio", "http", "unix"]
ERAS = ["initialize", "discover"]


@pytest.fixture(params=TRANSPORTS)
def transport(request):
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


@pytest.mark.parametrize("era", ERAS)
async def test_lists_tools_and_reports_the_host(transport, era, binary, endpoint, host_truth):
    url, socket_path, token = endpoint
    async with connect(transport, binary, url, socket_path, token) as session:
        version = await open_era(session, era)
        assert version == ("2025-11-25" if era == "initialize" else "2026-07-28")

        listing = await session.list_tools()
        tools = {tool.name: tool for tool in listing.tools}
        assert "system_overview" in tools
        overview_tool = tools["system_overview"]
        assert overview_tool.title == "System overview"
        assert overview_tool.annotations.read_only_hint is True
        assert overview_tool.annotations.destructive_hint is False
        jsonschema.Draft202012Validator.check_schema(overview_tool.input_schema)
        jsonschema.Draft202012Validator.check_schema(overview_tool.output_schema)
        if era == "discover":
            assert listing.ttl_ms and listing.ttl_ms > 0
            assert listing.cache_scope == "private"

        result = await session.call_tool("system_overview", {})
        assert result.is_error is False
        overview = result.structured_content
        jsonschema.validate(overview, overview_tool.output_schema)

        assert overview["memory"]["total_bytes"] == host_truth["mem_total"]
        assert overview["cpu"]["logical_cpus"] == host_truth["nproc"]
        assert overview["hostname"] == host_truth["hostname"]
        assert overview["kernel"] == host_truth["kernel"]
        assert overview["arch"] == host_truth["arch"]

        text = result.content[0].text
        assert text.startswith(f"{host_truth['hostname']}: "), text
        assert "\n" not in text and not text.lstrip().startswith("{"), "a compact line, not JSON"


async def test_overview_figures_agree_with_proc(binary, host_truth):
    """The rest of the overview, each figure against its own independent source."""
    params = StdioServerParameters(command=str(binary), args=["serve"], env=server_env())
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("system_overview", {})
    overview = result.structured_content

    uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert abs(overview["uptime_seconds"] - uptime) < 5

    btime = next(
        int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime ")
    )
    assert overview["boot_time"] == datetime.fromtimestamp(btime, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    os_release = dict(
        line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
    )
    assert overview["os"]["pretty_name"] == os_release["PRETTY_NAME"].strip('"')

    root = os.statvfs("/")
    assert overview["root_filesystem"]["size_bytes"] == root.f_blocks * root.f_frsize
    usage = shutil.disk_usage("/")
    # Free space moves while tests run; the size may not.
    assert abs(overview["root_filesystem"]["available_bytes"] - root.f_bavail * root.f_frsize) < 256 * 1024**2
    assert usage.total == overview["root_filesystem"]["size_bytes"]

    memory = overview["memory"]
    assert memory["used_bytes"] + memory["available_bytes"] == memory["total_bytes"]
    swap_total = next(
        int(line.split()[1]) * 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("SwapTotal:")
    )
    assert overview["swap"]["total_bytes"] == swap_total

    processes = sum(1 for entry in Path("/proc").iterdir() if entry.name.isdigit())
    assert abs(overview["process_count"] - processes) < 20

    load = [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    assert abs(overview["load_average"]["one"] - load[0]) < 1.0

    cores = {
        line.split(":")[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    }
    if cores:
        assert overview["cpu"]["model"] in cores
