"""The official MCP Python SDK client, over stdio and Streamable HTTP, in both protocol eras:
lists the tools and checks system_overview's figures against the host."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest

from catalogue import READ_TOOLS
from policy import require
from sdk import ERAS, connect, open_era, stdio_session

pytestmark = pytest.mark.anyio


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
    async with stdio_session(binary) as session:
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


@pytest.fixture(scope="module")
def running_container():
    """A running container and a volume for the Docker tools that name one."""
    require(shutil.which("docker") is not None, "the docker CLI (scripts/testbed/docker.sh installs it)")
    image = os.environ.get("SM_DOCKER_IMAGE", "sm-busybox:test")
    started = subprocess.run(["docker", "run", "-d", "--rm", image, "sleep", "600"], capture_output=True, text=True)
    require(started.returncode == 0, f"a running dockerd with {image} (scripts/testbed/docker.sh): {started.stderr}")
    container = started.stdout.strip()
    volume = subprocess.run(["docker", "volume", "create"], capture_output=True, text=True).stdout.strip()
    yield container, volume
    subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    subprocess.run(["docker", "volume", "rm", volume], capture_output=True)


async def test_every_read_tool_answers_within_its_schema(transport, binary, endpoint, running_container):
    """Each read tool, over each transport: a structured answer its output schema accepts, and
    a compact text rendering beside it."""
    running_container, volume = running_container
    arguments = {
        "process_get": {"pid": os.getpid()},
        "process_tree": {"pid": os.getpid()},
        "docker_container_inspect": {"container": running_container},
        "docker_container_logs": {"container": running_container},
        "docker_container_top": {"container": running_container},
        "docker_image_inspect": {"image": os.environ.get("SM_DOCKER_IMAGE", "sm-busybox:test")},
        "docker_network_inspect": {"network": "bridge"},
        "docker_volume_inspect": {"volume": volume},
    }
    url, socket_path, token = endpoint
    async with connect(transport, binary, url, socket_path, token) as session:
        await session.initialize()
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert [name for name, tool in tools.items() if tool.annotations.read_only_hint] == READ_TOOLS
        for name in READ_TOOLS:
            result = await session.call_tool(name, arguments.get(name, {}))
            assert result.is_error is False, f"{name}: {result.content[0].text}"
            jsonschema.validate(result.structured_content, tools[name].output_schema)
            text = result.content[0].text
            assert text and not text.lstrip().startswith("{"), f"{name}: a rendering, not JSON"
