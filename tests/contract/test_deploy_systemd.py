"""The hardened systemd unit (packaging/systemmanager.service) in a real systemd: a Debian 12
container running systemd 252 as PID 1 (scripts/testbed/systemd.sh builds the image). The unit
is installed as shipped, with a service user; the server's unix socket is the container's
/run/systemmanager, shared with the test, which talks MCP to it with the official client. Every
fact is checked with systemctl, journalctl and systemd-analyze in the same container."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from sdk import tolerate_anyio_unix_close_race
from servers import TOKEN_RELOAD_WAIT
from test_services import Box, start_systemd_container
from waiting import wait_until

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "packaging" / "systemmanager.service"
NODE_EXPORTER_UNIT = Path(__file__).parent / "fixtures" / "node_exporter.service"
INSIDE = "/usr/local/bin/systemmanager"
DROP_INS = "/etc/systemd/system/systemmanager.service.d"


@pytest.fixture(scope="module")
def unit_box(tmp_path_factory, binary):
    # The unit's RuntimeDirectory=, where its socket is, seen from the test too.
    runtime = tmp_path_factory.mktemp("unit-runtime")
    box = start_systemd_container("sm-unit", runtime, "/run/systemmanager")
    name = box.name
    try:
        # scripts/install.sh as a user runs it: the binary, the unit, the user, the config, a token.
        box.run("mkdir", "-p", "/opt/sm/scripts")
        subprocess.run(["docker", "cp", str(binary), f"{name}:/opt/sm/systemmanager"], check=True, capture_output=True)
        subprocess.run(["docker", "cp", str(ROOT / "scripts" / "install.sh"), f"{name}:/opt/sm/scripts/install.sh"], check=True, capture_output=True)
        subprocess.run(["docker", "cp", str(ROOT / "packaging"), f"{name}:/opt/sm/packaging"], check=True, capture_output=True)
        installed = subprocess.run(["docker", "exec", name, "/opt/sm/scripts/install.sh", "--binary", "/opt/sm/systemmanager"],
                                   capture_output=True, text=True, timeout=120)
        assert installed.returncode == 0, installed.stderr
        box.token = installed.stdout.strip()
        box.install_log = installed.stderr
        subprocess.run(["docker", "cp", str(NODE_EXPORTER_UNIT), f"{name}:/etc/systemd/system/node_exporter.service"], check=True, capture_output=True)
        box.run("systemctl", "daemon-reload")
        yield box
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        shutil.rmtree(runtime, ignore_errors=True)


def drop_in(box: Box, name: str, text: str | None) -> None:
    """Writes (or, with None, removes) a drop-in and reloads systemd."""
    if text is None:
        box.run("rm", "-f", f"{DROP_INS}/{name}")
    else:
        box.run("mkdir", "-p", DROP_INS)
        subprocess.run(["docker", "exec", "-i", box.name, "sh", "-c", f"cat > {DROP_INS}/{name}"], input=text, text=True, check=True)
    box.run("systemctl", "daemon-reload")


@asynccontextmanager
async def socket_session(socket: Path, token: str):
    tolerate_anyio_unix_close_race()
    client = httpx2.AsyncClient(
        transport=httpx2.AsyncHTTPTransport(uds=str(socket)), headers={"Authorization": f"Bearer {token}"}
    )
    async with client, streamable_http_client("http://localhost/mcp", http_client=client) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


def test_install_sh_installs_enables_and_starts_the_unit(unit_box):
    box = unit_box
    assert box.token.startswith("sm") and "\n" not in box.token, box.token
    shown = box.show("systemmanager.service", "ActiveState", "UnitFileState", "FragmentPath")
    assert shown == {"ActiveState": "active", "UnitFileState": "enabled",
                     "FragmentPath": "/etc/systemd/system/systemmanager.service"}, shown
    assert box.run("stat", "-c", "%U %a", "/var/lib/systemmanager").split() == ["systemmanager", "700"]
    assert box.run(INSIDE, "config", "check").startswith("# configuration OK; source: /etc/systemmanager/config.toml")
    # Run again: the tokens are kept (no second token), the service still runs.
    again = subprocess.run(["docker", "exec", box.name, "/opt/sm/scripts/install.sh", "--binary", "/opt/sm/systemmanager"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout == "", again
    assert box.run(INSIDE, "token", "list").count(" active") == 1


def test_install_sh_checks_the_token_role_before_installing(unit_box):
    box = unit_box
    refused = subprocess.run(["docker", "exec", box.name, "/opt/sm/scripts/install.sh", "--binary",
                              "/opt/sm/systemmanager", "--token-role", "emperor"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "--token-role emperor" in refused.stderr and "no role is named" in refused.stderr, refused.stderr
    assert "==> binary" not in refused.stderr  # nothing was installed first
    assert box.run(INSIDE, "token", "list").count(" active") == 1


async def test_the_unit_is_active_only_once_ready_and_serves_mcp_on_its_socket(unit_box):
    box = unit_box
    # Type=notify: `systemctl restart` returns once the server said READY=1, after binding.
    box.run("systemctl", "restart", "systemmanager.service")
    shown = box.show("systemmanager.service", "ActiveState", "SubState", "Type", "StatusText", "MainPID", "User")
    assert (shown["ActiveState"], shown["SubState"], shown["Type"]) == ("active", "running", "notify"), shown
    assert shown["StatusText"] == "serving MCP on unix:/run/systemmanager/mcp.sock", shown
    assert (unit_box.shared / "mcp.sock").is_socket()
    # Root creates tokens with the plain command; the file belongs to the service's user.
    token = box.run(INSIDE, "token", "create", "--name", "deploy-test", "--role", "viewer").strip()
    owner = box.run("stat", "-c", "%U %a", "/var/lib/systemmanager/tokens.json").split()
    assert owner == ["systemmanager", "600"], owner
    # A running server sees a new token within a second (it rereads the file at most that often).
    await asyncio.sleep(TOKEN_RELOAD_WAIT)
    async with socket_session(unit_box.shared / "mcp.sock", token) as session:
        overview = await session.call_tool("system_overview", {})
        assert not overview.is_error, overview
    hostname = box.run("hostname").strip()
    assert overview.structured_content["hostname"] == hostname
    # The process runs as the unit's user with no capabilities.
    status = box.run("cat", f"/proc/{shown['MainPID']}/status")
    assert re.search(r"^CapEff:\s+0+$", status, re.M), status
    assert box.run("ps", "-o", "user=", "-p", shown["MainPID"]).strip() == "systemmanager"
    # Logs reach journald natively: the call's fields are journal fields, not one blob.
    def logged():
        entries = box.journal("-u", "systemmanager.service")
        return [e for e in entries if e.get("TOOL") == "system_overview"]

    wait_until(lambda: bool(logged()), timeout=10)
    entry = logged()[0]
    assert entry["OUTCOME"] == "ok" and entry["SYSLOG_IDENTIFIER"] == "systemmanager", entry
    # The audit log is in the StateDirectory=, with the call in it.
    audit = box.run("cat", "/var/lib/systemmanager/audit.jsonl")
    assert '"tool":"system_overview"' in audit


async def test_a_server_that_cannot_start_never_becomes_active(unit_box):
    box = unit_box
    box.run("systemctl", "stop", "systemmanager.service")
    # An audit log it cannot write: the server refuses to serve, so it never says READY.
    drop_in(box, "broken.conf", "[Service]\nEnvironment=SYSTEMMANAGER_CONFIG=/etc/sm-broken.toml\n")
    subprocess.run(["docker", "exec", "-i", box.name, "sh", "-c", "cat > /etc/sm-broken.toml"],
                   input='[audit]\npath = "/proc/sm-no-such/audit.jsonl"\n', text=True, check=True)
    try:
        started = subprocess.run(["docker", "exec", box.name, "systemctl", "start", "systemmanager.service"],
                                 capture_output=True, text=True, timeout=60)
        shown = box.show("systemmanager.service", "ActiveState", "Result", "ActiveEnterTimestampMonotonic")
        assert started.returncode != 0
        assert shown["ActiveState"] in ("failed", "activating", "inactive") and shown["Result"] == "exit-code", shown
    finally:
        drop_in(box, "broken.conf", None)
        box.run("systemctl", "reset-failed", "systemmanager.service", check=False)


async def test_the_watchdog_restarts_a_frozen_server(unit_box):
    box = unit_box
    # The shipped WatchdogSec=30s, shortened so the test waits seconds, not a minute.
    drop_in(box, "watchdog.conf", "[Service]\nWatchdogSec=2s\n")
    try:
        box.run("systemctl", "restart", "systemmanager.service")
        frozen = box.show("systemmanager.service", "MainPID", "WatchdogUSec")
        assert frozen["WatchdogUSec"] == "2s", frozen
        # Running, it keeps pinging: still the same process after three watchdog periods.
        await asyncio.sleep(6)
        assert box.show("systemmanager.service", "MainPID")["MainPID"] == frozen["MainPID"]
        box.run("kill", "-STOP", frozen["MainPID"])

        def replaced():
            now = box.show("systemmanager.service", "MainPID", "ActiveState")
            return now["ActiveState"] == "active" and now["MainPID"] not in ("0", frozen["MainPID"])

        wait_until(replaced, timeout=30, interval=0.5)
        messages = [e.get("MESSAGE", "") for e in box.journal("-u", "systemmanager.service")]
        assert any("Watchdog timeout" in m for m in messages), messages[-10:]
    finally:
        drop_in(box, "watchdog.conf", None)
        box.run("systemctl", "restart", "systemmanager.service")


def exposure(box: Box, unit: str) -> float:
    text = box.run("systemd-analyze", "security", "--no-pager", unit)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", text)
    assert found, text[-500:]
    return float(found.group(1))


def test_the_unit_scores_better_than_node_exporters_example(unit_box):
    """`systemd-analyze security`: lower is better (0 safe, 10 exposed). docs/deploy.md quotes
    both figures from this same measurement."""
    ours, theirs = exposure(unit_box, "systemmanager.service"), exposure(unit_box, "node_exporter.service")
    print(f"systemd-analyze security: systemmanager.service {ours}, node_exporter.service {theirs}")
    assert ours < theirs, (ours, theirs)
    assert ours <= 2.5, ours


def test_the_drop_ins_load_and_grant_what_they_say(unit_box):
    box = unit_box
    box.run("groupadd", "--system", "docker", check=False)
    drop_ins = ROOT / "packaging" / "systemmanager.service.d"
    try:
        for conf in sorted(drop_ins.glob("*.conf")):
            drop_in(box, conf.name, conf.read_text())
        box.run("systemctl", "restart", "systemmanager.service")
        shown = box.show("systemmanager.service", "ActiveState", "SupplementaryGroups", "AmbientCapabilities",
                         "PrivateDevices", "DevicePolicy", "MainPID")
        assert shown["ActiveState"] == "active", shown
        assert shown["SupplementaryGroups"].split() == ["systemd-journal", "docker"], shown
        assert sorted(shown["AmbientCapabilities"].split()) == ["cap_dac_read_search", "cap_kill", "cap_sys_ptrace"]
        assert (shown["PrivateDevices"], shown["DevicePolicy"]) == ("no", "closed")
        # CAP_DAC_READ_SEARCH (2), CAP_KILL (5), CAP_SYS_PTRACE (19), and nothing else: those of
        # them this container's systemd may give at all (Docker's default set has only KILL).
        def capabilities(pid: str, kind: str) -> int:
            status = box.run("cat", f"/proc/{pid}/status")
            return int(re.search(rf"^{kind}:\s+([0-9a-f]+)$", status, re.M).group(1), 16)

        wanted = (1 << 2) | (1 << 5) | (1 << 19)
        assert capabilities(shown["MainPID"], "CapEff") == wanted & capabilities("1", "CapBnd") != 0
        warnings = box.run("journalctl", "-b", "--no-pager", "-u", "systemmanager.service", "-p", "warning")
        assert "Unknown key" not in warnings and "Failed to parse" not in warnings, warnings
    finally:
        for conf in drop_ins.glob("*.conf"):
            box.run("rm", "-f", f"{DROP_INS}/{conf.name}")
        box.run("systemctl", "daemon-reload")
        box.run("systemctl", "restart", "systemmanager.service")
