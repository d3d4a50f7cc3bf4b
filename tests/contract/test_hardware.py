"""hardware_info through the official client, against lscpu, lsmem, lsblk, lspci and lsusb.

This test machine (a VM) has no temperature sensors and no GPU: the real sysfs must report
none, and a sysfs tree laid out as the kernel lays out hwmon, thermal zones and DRM cards
stands in for a host that has them (`[host] sys` points the server at it)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from groundtruth import command_output
from sdk import stdio_session
from servers import make_config

pytestmark = pytest.mark.anyio


async def hardware(binary, arguments: dict | None = None, *args: str) -> dict:
    async with stdio_session(binary, *args) as session:
        result = await session.call_tool("hardware_info", arguments or {})
    assert result.is_error is False, result.content[0].text
    return result.structured_content


def lscpu() -> dict[str, str]:
    return {row["field"].rstrip(":"): row["data"] for row in json.loads(command_output("lscpu", "-J"))["lscpu"]}


async def test_cpu_and_memory_agree_with_lscpu_and_lsmem(binary):
    info = await hardware(binary, {"sections": ["cpu", "memory"]})
    assert set(info) == {"cpu", "memory"}
    cpu, truth = info["cpu"], lscpu()
    assert cpu["vendor"] == truth["Vendor ID"]
    assert cpu["model"] == truth["Model name"]
    assert cpu["sockets"] == int(truth["Socket(s)"])
    assert cpu["cores"] == int(truth["Core(s) per socket"]) * int(truth["Socket(s)"])
    assert cpu["threads"] == int(truth["CPU(s)"])
    if "CPU family" in truth:
        assert (cpu["family"], cpu["model_number"], cpu["stepping"]) == (
            int(truth["CPU family"]), int(truth["Model"]), int(truth["Stepping"]),
        )
    flags = set(truth.get("Flags", "").split())
    assert cpu["flag_count"] == len(flags)
    assert set(cpu["notable_flags"]) <= flags
    assert cpu["virtualized"] == ("hypervisor" in flags)
    caches = json.loads(command_output("lscpu", "-C", "-J", "-B"))["caches"]
    assert [(c["name"], c["size_bytes"], c["instances"]) for c in cpu["caches"]] == [
        (c["name"], int(c["one-size"]), int(c["all-size"]) // int(c["one-size"])) for c in caches
    ]

    meminfo = Path("/proc/meminfo").read_text()
    assert info["memory"]["total_bytes"] == int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1)) * 1024
    online = re.search(r"Total online memory:\s+(\d+)", command_output("lsmem", "-b", "--summary=only"))
    assert info["memory"]["online_bytes"] == int(online.group(1))


async def test_devices_agree_with_lsblk_lspci_and_lsusb(binary):
    info = await hardware(binary, {"sections": ["block", "pci", "usb"]})
    disks = json.loads(command_output("lsblk", "-b", "-d", "-J", "-o", "NAME,SIZE,ROTA,RM,MODEL,VENDOR"))["blockdevices"]
    assert sorted(d["name"] for d in info["block_devices"]) == sorted(d["name"] for d in disks)
    ours = {d["name"]: d for d in info["block_devices"]}
    for disk in disks:
        mine = ours[disk["name"]]
        assert (mine["size_bytes"], mine["rotational"], mine["removable"]) == (disk["size"], disk["rota"], disk["rm"])
        assert mine.get("model") == ((disk["model"] or "").strip() or None)
        assert mine.get("vendor") == ((disk["vendor"] or "").strip() or None)

    slots = [block for block in command_output("lspci", "-D", "-vmm", "-k").split("\n\n") if block.strip()]
    truth = [dict(line.split(":\t", 1) for line in block.splitlines()) for block in slots]
    numbers = {line.split()[0]: line.split()[2] for line in command_output("lspci", "-D", "-n").splitlines()}
    pci = info["pci_devices"]
    assert [d["address"] for d in pci] == [t["Slot"] for t in truth]
    for device, slot in zip(pci, truth):
        vendor, model = numbers[slot["Slot"]].split(":")
        assert (device["vendor_id"], device["device_id"]) == (f"0x{vendor}", f"0x{model}")
        assert device["class"] == re.sub(r" \[[0-9a-f]{4}\]$", "", slot["Class"])
        assert device["vendor"] == slot["Vendor"]
        # lspci says "Device 0d57" where pci.ids has no name; we leave the name out.
        assert device.get("device") == (None if slot["Device"].startswith("Device ") else slot["Device"])
        assert device.get("driver") == slot.get("Driver")

    listing = subprocess.run(["lsusb"], capture_output=True, text=True)
    usb = [line for line in listing.stdout.splitlines() if line.startswith("Bus ")]
    assert [(d["bus"], d["device"]) for d in info["usb_devices"]] == sorted(
        (int(line.split()[1]), int(line.split()[3].rstrip(":"))) for line in usb
    )


async def test_the_gpus_are_the_display_controllers_lspci_lists(binary):
    """GPUs are PCI display controllers (class 03xx), DRM or not; this VM has none, and no
    sensors: the real sysfs must say so, checked against lspci and /sys."""
    info = await hardware(binary, {"sections": ["sensors", "gpu"]})
    listing = subprocess.run(["lspci", "-Dnmm"], capture_output=True, text=True, check=True)
    display = [line.split()[0] for line in listing.stdout.splitlines() if re.search(r'"03[0-9a-f]{2}"', line)]
    assert [gpu.get("pci_address") for gpu in info["gpus"]] == display
    hwmon = list(Path("/sys/class/hwmon").glob("hwmon*"))
    assert not hwmon, "this test expects a machine without hwmon sensors"
    thermal = list(Path("/sys/class/thermal").glob("thermal_zone*"))
    assert len(info["sensors"]) == len(thermal)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def pci_ids_name(vendor: str, device: str | None = None) -> str:
    """A name straight from the host's pci.ids, read here independently of the server."""
    lines = Path("/usr/share/misc/pci.ids").read_text(errors="replace").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{vendor}  "))
    if device is None:
        return lines[start].split("  ", 1)[1]
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            continue
        if not line.startswith("\t"):
            break
        if line.startswith(f"\t{device}  "):
            return line.split("  ", 1)[1]
    raise AssertionError(f"{vendor}:{device} not in pci.ids")


@pytest.fixture
def fake_sys(tmp_path):
    """A sysfs tree with a coretemp chip, two thermal zones, an AMD and an NVIDIA card."""
    sys_root = tmp_path / "sys"
    chip = sys_root / "class/hwmon/hwmon0"
    for name, value in {
        "name": "coretemp", "temp1_input": "45000", "temp1_label": "Package id 0", "temp1_max": "80000",
        "temp1_crit": "100000", "temp2_input": "43500", "temp2_label": "Core 0",
    }.items():
        write(chip / name, value)
    zone = sys_root / "class/thermal/thermal_zone0"
    for name, value in {
        "type": "x86_pkg_temp", "temp": "46000", "trip_point_0_type": "passive", "trip_point_0_temp": "90000",
        "trip_point_1_type": "critical", "trip_point_1_temp": "105000",
    }.items():
        write(zone / name, value)
    write(sys_root / "class/thermal/thermal_zone1/type", "coretemp")  # the hwmon chip already has it
    write(sys_root / "class/thermal/thermal_zone1/temp", "45000")
    # As sysfs lays PCI devices out: the device under devices/, a link under bus/pci/devices/.
    # The AMD card has a DRM card; the NVIDIA H200 has none (no nvidia-drm, as on datacenter
    # hosts); the network controller is no GPU.
    for address, (klass, vendor, device, driver) in {
        "0000:03:00.0": ("0x030000", "0x1002", "0x73bf", "amdgpu"),
        "0000:65:00.0": ("0x030200", "0x10de", "0x2335", "nvidia"),
        "0000:66:00.0": ("0x020000", "0x8086", "0x1572", "i40e"),
    }.items():
        pci = sys_root / "devices/pci0000:00" / address
        write(pci / "class", klass)
        write(pci / "vendor", vendor)
        write(pci / "device", device)
        (sys_root / "bus/pci/drivers" / driver).mkdir(parents=True, exist_ok=True)
        (pci / "driver").symlink_to(sys_root / "bus/pci/drivers" / driver)
        (sys_root / "bus/pci/devices").mkdir(parents=True, exist_ok=True)
        (sys_root / "bus/pci/devices" / address).symlink_to(pci)
    amd_card = sys_root / "devices/pci0000:00/0000:03:00.0/drm/card0"
    amd_card.mkdir(parents=True)
    (amd_card / "device").symlink_to(sys_root / "devices/pci0000:00/0000:03:00.0")
    (sys_root / "class/drm").mkdir(parents=True)
    (sys_root / "class/drm/card0").symlink_to(amd_card)
    amd = sys_root / "devices/pci0000:00/0000:03:00.0"
    write(amd / "mem_info_vram_total", str(16 * 1024**3))
    write(amd / "mem_info_vram_used", str(1024**3))
    write(amd / "gpu_busy_percent", "37")
    write(amd / "hwmon/hwmon3/temp1_input", "52000")
    (sys_root / "class/drm/card0-HDMI-A-1").mkdir()  # a connector, not a card
    return sys_root


async def test_sensors_and_gpus_of_a_host_that_has_them(binary, fake_sys):
    config = make_config(f'[host]\nsys = "{fake_sys}"\n')
    info = await hardware(binary, {"sections": ["sensors", "gpu"]}, "--config", str(config))
    assert info["sensors"] == [
        {"chip": "coretemp", "label": "Package id 0", "celsius": 45.0, "high_celsius": 80.0, "critical_celsius": 100.0},
        {"chip": "coretemp", "label": "Core 0", "celsius": 43.5},
        {"chip": "thermal_zone0", "label": "x86_pkg_temp", "celsius": 46.0, "critical_celsius": 105.0},
    ]
    amd, nvidia = info["gpus"]
    assert amd == {
        "card": "card0", "pci_address": "0000:03:00.0", "vendor_id": "0x1002", "device_id": "0x73bf",
        "vendor": pci_ids_name("1002"), "model": pci_ids_name("1002", "73bf"), "driver": "amdgpu",
        "class": "VGA compatible controller",
        "memory_total_bytes": 16 * 1024**3, "memory_used_bytes": 1024**3, "busy_percent": 37,
        "temperature_celsius": 52.0, "source": "sysfs",
    }
    # Found without DRM, by its PCI class; named by the host's pci.ids or the built-in one.
    assert "card" not in nvidia
    assert (nvidia["pci_address"], nvidia["vendor_id"], nvidia["device_id"], nvidia["driver"]) == (
        "0000:65:00.0", "0x10de", "0x2335", "nvidia")
    assert nvidia["class"] == "3D controller" and "H200" in nvidia["model"]
    # This machine has no NVIDIA driver: one note says what was looked for, nothing fails.
    assert not Path("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1").exists()
    [note] = info["notes"]
    assert note.startswith("NVIDIA's NVML library is not installed (looked for /usr/lib/x86_64-linux-gnu/"), note
    assert "/usr/local/nvidia/lib64/libnvidia-ml.so.1, libnvidia-ml.so.1)" in note


async def test_a_host_without_pci_ids_gets_names_from_the_built_in_database(binary, fake_sys, tmp_path):
    rootfs = tmp_path / "minimal-root"
    (rootfs / "etc").mkdir(parents=True)
    config = make_config(f'[host]\nsys = "{fake_sys}"\nrootfs = "{rootfs}"\n')
    info = await hardware(binary, {"sections": ["gpu"]}, "--config", str(config))
    nvidia = info["gpus"][1]
    assert (nvidia["vendor"], nvidia["model"]) == ("NVIDIA Corporation", "GH100 [H200 SXM 141GB]")
    assert any("database built into this binary" in note for note in info["notes"]), info["notes"]


async def test_gpu_processes_without_nvidia_says_what_is_missing(binary):
    async with stdio_session(binary) as session:
        result = await session.call_tool("gpu_processes", {})
    assert result.is_error is False
    assert result.structured_content["gpus"] == []
    [note] = result.structured_content["notes"]
    assert note.startswith("NVIDIA's NVML library is not installed"), note


async def test_an_unknown_section_is_refused_with_the_valid_ones(binary):
    async with stdio_session(binary) as session:
        result = await session.call_tool("hardware_info", {"sections": ["cpu", "flux_capacitor"]})
    assert result.is_error is True
    text = result.content[0].text
    assert "flux_capacitor" in text and "`cpu`, `memory`, `block`, `pci`, `usb`, `sensors`, `gpu`" in text
