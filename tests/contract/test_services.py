"""The services domain against a real systemd: a Debian 12 container running systemd 252 as PID 1
(scripts/testbed/systemd.sh builds the image), the server binary and test units inside, driven
with the official MCP client over stdio (`docker exec -i`) and HTTP (a unix socket in a shared
directory). Every answer is checked against `systemctl show` and `journalctl -o json` run in the
same container."""

import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from policy import require
from sdk import call, connect, refusal, stdio_session
from waiting import wait_until

pytestmark = pytest.mark.anyio

IMAGE = os.environ.get("SM_SYSTEMD_IMAGE", "sm-systemd:test")
INSIDE = "/usr/local/bin/systemmanager"

UNITS = {
    # A healthy service that systemd restarts when it dies, and that can reload.
    "sm-good.service": """[Unit]
Description=SM test good
[Service]
ExecStart=/bin/sleep 100000
ExecReload=/bin/true
Restart=always
RestartSec=100ms
[Install]
WantedBy=multi-user.target
""",
    # A service that fails on start, saying why first.
    "sm-bad.service": """[Unit]
Description=SM test bad
[Service]
ExecStart=/bin/sh -c "echo about to fail; exit 3"
""",
    # Known lines at known priorities, once, on the unit's own stdout stream (`<N>` is the
    # priority): journald knows that stream's unit for sure, where a short-lived `logger` may
    # exit before journald reads which unit it belonged to.
    "sm-logger.service": """[Unit]
Description=SM test logger
[Service]
Type=oneshot
SyslogIdentifier=smlog
ExecStart=/bin/sh -c "echo '<3>disk on fire'; echo '<4>disk warm'; echo '<6>disk fine'"
""",
    # A oneshot that does its work and ends: a success, though inactive after.
    "sm-oneshot.service": """[Unit]
Description=SM test oneshot
[Service]
Type=oneshot
ExecStart=/bin/true
""",
    # A service that fails and is restarted in a loop.
    "sm-flap.service": """[Unit]
Description=SM test flap
[Service]
ExecStart=/bin/sh -c "echo flapping; exit 7"
Restart=always
RestartSec=2
""",
    "sm-tick.service": """[Unit]
Description=SM test tick
[Service]
Type=oneshot
ExecStart=/bin/true
""",
    "sm-tick.timer": """[Unit]
Description=SM test tick timer
[Timer]
OnCalendar=*-*-* 03:17:00
[Install]
WantedBy=timers.target
""",
}

CONFIGS = {
    "admin.toml": '[security]\nadmin_tier = true\nlocal_role = "admin"\n[audit]\npath = "/var/lib/sm-test/admin-audit.jsonl"\n',
    "operator.toml": '[security]\nlocal_role = "operator"\n[audit]\npath = "/var/lib/sm-test/operator-audit.jsonl"\n',
    "viewer.toml": '[security]\nlocal_role = "viewer"\n[audit]\npath = "/var/lib/sm-test/viewer-audit.jsonl"\n',
    # Room for a page of 1,000 journal lines in one answer.
    "pager.toml": '[security]\nlocal_role = "viewer"\n[limits]\nmax_output_bytes = 4194304\n'
    '[audit]\npath = "/var/lib/sm-test/pager-audit.jsonl"\n',
}


class Box:
    """One systemd container, named uniquely, with the server and the test units inside."""

    def __init__(self, name: str, shared: Path):
        self.name, self.shared = name, shared

    def run(self, *command: str, check: bool = True) -> str:
        done = subprocess.run(["docker", "exec", self.name, *command], capture_output=True, text=True, timeout=60)
        if check:
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        return done.stdout

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        text = self.run("systemctl", "show", unit, *(f"--property={p}" for p in properties))
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def journal(self, *arguments: str) -> list[dict]:
        text = self.run("journalctl", "--no-pager", "-o", "json", *arguments)
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def wrapper(self) -> list[str]:
        return ["docker", "exec", "-i", self.name]

    def session(self, config: str = "admin.toml"):
        return stdio_session(Path(INSIDE), "--config", f"/etc/sm-test/{config}", wrapper=self.wrapper())

    def audit(self, config: str = "admin") -> list[dict]:
        text = self.run("cat", f"/var/lib/sm-test/{config}-audit.jsonl", check=False)
        return [record for record in map(json.loads, text.splitlines()) if record.get("event") != "log"]


def start_systemd_container(prefix: str, shared: Path, inside: str) -> Box:
    """A container of the systemd image, named `prefix-RANDOM`, booted (running or degraded),
    with `shared` mounted at `inside`. Its own cgroup namespace: with the host's (docker's
    default on this cgroup v1 host), the systemd inside leaves every container started
    meanwhile without cgroup figures (docker stats shows 0 pids), which breaks the Docker tests
    of a suite running beside this one."""
    image = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True)
    require(image.returncode == 0, f"the systemd image {IMAGE} (scripts/testbed/systemd.sh builds it)")
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [
            "docker", "run", "-d", "--name", name, "--cgroupns=private", "--cap-add", "SYS_ADMIN",
            "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
            "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
            "-v", f"{shared}:{inside}", IMAGE, "/sbin/init",
        ],
        check=True, capture_output=True,
    )

    def booted():
        state = subprocess.run(["docker", "exec", name, "systemctl", "is-system-running"], capture_output=True, text=True)
        return state.stdout.strip() in ("running", "degraded")

    try:
        wait_until(booted, timeout=60, interval=0.2)
    except BaseException:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        raise
    return Box(name, shared)


@pytest.fixture(scope="module")
def box(tmp_path_factory, binary):
    shared = tmp_path_factory.mktemp("systemd-shared")
    container = start_systemd_container("sm-systemd", shared, "/shared")
    name = container.name
    try:
        subprocess.run(["docker", "cp", str(binary), f"{name}:{INSIDE}"], check=True, capture_output=True)
        container.run("mkdir", "-p", "/etc/sm-test", "/var/lib/sm-test")
        for unit, text in UNITS.items():
            subprocess.run(["docker", "exec", "-i", name, "sh", "-c", f"cat > /etc/systemd/system/{unit}"], input=text, text=True, check=True)
        for config, text in CONFIGS.items():
            subprocess.run(["docker", "exec", "-i", name, "sh", "-c", f"cat > /etc/sm-test/{config}"], input=text, text=True, check=True)
        container.run("systemctl", "daemon-reload")
        yield container
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        shutil.rmtree(shared, ignore_errors=True)


async def test_a_host_without_systemd_registers_no_service_tools(binary, tmp_path):
    """A root without /run/systemd/system (a container, another init): none of the tools."""
    config = tmp_path / "config.toml"
    config.write_text(f'[host]\nrootfs = "{tmp_path}"\n[audit]\npath = "{tmp_path}/audit.jsonl"\n')
    async with stdio_session(binary, "--config", str(config)) as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
    assert names and not [name for name in names if name.startswith(("service_", "journal_", "timer_"))], names


async def test_start_status_restart_stop_agree_with_systemctl(box):
    async with box.session() as session:
        started = await call(session, "service_start", {"unit": "sm-good"})
        shown = box.show("sm-good.service", "ActiveState", "SubState", "MainPID", "NRestarts")
        # journald writes systemd's "Started" line a moment after the job is done.
        wait_until(lambda: any("Started sm-good.service" in e["MESSAGE"] for e in box.journal("-u", "sm-good.service")))
        status = await call(session, "service_status", {"unit": "sm-good", "lines": 5})
        restarted = await call(session, "service_restart", {"unit": "sm-good.service"})
        after_restart = box.show("sm-good.service", "MainPID")
        # An automatic restart (Restart=always) is what NRestarts counts.
        box.run("kill", "-9", after_restart["MainPID"])
        wait_until(lambda: box.show("sm-good.service", "NRestarts")["NRestarts"] == "1"
                   and box.show("sm-good.service", "ActiveState")["ActiveState"] == "active", timeout=10)
        counted = await call(session, "service_status", {"unit": "sm-good"})
        counted_truth = box.show("sm-good.service", "MainPID", "NRestarts")
        reloaded = await call(session, "service_reload", {"unit": "sm-good"})
        stopped = await call(session, "service_stop", {"unit": "sm-good"})
        listed = await call(session, "service_list", {"pattern": "sm-*", "installed": True})
        loaded = await call(session, "service_list", {"pattern": "sm-*", "all": True})
        loaded_truth = box.run("systemctl", "list-units", "--all", "--plain", "--no-legend", "sm-*")
    assert started["before"]["active_state"] == "inactive" and started["after"]["active_state"] == "active"
    assert started["after"]["main_pid"] == int(shown["MainPID"]) > 0
    assert (status["active_state"], status["sub_state"], status["main_pid"]) == (
        shown["ActiveState"], shown["SubState"], int(shown["MainPID"]))
    assert status["restarts"] == int(shown["NRestarts"]) == 0
    assert status["unit_file"] == "/etc/systemd/system/sm-good.service" and status["unit_file_state"] == "disabled"
    assert any("Started sm-good.service" in entry["message"] for entry in status["journal"]), status["journal"]
    assert restarted["before"]["main_pid"] == started["after"]["main_pid"]
    assert restarted["after"]["main_pid"] == int(after_restart["MainPID"]) != restarted["before"]["main_pid"]
    assert counted["restarts"] == int(counted_truth["NRestarts"]) == 1
    assert counted["main_pid"] == int(counted_truth["MainPID"]) != restarted["after"]["main_pid"]
    assert reloaded["after"]["active_state"] == "active" and reloaded["job_result"] == "done"
    assert stopped["after"]["active_state"] == "inactive" and "main_pid" not in stopped["after"]
    assert box.show("sm-good.service", "ActiveState")["ActiveState"] == "inactive"
    rows = {row["name"]: row for row in listed["units"]}
    assert {"sm-good.service", "sm-bad.service", "sm-logger.service", "sm-tick.service"} <= set(rows), rows
    assert rows["sm-good.service"]["active_state"] == "inactive"
    assert rows["sm-logger.service"]["load_state"] in ("loaded", "not-loaded")
    assert sorted(row["name"] for row in loaded["units"]) == sorted(line.split()[0] for line in loaded_truth.splitlines())


async def test_a_failed_start_says_why(box):
    async with box.session() as session:
        failed = await refusal(session, "service_start", {"unit": "sm-bad"})
        status = await call(session, "service_status", {"unit": "sm-bad"})
    shown = box.show("sm-bad.service", "ActiveState", "Result", "ExecMainStatus")
    assert shown["ActiveState"] == "failed" and shown["Result"] == "exit-code" and shown["ExecMainStatus"] == "3"
    assert failed.startswith("start sm-bad.service failed"), failed
    assert "result exit-code, main process exited with status 3" in failed and "about to fail" in failed
    assert (status["active_state"], status["result"], status["exit_code"], status["exit_status"]) == ("failed", "exit-code", "exited", 3)


async def test_journal_filters_agree_with_journalctl(box):
    box.run("systemctl", "start", "sm-logger.service")
    wait_until(lambda: len(box.journal("-u", "sm-logger.service", "-t", "smlog")) == 3, timeout=10)
    async with box.session("viewer.toml") as session:
        errors = await call(session, "journal_query", {"unit": "sm-logger", "priority": "err"})
        warm = await call(session, "journal_query", {"identifier": "smlog", "priority": "warning..err", "order": "oldest_first"})
        grep = await call(session, "journal_query", {"identifier": "smlog", "grep": "warm"})
        # journalctl's smart case: a pattern with a capital letter matches case.
        grep_case = await call(session, "journal_query", {"identifier": "smlog", "grep": "WARM"})
        recent = await call(session, "journal_query", {"identifier": "smlog", "since": "10m", "boot": "0"})
        future = await call(session, "journal_query", {"identifier": "smlog", "since": "2099-01-01T00:00:00Z"})
        boots = await call(session, "journal_boots", {})
        bad_priority = await refusal(session, "journal_query", {"priority": "--all"})
        bad_boot = await refusal(session, "journal_query", {"boot": "; rm -rf /"})
        bad_grep = await refusal(session, "journal_query", {"grep": "[unclosed"})
    truth = box.journal("-u", "sm-logger.service", "-p", "err", "-r")
    assert [e["message"] for e in errors["entries"]] == [e["MESSAGE"] for e in truth]
    assert "disk on fire" in [e["message"] for e in errors["entries"]]
    assert [e["message"] for e in warm["entries"]] == ["disk on fire", "disk warm"]
    assert [e["priority"] for e in warm["entries"]] == ["err", "warning"]
    assert [e["message"] for e in grep["entries"]] == ["disk warm"] and grep_case["entries"] == []
    assert {e["message"] for e in recent["entries"]} == {"disk on fire", "disk warm", "disk fine"}
    assert future["entries"] == [] and "next_cursor" not in future
    current = box.run("cat", "/proc/sys/kernel/random/boot_id").strip().replace("-", "")
    assert [boot["boot_id"] for boot in boots["boots"] if boot["offset"] == 0] == [current]
    assert bad_priority.startswith("priority `--all` is not one")
    assert bad_boot.startswith("boot `; rm -rf /` is not one")
    assert bad_grep.startswith("journalctl refused the query:")


async def test_the_cursor_pages_10000_lines_each_exactly_once(box):
    tag = f"smpage{uuid.uuid4().hex[:6]}"
    box.run("sh", "-c", f"seq 1 10000 | systemd-cat -t {tag}")
    wait_until(lambda: len(box.journal("-t", tag, "-n", "1", "-r")) == 1
               and box.journal("-t", tag, "-n", "1", "-r")[0]["MESSAGE"] == "10000", timeout=30)
    seen = {"oldest_first": [], "newest_first": []}
    pages = 0
    async with box.session("pager.toml") as session:
        for order in seen:
            cursor = None
            for _ in range(500):
                arguments = {"identifier": tag, "limit": 1000, "max_bytes": 1_000_000, "order": order}
                if cursor:
                    arguments["cursor"] = cursor
                page = await call(session, "journal_query", arguments)
                pages += 1
                seen[order] += [int(entry["message"]) for entry in page["entries"]]
                cursor = page.get("next_cursor")
                if not cursor:
                    break
    assert seen["oldest_first"] == list(range(1, 10001))
    assert seen["newest_first"] == list(range(10000, 0, -1))
    assert pages == 20, pages


async def test_protected_units_hold_for_an_admin_and_a_viewer_changes_nothing(box):
    async with box.session() as session:
        journald = await refusal(session, "service_stop", {"unit": "systemd-journald"})
        dbus = await refusal(session, "service_restart", {"unit": "dbus"})
        masked = await refusal(session, "service_mask", {"unit": "ssh"})
        readable = await call(session, "service_status", {"unit": "systemd-journald", "lines": 0})
    async with box.session("viewer.toml") as session:
        viewer = await refusal(session, "service_start", {"unit": "sm-good"})
    assert journald == ("systemd-journald.service is protected (services.protected_units pattern `systemd-*`): "
                        "no role may stop it. Nothing was done.")
    assert "dbus.service is protected" in dbus and "pattern `dbus.service`" in dbus
    assert "ssh.service is protected" in masked
    assert readable["active_state"] == "active"
    assert box.show("systemd-journald.service", "ActiveState")["ActiveState"] == "active"
    assert viewer.startswith("permission denied: service_start needs the `operate` tier")
    assert box.show("sm-good.service", "ActiveState")["ActiveState"] == "inactive"


async def test_every_action_has_its_audit_pair(box):
    """Each change is recorded before it is made (`started`) and when it ended (`ok`)."""
    actions = [
        ("operator", "service_start", {"unit": "sm-good"}),
        ("operator", "service_reload", {"unit": "sm-good"}),
        ("operator", "service_restart", {"unit": "sm-good"}),
        ("operator", "service_stop", {"unit": "sm-good"}),
        ("admin", "service_enable", {"unit": "sm-good"}),
        ("admin", "service_disable", {"unit": "sm-good"}),
        ("admin", "service_mask", {"unit": "fstrim.service"}),
        ("admin", "service_unmask", {"unit": "fstrim.service"}),
        ("admin", "service_daemon_reload", {}),
    ]
    for role in ("operator", "admin"):
        async with box.session(f"{role}.toml") as session:
            for _, tool, arguments in [action for action in actions if action[0] == role]:
                await call(session, tool, arguments)
    for role, tool, arguments in actions:
        records = [r for r in box.audit(role) if r.get("tool") == tool and r.get("args", {}) == arguments]
        assert [r["outcome"] for r in records][-2:] == ["started", "ok"], (tool, records)
        tier = "operate" if role == "operator" else "admin"
        assert all(r["tier"] == tier for r in records[-2:]), (tool, records)


async def test_a_journal_mounted_from_elsewhere_is_read_with_host_journal(box):
    """[host] journal: the server in a container reads the host's journal mounted read-only; here
    a copy of the journal's files in another directory, which journalctl reads with --directory."""
    box.run("systemctl", "start", "sm-logger.service")
    wait_until(lambda: len(box.journal("-u", "sm-logger.service", "-t", "smlog")) >= 3, timeout=10)
    # Where this journald keeps it: /var/log/journal once flushed there, else /run/log/journal.
    box.run("sh", "-c", "journalctl --flush; src=/var/log/journal; "
            "[ -n \"$(ls -A $src 2>/dev/null)\" ] || src=/run/log/journal; "
            "rm -rf /srv/hostjournal && cp -a $src /srv/hostjournal")
    box.run("sh", "-c", "cat /etc/sm-test/viewer.toml > /etc/sm-test/hostjournal.toml && "
            "printf '[host]\\njournal = \"/srv/hostjournal\"\\n' >> /etc/sm-test/hostjournal.toml")
    async with box.session("hostjournal.toml") as session:
        copied = await call(session, "journal_query", {"identifier": "smlog", "priority": "err"})
    truth = box.journal("--directory=/srv/hostjournal", "-t", "smlog", "-p", "err", "-r")
    assert [e["message"] for e in copied["entries"]] == [e["MESSAGE"] for e in truth]
    assert "disk on fire" in [e["message"] for e in copied["entries"]]


async def test_unit_files_timers_and_dependencies(box):
    async with box.session() as session:
        enabled = await call(session, "service_enable", {"unit": "sm-good"})
        is_enabled = box.run("systemctl", "is-enabled", "sm-good.service").strip()
        wants = await call(session, "service_dependencies", {"unit": "multi-user.target"})
        shown_wants = set(box.show("multi-user.target", "Wants")["Wants"].split())
        needed_by = await call(session, "service_dependencies", {"unit": "sm-good", "reverse": True})
        disabled = await call(session, "service_disable", {"unit": "sm-good"})
        # A unit whose file is in /etc cannot be masked (systemctl refuses too): one from /lib.
        was = box.run("systemctl", "is-enabled", "fstrim.service", check=False).strip()
        masked = await call(session, "service_mask", {"unit": "fstrim.service"})
        is_masked = box.run("systemctl", "is-enabled", "fstrim.service", check=False).strip()
        unmasked = await call(session, "service_unmask", {"unit": "fstrim.service"})
        in_etc = await refusal(session, "service_mask", {"unit": "sm-tick.service"})
        box.run("systemctl", "enable", "--now", "sm-tick.timer")
        timers = await call(session, "timer_list", {})
        reloaded = await call(session, "service_daemon_reload", {})
    assert enabled["unit_file_state"] == is_enabled == "enabled"
    assert any(change.endswith("multi-user.target.wants/sm-good.service → /etc/systemd/system/sm-good.service")
               for change in enabled["changes"]), enabled
    assert "sm-good.service" in [node["unit"] for node in wants["tree"]]
    assert {node["unit"] for node in wants["tree"] if node["relation"] == "wants"} == shown_wants
    assert [node["unit"] for node in needed_by["tree"]] == ["multi-user.target"]
    assert disabled["unit_file_state"] == "disabled" == box.run("systemctl", "is-enabled", "sm-good.service", check=False).strip()
    assert masked["unit_file_state"] == is_masked == "masked"
    assert unmasked["unit_file_state"] == was == "static"
    assert "File /etc/systemd/system/sm-tick.service already exists" in in_etc
    tick = [timer for timer in timers["timers"] if timer["timer"] == "sm-tick.timer"]
    assert len(tick) == 1 and tick[0]["activates"] == "sm-tick.service" and tick[0]["active_state"] == "active"
    # systemctl shows it as `Tue 2026-12-01 03:17:00 UTC` (the container's zone is UTC).
    shown = box.show("sm-tick.timer", "NextElapseUSecRealtime")["NextElapseUSecRealtime"].split()
    assert shown[-1] == "UTC" and tick[0]["next"].startswith(f"{shown[1]}T{shown[2]}"), (shown, tick)
    assert reloaded["reloaded"] is True


async def test_over_http_on_a_unix_socket(box, binary):
    """The same tools over Streamable HTTP: the server listens on a socket in a directory the
    container shares with the host, and the host's client connects to it."""
    socket = box.shared / "sm.sock"
    server = subprocess.Popen(
        ["docker", "exec", box.name, INSIDE, "serve", "--config", "/etc/sm-test/viewer.toml", "--unix", "/shared/sm.sock"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        wait_until(socket.exists, timeout=20)
        async with connect("unix", binary, None, socket) as session:
            await session.initialize()
            status = await call(session, "service_status", {"unit": "sm-good", "lines": 0})
            listed = await call(session, "service_list", {"pattern": "sm-good*", "installed": True})
            refused = await refusal(session, "service_start", {"unit": "sm-good"})
    finally:
        box.run("pkill", "-f", "/shared/sm.sock", check=False)
        server.wait(timeout=20)
    assert status["active_state"] == box.show("sm-good.service", "ActiveState")["ActiveState"]
    assert [row["name"] for row in listed["units"]] == ["sm-good.service"]
    assert refused.startswith("permission denied: service_start needs the `operate` tier")


async def test_a_bus_that_goes_away_is_found_again(box):
    async with box.session("viewer.toml") as session:
        before = await call(session, "service_status", {"unit": "sm-good", "lines": 0})
        box.run("systemctl", "restart", "dbus.service")
        first = await session.call_tool("service_status", {"unit": "sm-good", "lines": 0})

        async def answers():
            result = await session.call_tool("service_status", {"unit": "sm-good", "lines": 0})
            return not result.is_error

        deadline = time.monotonic() + 15
        while not await answers():
            assert time.monotonic() < deadline, "the bus was not found again"
            await asyncio.sleep(0.2)
    assert before["unit"] == "sm-good.service"
    if first.is_error:
        assert "systemd's bus" in first.content[0].text, first.content[0].text


async def test_protection_holds_through_aliases_dependents_and_host_state_targets(box):
    """An operator may not power the host off; no role stops a protected unit through a unit
    whose stop spreads to it, nor under an alias."""
    logind_before = box.show("systemd-logind.service", "MainPID")["MainPID"]
    async with box.session("operator.toml") as session:
        poweroff = await refusal(session, "service_start", {"unit": "poweroff.target"})
        rescue = await refusal(session, "service_start", {"unit": "rescue"})
    async with box.session() as session:
        spread = await refusal(session, "service_stop", {"unit": "sysinit.target"})
        alias = await refusal(session, "service_restart", {"unit": "dbus-org.freedesktop.login1"})
    assert poweroff.startswith("no role may start poweroff.target: it stops, reboots, suspends or isolates the host")
    assert rescue.startswith("no role may start rescue.service")
    assert spread.startswith("no role may stop sysinit.target: that also stops"), spread
    assert "which is protected" in spread
    assert alias.startswith("systemd-logind.service is protected"), alias
    assert box.show("systemd-logind.service", "MainPID")["MainPID"] == logind_before
    assert box.run("systemctl", "is-system-running", check=False).strip() in ("running", "degraded")


async def test_a_oneshot_succeeds_and_a_restart_loop_fails(box):
    async with box.session("operator.toml") as session:
        oneshot = await call(session, "service_start", {"unit": "sm-oneshot"})
        flapping = await refusal(session, "service_start", {"unit": "sm-flap"})
        await call(session, "service_stop", {"unit": "sm-flap"})
    assert oneshot["job_result"] == "done" and oneshot["after"]["active_state"] == "inactive"
    assert box.show("sm-oneshot.service", "Result")["Result"] == "success"
    assert flapping.startswith("start sm-flap.service failed"), flapping
    assert "result exit-code, main process exited with status 7" in flapping and "flapping" in flapping


async def test_a_huge_entry_is_cut_and_paging_moves_on(box):
    tag = f"smhuge{uuid.uuid4().hex[:6]}"
    # 40,000 bytes: under journald's LineMax (48K, past which it splits a line in entries), over
    # what one entry of an answer under the default output cap holds.
    box.run("sh", "-c", f"python3 -c 'print(\"x\" * 40000)' | systemd-cat -t {tag}; echo small | systemd-cat -t {tag}")
    wait_until(lambda: len(box.journal("-t", tag)) == 2, timeout=10)
    messages, notes, cursor = [], [], None
    async with box.session("viewer.toml") as session:
        for _ in range(5):
            arguments = {"identifier": tag, "limit": 1, "order": "oldest_first"}
            if cursor:
                arguments["cursor"] = cursor
            page = await call(session, "journal_query", arguments)
            messages += [entry["message"] for entry in page["entries"]]
            notes += page.get("notes", [])
            cursor = page.get("next_cursor")
            if not cursor:
                break
    assert len(messages) == 2 and messages[1] == "small", messages
    assert messages[0].startswith("xxxx") and messages[0].endswith("…") and len(messages[0]) < 40000
    assert any("was cut to" in note for note in notes), notes

