"""disk_usage and disk_io through the official client, against df -P, df -Pi, /sys/block and
subjects the tests make: a tmpfs of known size with a known file, a bind mount of it, and
direct writes to a real disk."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from pathlib import Path

import pytest

from groundtruth import command_output
from policy import require
from sdk import stdio_session

pytestmark = pytest.mark.anyio
MiB = 1024**2


def df_rows(*options: str) -> dict[str, list[str]]:
    """`df -P` rows by mount point (the last column; our test mounts have no spaces)."""
    lines = command_output("df", "-P", *options).splitlines()[1:]
    return {line.split()[-1]: line.split() for line in lines}


async def disk_usage(binary: Path, **arguments) -> dict:
    async with stdio_session(binary) as session:
        result = await session.call_tool("disk_usage", arguments)
    assert result.is_error is False, result.content[0].text
    return result.structured_content


@pytest.fixture
def tmpfs(tmp_path):
    """A 32 MiB tmpfs named `sm-test-fs` holding an 8 MiB file, and a bind mount of it."""
    require(os.geteuid() == 0, "mounting a tmpfs needs root")
    mount_point, bind_point = tmp_path / "fs", tmp_path / "bind"
    mount_point.mkdir()
    bind_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "sm-test-fs", str(mount_point)], check=True)
    try:
        (mount_point / "filler").write_bytes(os.urandom(8 * MiB))
        subprocess.run(["mount", "--bind", str(mount_point), str(bind_point)], check=True)
        yield mount_point, bind_point
    finally:
        subprocess.run(["umount", str(bind_point)], check=False)
        subprocess.run(["umount", str(mount_point)], check=True)


async def test_disk_usage_lists_what_df_lists(binary):
    df_before = df_rows()
    usage = await disk_usage(binary)
    ours = {fs["mount_point"]: fs for fs in usage["filesystems"]}
    df = df_rows()
    # Another suite on the machine may mount and unmount meanwhile: what df listed both before
    # and after is listed by us, and we list nothing df listed at neither time.
    steady = set(df) & set(df_before)
    assert steady <= set(ours) <= set(df) | set(df_before), "the same filesystems as df -P, pseudo and bind mounts hidden"
    inodes = df_rows("-i")
    for mount_point, row in df.items():
        if mount_point not in steady or mount_point not in inodes:
            continue
        fs = ours[mount_point]
        assert fs["device"] == row[0]
        assert abs(fs["size_bytes"] // 1024 - int(row[1])) <= 1
        assert abs(fs["used_bytes"] - int(row[2]) * 1024) < 64 * MiB
        assert abs(fs["available_bytes"] - int(row[3]) * 1024) < 64 * MiB
        if int(inodes[mount_point][1]) > 0:
            assert fs["inodes"]["total"] == int(inodes[mount_point][1])
    assert usage["hidden"] > 0


async def test_a_known_tmpfs_is_measured_and_its_bind_mount_hidden(binary, tmpfs):
    mount_point, bind_point = tmpfs
    usage = await disk_usage(binary)
    ours = {fs["mount_point"]: fs for fs in usage["filesystems"]}
    fs = ours[str(mount_point)]
    assert (fs["device"], fs["fs_type"], fs["read_only"]) == ("sm-test-fs", "tmpfs", False)
    assert fs["size_bytes"] == 32 * MiB
    assert 8 * MiB <= fs["used_bytes"] < 9 * MiB
    assert fs["used_bytes"] + fs["available_bytes"] == 32 * MiB
    assert fs["used_percent"] == pytest.approx(100 * fs["used_bytes"] / (32 * MiB), abs=0.1)
    assert int(df_rows()[str(mount_point)][2]) * 1024 == fs["used_bytes"]
    assert str(bind_point) not in ours, "a bind mount of a listed device is hidden"

    everything = await disk_usage(binary, include_pseudo=True)
    points = {fs["mount_point"]: fs for fs in everything["filesystems"]}
    assert str(bind_point) in points and points["/proc"]["fs_type"] == "proc"
    assert everything["hidden"] == 0

    one = await disk_usage(binary, path=str(mount_point / "filler"))
    assert [fs["mount_point"] for fs in one["filesystems"]] == [str(mount_point)]


async def test_disk_usage_refuses_a_relative_path(binary):
    async with stdio_session(binary) as session:
        result = await session.call_tool("disk_usage", {"path": "etc/passwd"})
    assert result.is_error is True
    assert result.content[0].text == "path `etc/passwd` is not absolute; give a path starting with /"


def block_device_of(path: Path) -> str | None:
    """The kernel name of the block device holding `path`, from /sys/dev/block."""
    device = os.stat(path).st_dev
    link = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}")
    return link.resolve().name if link.exists() else None


def sectors(device: str) -> tuple[int, int]:
    """Sectors read and written since boot, from /sys/class/block/DEVICE/stat."""
    fields = Path(f"/sys/class/block/{device}/stat").read_text().split()
    return int(fields[2]), int(fields[6])


@pytest.fixture
def disk_dir(tmp_path):
    """A directory on a real block device, where direct writes reach the disk."""
    for candidate in [tmp_path, Path("/var/tmp"), Path(__file__).resolve().parent]:
        device = block_device_of(candidate)
        if device:
            return candidate, device
    require(False, "no directory on a block device to write to")


async def test_disk_io_sees_direct_writes_and_agrees_with_sysfs(binary, disk_dir):
    directory, device = disk_dir
    target = directory / "sm-io-test"
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            subprocess.run(
                ["dd", "if=/dev/zero", f"of={target}", "bs=1M", "count=16", "oflag=direct", "status=none"],
                check=True,
            )

    async with stdio_session(binary) as session:
        first = (await session.call_tool("disk_io", {"device": device})).structured_content
        assert first["basis"] == "since_boot"
        writer = threading.Thread(target=write)
        writer.start()
        try:
            # The sampler reads every second (sampler.interval_ms): by now its last interval lay
            # wholly within the writes.
            await asyncio.sleep(2.2)
            before = sectors(device)
            result = await session.call_tool("disk_io", {"device": device})
            after = sectors(device)
        finally:
            stop.set()
            writer.join()
            target.unlink(missing_ok=True)
    answer = result.structured_content
    assert answer["basis"] == "interval" and 0.5 <= answer["window_seconds"] <= 2.5
    [stats] = answer["devices"]
    assert stats["device"] == device
    assert stats["write_bytes_per_second"] >= 1 * MiB, stats
    assert stats["writes_per_second"] > 0 and 0 < stats["utilization_percent"] <= 100
    # The totals are a reading taken within the last interval: at most what sysfs said after.
    assert stats["written_bytes"] <= after[1] * 512
    assert stats["written_bytes"] >= before[1] * 512 - 2 * 1024 * MiB
    assert stats["read_bytes"] <= after[0] * 512


async def test_disk_io_hides_idle_devices_and_names_the_known_ones(binary):
    async with stdio_session(binary) as session:
        default = (await session.call_tool("disk_io", {})).structured_content
        everything = (
            await session.call_tool("disk_io", {"include_idle": True, "include_partitions": True})
        ).structured_content
        unknown = await session.call_tool("disk_io", {"device": "sm-no-such-disk"})
    sysfs = {entry.name for entry in Path("/sys/block").iterdir()}
    assert {device["device"] for device in default["devices"]} <= sysfs
    assert all(device["read_bytes"] + device["written_bytes"] > 0 for device in default["devices"])
    assert {device["device"] for device in everything["devices"]} == {
        line.split()[2] for line in Path("/proc/diskstats").read_text().splitlines()
    }
    assert everything["hidden"] == 0
    assert len(default["devices"]) + default["hidden"] == len(everything["devices"])
    assert unknown.is_error is True
    text = unknown.content[0].text
    assert text.startswith("no block device is named `sm-no-such-disk`; the host has: ")
    assert all(name in text for name in sysfs)
