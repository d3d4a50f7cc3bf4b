"""cpu_usage and memory_usage through the official client, against /proc, nproc, free and a
known load: a busy loop pinned to one CPU."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from groundtruth import command_output
from sdk import stdio_session

pytestmark = pytest.mark.anyio


def meminfo() -> dict[str, int]:
    return {
        line.split(":")[0]: int(line.split()[1]) * 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
    }


def online_cpus() -> list[int]:
    cpus: list[int] = []
    for part in Path("/sys/devices/system/cpu/online").read_text().strip().split(","):
        start, _, end = part.partition("-")
        cpus.extend(range(int(start), int(end or start) + 1))
    return cpus


def busy_since_boot() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    total = sum(fields)
    return 100.0 * (total - idle - iowait) / total


@pytest.fixture
def spinner():
    """A busy loop pinned to the last online CPU: a load we know."""
    cpu = online_cpus()[-1]
    code = f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass\n"
    process = subprocess.Popen([sys.executable, "-c", code])
    yield cpu
    process.kill()
    process.wait()


async def test_cpu_usage_first_answers_since_boot_then_over_an_interval(binary):
    async with stdio_session(binary) as session:
        first = (await session.call_tool("cpu_usage", {})).structured_content
        expected_busy = busy_since_boot()
        assert first["basis"] == "since_boot" and "window_seconds" not in first
        assert abs(first["overall"]["busy_percent"] - expected_busy) < 1.0
        assert first["logical_cpus"] == int(command_output("nproc"))
        assert [core["cpu"] for core in first["cores"]] == online_cpus()

        # The sampler reads every second (sampler.interval_ms): by now there is an interval.
        await asyncio.sleep(1.5)
        second = (await session.call_tool("cpu_usage", {})).structured_content
        assert second["basis"] == "interval"
        assert 0.5 <= second["window_seconds"] <= 2.5
        for shares in [second["overall"], *second["cores"]]:
            parts = shares["busy_percent"] + shares["iowait_percent"] + shares["idle_percent"]
            assert abs(parts - 100.0) <= 0.3, shares
            assert shares["user_percent"] + shares["system_percent"] <= shares["busy_percent"] + 0.3

        load = [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
        assert abs(second["load_average"]["one"] - load[0]) < 0.5
        assert second["load_average"]["fifteen"] == pytest.approx(load[2], abs=0.1)
        assert second["tasks_running"] >= 1
        if Path("/proc/pressure/cpu").exists():
            assert "full" not in second["pressure"]
            avg300 = float(Path("/proc/pressure/cpu").read_text().split()[3].split("=")[1])
            assert abs(second["pressure"]["some"]["avg300"] - avg300) < 1.0

        compact = (await session.call_tool("cpu_usage", {"per_core": False})).structured_content
        assert compact["cores"] == [] and compact["logical_cpus"] == len(online_cpus())


async def test_cpu_usage_sees_a_busy_loop_on_its_cpu(binary, spinner):
    async with stdio_session(binary) as session:
        await session.call_tool("cpu_usage", {})
        # The sampler reads every second (sampler.interval_ms): by now its last interval lay
        # wholly within the spin.
        await asyncio.sleep(2.2)
        result = await session.call_tool("cpu_usage", {})
    usage = result.structured_content
    assert usage["basis"] == "interval"
    core = next(core for core in usage["cores"] if core["cpu"] == spinner)
    assert core["busy_percent"] >= 80.0, core
    assert core["user_percent"] >= 70.0, core
    assert usage["overall"]["busy_percent"] >= 80.0 / usage["logical_cpus"]
    text = result.content[0].text
    assert text.startswith("CPU ") and f"\ncpu{spinner} " in text


async def test_memory_usage_agrees_with_meminfo_and_free(binary):
    async with stdio_session(binary) as session:
        result = await session.call_tool("memory_usage", {})
    memory = result.structured_content
    truth = meminfo()
    slack = 128 * 1024**2  # other processes allocate while the test runs
    assert memory["total_bytes"] == truth["MemTotal"]
    assert abs(memory["available_bytes"] - truth["MemAvailable"]) < slack
    assert abs(memory["free_bytes"] - truth["MemFree"]) < slack
    assert memory["used_bytes"] + memory["available_bytes"] == memory["total_bytes"]
    assert memory["used_percent"] == pytest.approx(100 * memory["used_bytes"] / memory["total_bytes"], abs=0.1)
    assert memory["swap"]["total_bytes"] == truth["SwapTotal"]
    assert abs(memory["swap"]["used_bytes"] - (truth["SwapTotal"] - truth["SwapFree"])) < slack

    # free(1), from procps: its buff/cache column is buffers + cache + reclaimable slab.
    row = command_output("free", "-b").splitlines()[1].split()
    free_total, free_shared, free_buff_cache = int(row[1]), int(row[4]), int(row[5])
    assert memory["total_bytes"] == free_total
    assert abs(memory["buffers_bytes"] + memory["cached_bytes"] - free_buff_cache) < slack
    assert abs(memory["shared_bytes"] - free_shared) < slack

    assert ("pressure" in memory) == Path("/proc/pressure/memory").exists()
    if "pressure" in memory:
        assert set(memory["pressure"]) == {"some", "full"}
    text = result.content[0].text
    assert text.startswith("memory ") and "\n" not in text
