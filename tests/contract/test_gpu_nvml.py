"""NVML's answers as the server reads them, without a GPU: tests/contract/fixtures/fake_nvml.c,
built here into a libnvidia-ml.so.1 with two H200s, is loaded by the server through the dynamic
loader exactly as the driver's library is. The sysfs tree shows one H200 at 0000:65:00.0 (no DRM,
as on datacenter hosts); NVML also reports one at 0000:b1:00.0 that sysfs does not show."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from policy import require
from sdk import call, stdio_session
from servers import make_config

pytestmark = pytest.mark.anyio

FAKE = Path(__file__).parent / "fixtures" / "fake_nvml.c"
GIB = 1 << 30


@pytest.fixture(scope="module")
def fake_nvml(tmp_path_factory) -> Path:
    require(shutil.which("cc") is not None, "a C compiler (gcc) to build the stand-in NVML")
    directory = tmp_path_factory.mktemp("fake-nvml")
    subprocess.run(["cc", "-shared", "-fPIC", "-Wall", "-Werror", "-o", str(directory / "libnvidia-ml.so.1"), str(FAKE)],
                   check=True, capture_output=True)
    return directory


@pytest.fixture
def h200_host(tmp_path) -> Path:
    sys_root = tmp_path / "sys"
    pci = sys_root / "devices/pci0000:00/0000:65:00.0"
    pci.mkdir(parents=True)
    for name, value in {"class": "0x030200", "vendor": "0x10de", "device": "0x2335"}.items():
        (pci / name).write_text(value + "\n")
    (sys_root / "bus/pci/drivers/nvidia").mkdir(parents=True)
    (pci / "driver").symlink_to(sys_root / "bus/pci/drivers/nvidia")
    (sys_root / "bus/pci/devices").mkdir(parents=True)
    (sys_root / "bus/pci/devices/0000:65:00.0").symlink_to(pci)
    return make_config(f'[host]\nsys = "{sys_root}"\n')


def session(binary: Path, config: Path, library: Path, **extra: str):
    """A stdio session with the server started under `env`, so it finds the stand-in library."""
    variables = [f"{name}={value}" for name, value in {"LD_LIBRARY_PATH": str(library), **extra}.items()]
    return stdio_session(binary, "--config", str(config), wrapper=["env", *variables])


async def test_nvml_facts_join_the_gpu_sysfs_found(binary, fake_nvml, h200_host):
    async with session(binary, h200_host, fake_nvml) as mcp:
        info = await call(mcp, "hardware_info", {"sections": ["gpu"]})
        text = (await mcp.call_tool("hardware_info", {"sections": ["gpu"]})).content[0].text
    seen, only_nvml = info["gpus"]
    assert seen["pci_address"] == "0000:65:00.0" and seen["source"] == "sysfs+nvml"
    assert (seen["model"], seen["uuid"], seen["driver"]) == ("NVIDIA H200", "GPU-00000000-fake", "nvidia")
    assert (seen["memory_total_bytes"], seen["memory_used_bytes"]) == (150754820096, 3 * GIB)
    assert (seen["busy_percent"], seen["memory_busy_percent"], seen["temperature_celsius"]) == (42, 7, 35.0)
    assert (seen["power_watts"], seen["power_limit_watts"]) == (76.123, 700.0)
    assert seen["clocks"] == {"graphics_mhz": 1980, "sm_mhz": 1980, "memory_mhz": 3201,
                              "graphics_max_mhz": 1980, "memory_max_mhz": 3201}
    assert (seen["performance_state"], seen["persistence_mode"]) == ("P0", True)
    assert seen["throttle_reasons"] == ["gpu_idle", "sw_power_cap"]
    assert "fan_percent" not in seen  # the H200 has no fans
    assert (only_nvml["pci_address"], only_nvml["source"], only_nvml["vendor"]) == ("0000:b1:00.0", "nvml", "NVIDIA Corporation")
    assert info["nvidia"] == {"driver_version": "580.95.05", "cuda_version": "13.0",
                              "library": "libnvidia-ml.so.1 (through the dynamic loader)"}
    assert "notes" not in info
    assert "gpu 0000:65:00.0 NVIDIA H200, memory 3.00 GiB of 140 GiB, 42% busy, 35°C, 76 W of 700 W, P0 [nvidia]" in text, text


async def test_what_is_on_each_gpu_and_the_process_tools_gpu_memory(binary, fake_nvml, h200_host):
    me, init = os.getpid(), 1
    async with session(binary, h200_host, fake_nvml, SM_NVML_PID_BOTH=str(me), SM_NVML_PID_UNKNOWN=str(init)) as mcp:
        on_gpus = await call(mcp, "gpu_processes")
        mine = await call(mcp, "process_get", {"pid": me})
        first = await call(mcp, "process_get", {"pid": init})
        listed = await call(mcp, "process_list", {"sort": "pid", "limit": 500})
    gpu0, gpu1 = on_gpus["gpus"]
    assert (gpu0["pci_address"], gpu0["model"], gpu0["memory_used_bytes"]) == ("0000:65:00.0", "NVIDIA H200", 3 * GIB)
    rows = sorted((p["pid"], p["kind"], p.get("gpu_memory_bytes")) for p in gpu0["processes"])
    assert rows == sorted([(me, "compute", GIB), (me, "graphics", GIB), (init, "compute", None)])
    assert [(p["pid"], p["gpu_memory_bytes"]) for p in gpu1["processes"]] == [(me, 2 * GIB)]
    assert all("gpu_instance_id" not in p for p in gpu0["processes"])  # not MIG
    named = {p["pid"]: p for p in gpu0["processes"]}
    assert named[me]["name"] == Path(f"/proc/{me}/comm").read_text().strip()
    # A process in both lists on one GPU holds its memory once: 1 GiB there, 2 GiB on the other.
    assert mine["memory"]["gpu_bytes"] == 3 * GIB
    # On a GPU, its memory unknown: no figure rather than a wrong one.
    assert "gpu_bytes" not in first["memory"]
    by_pid = {row["pid"]: row for row in listed["processes"]}
    assert by_pid[me]["gpu_memory_bytes"] == 3 * GIB
    assert "gpu_memory_bytes" not in by_pid[init]
    assert not [pid for pid, row in by_pid.items() if pid != me and "gpu_memory_bytes" in row]


async def test_a_driver_that_stops_answering_is_a_note(binary, fake_nvml, h200_host):
    async with session(binary, h200_host, fake_nvml, SM_NVML_BROKEN="1") as mcp:
        info = await call(mcp, "hardware_info", {"sections": ["gpu"]})
        on_gpus = await call(mcp, "gpu_processes")
    [gpu] = info["gpus"]
    assert gpu["source"] == "sysfs" and "H200" in gpu["model"]
    [note] = info["notes"]
    assert "does not answer" in note and "version mismatch" in note, note
    assert on_gpus["gpus"] == [] and "version mismatch" in on_gpus["notes"][0]
