"""process_list, process_get and process_tree through the official client, against `ps`,
/proc, and subjects the tests start: sleeps under distinctive names, a busy loop, a stopped
process, one run as another user, one moved into a container-like cgroup, a small family."""

from __future__ import annotations

import asyncio
import errno
import os
import pwd
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from groundtruth import comm, command_output, start_time_of, stat_fields
from policy import require
from sdk import call, refusal, stdio_session
from servers import make_config
from waiting import wait_until, wait_until_async

pytestmark = pytest.mark.anyio


def ps_table() -> dict[int, dict]:
    """Every process as `ps -eo pid,ppid,user:64,nlwp,comm` reports it."""
    rows = {}
    for line in command_output("ps", "-eo", "pid=,ppid=,user:64=,nlwp=,comm:64=").splitlines():
        pid, ppid, user, threads, comm = line.split(None, 4)
        rows[int(pid)] = {"ppid": int(ppid), "user": user, "threads": int(threads), "name": comm}
    return rows


async def all_processes(session, **arguments) -> list[dict]:
    """Every page of process_list, following next_cursor."""
    rows, cursor = [], None
    while True:
        page = await call(session, "process_list", {**arguments, "limit": 500, **({"cursor": cursor} if cursor else {})})
        rows += page["processes"]
        cursor = page.get("next_cursor")
        if not cursor:
            return rows


async def test_the_list_agrees_with_ps(binary, subject):
    mine = subject()
    fields = ["ppid", "user", "name", "threads", "start_time"]
    before = ps_table()
    async with stdio_session(binary) as session:
        ours = {row["pid"]: row for row in await all_processes(session, sort="pid", fields=fields)}
    truth = ps_table()
    common = set(ours) & set(truth)
    # Processes come and go between the two readings; nearly all are in both.
    assert len(common) >= 0.9 * len(truth) and mine.pid in common
    assert list(ours) == sorted(ours), "sort=pid is ascending"
    # Kernel workers rename themselves as they take work (`kworker/1:1-events` →
    # `kworker/1:1-events_freezable`) between the two readings: their names are not stable.
    stable = {pid for pid in common if pid != 2 and truth[pid]["ppid"] != 2}
    for column in ["ppid", "user", "name", "threads"]:
        compared = common if column in ("ppid", "user") else stable
        # What changed between ps before and ps after (a busy server's threads) is not stable.
        compared = {pid for pid in compared if pid in before and before[pid][column] == truth[pid][column]}
        differ = {pid: (ours[pid][column], truth[pid][column]) for pid in compared if ours[pid][column] != truth[pid][column]}
        agree = len(compared) - len(differ)
        # A busy process may start or end a thread between the readings: a few may differ.
        assert agree >= min(0.98 * len(compared), len(compared) - 2), f"{column}: {agree} of {len(compared)} agree with ps; ours, ps: {differ}"
    assert ours[mine.pid]["start_time"] == start_time_of(mine.pid)
    assert set(ours[mine.pid]) == {"pid", *fields}, "only the asked-for columns"


async def test_a_named_sleep_is_found_by_name_regex_user_and_state(binary, subject):
    mine = subject()
    async with stdio_session(binary) as session:
        by_name = await call(session, "process_list", {"name": "SM-TEST-SUB"})
        by_regex = await call(session, "process_list", {"name_regex": r"^sm-test-subj.ct$"})
        by_user = await call(session, "process_list", {"user": "root", "state": "sleeping", "name": "sm-test-subject"})
        by_uid = await call(session, "process_list", {"user": "0", "name": "sm-test-subject"})
    for answer in [by_name, by_regex, by_user, by_uid]:
        assert [row["pid"] for row in answer["processes"]] == [mine.pid], answer
        assert answer["total"] == 1
    [row] = by_name["processes"]
    assert row["name"] == "sm-test-subject" and row["user"] == "root" and row["state"] == "sleeping"
    assert row["command"].endswith("/sm-test-subject 300")
    assert row["start_time"] == start_time_of(mine.pid)
    rss_kib = int(command_output("ps", "-o", "rss=", "-p", str(mine.pid)))
    assert row["rss_bytes"] == rss_kib * 1024


async def test_a_busy_loop_ranks_at_the_top_of_the_cpu_sort(binary, tmp_path):
    """On a machine doing other things (a compiler, a second test suite) the loop may share the
    top with them: it is among the top five, with the share a busy loop gets, and the ranking
    is in order."""
    link = tmp_path / "sm-spinner"
    link.symlink_to(Path(sys.executable).resolve())
    spinner = subprocess.Popen([str(link), "-c", "while True: pass"])
    try:
        async with stdio_session(binary) as session:
            first = await call(session, "process_list", {"limit": 5})
            # The sampler reads every second (sampler.interval_ms): by now the second answer
            # ranks by CPU over an interval the loop spun through.
            await asyncio.sleep(1.6)
            second = await call(session, "process_list", {"limit": 5})
    finally:
        spinner.kill()
        spinner.wait()
    assert first["cpu_basis"] == "since_start"
    assert second["cpu_basis"] == "interval" and 0.5 <= second["window_seconds"] <= 2.5
    top = next((row for row in second["processes"] if row["pid"] == spinner.pid), None)
    assert top is not None and top["name"] == "sm-spinner", second["processes"]
    assert top["cpu_percent"] >= 30.0, top
    percents = [row["cpu_percent"] for row in second["processes"]]
    assert percents == sorted(percents, reverse=True)


async def test_a_ranking_from_the_last_interval_is_current_in_who_and_what(binary, subject):
    """An unfiltered list answers from the sampler's last table (as top does), yet a process
    started since is in it, one that exited is not, and the rows shown are read now."""
    leaver, changer = subject("sm-leaver"), subject("sm-changer")
    async with stdio_session(binary) as session:
        await call(session, "process_list", {"limit": 1})
        # The sampler reads every second (sampler.interval_ms): by now it has two readings, both
        # holding these two.
        await asyncio.sleep(1.3)
        leaver.kill()
        leaver.wait()
        os.kill(changer.pid, signal.SIGSTOP)
        await wait_until_async(lambda: stat_fields(changer.pid)[0] == "T", timeout=10, interval=0.01)
        newcomer = subject("sm-newcomer")
        ranking = await call(session, "process_list", {"sort": "start", "limit": 500, "fields": ["pid", "name", "state"]})
    os.kill(changer.pid, signal.SIGCONT)
    rows = {row["pid"]: row for row in ranking["processes"]}
    assert ranking["cpu_basis"] == "interval"
    # Newest first: of this test's processes the newcomer leads (another suite on the machine
    # may start processes of its own meanwhile, so only ours are compared).
    ours = [row["pid"] for row in ranking["processes"] if row["pid"] in (newcomer.pid, changer.pid)]
    assert ours == [newcomer.pid, changer.pid]
    assert rows[newcomer.pid] == {"pid": newcomer.pid, "name": "sm-newcomer", "state": "sleeping"}
    assert leaver.pid not in rows
    assert rows[changer.pid]["state"] == "stopped"


async def test_stopped_and_other_users_processes_are_told_apart(binary, subject):
    stopped, other = subject("sm-stopped"), None
    os.kill(stopped.pid, signal.SIGSTOP)
    assert await wait_until_async(lambda: stat_fields(stopped.pid)[0] == "T", interval=0.01)
    require(os.geteuid() == 0, "starting a process as another user needs root")
    nobody = pwd.getpwnam("nobody")
    other = subprocess.Popen(["sleep", "300"], user=nobody.pw_uid)
    try:
        async with stdio_session(binary) as session:
            by_state = await call(session, "process_list", {"state": "stopped", "name": "sm-stopped"})
            by_user = await call(session, "process_list", {"user": "nobody", "name": "sleep"})
            no_user = await refusal(session, "process_list", {"user": "sm-no-such-user"})
    finally:
        other.kill()
        other.wait()
        os.kill(stopped.pid, signal.SIGCONT)
    assert [(row["pid"], row["state"]) for row in by_state["processes"]] == [(stopped.pid, "stopped")]
    assert other.pid in [row["pid"] for row in by_user["processes"]]
    assert all(row["user"] == "nobody" for row in by_user["processes"])
    assert no_user == "no user named `sm-no-such-user` on this host (give a name from /etc/passwd or a uid)"


def writable_cgroup_root() -> Path | None:
    for root in [Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")]:
        if (root / "cgroup.procs").exists() and os.access(root, os.W_OK):
            return root
    return None


def removed_cgroup(group: Path) -> bool:
    """Removes the (empty) cgroup directory; false while the kernel says it is still busy."""
    try:
        group.rmdir()
    except OSError as error:
        if error.errno != errno.EBUSY:
            raise
        return False
    return True


@pytest.fixture
def containerized(subject):
    """A sleep moved into a cgroup named as Docker names its containers' (`docker/ID`)."""
    root = writable_cgroup_root()
    require(root is not None and os.geteuid() == 0, "a writable cgroup hierarchy (root)")
    container_id = os.urandom(32).hex()
    group = root / "docker" / container_id
    group.mkdir(parents=True)
    process = subject("sm-in-container")
    try:
        (group / "cgroup.procs").write_text(str(process.pid))
        yield process, container_id
    finally:
        process.kill()
        process.wait()
        # The kernel may call the cgroup busy for a moment after the process was reaped.
        if not wait_until(lambda: removed_cgroup(group)):
            group.rmdir()  # raises what the kernel says
        try:
            group.parent.rmdir()
        except OSError:
            pass


async def test_a_process_in_a_container_cgroup_carries_its_container_id(binary, containerized):
    process, container_id = containerized
    async with stdio_session(binary) as session:
        by_container = await call(session, "process_list", {"container": container_id[:12], "fields": ["name", "container"]})
        details = await call(session, "process_get", {"pid": process.pid})
        elsewhere = await call(session, "process_list", {"container": "0" * 12})
    assert by_container["processes"] == [{"pid": process.pid, "name": "sm-in-container", "container": container_id[:12]}]
    assert details["container_id"] == container_id
    assert any(group["path"].endswith(f"/docker/{container_id}") for group in details["cgroups"])
    assert elsewhere["processes"] == [] and elsewhere["total"] == 0


async def test_list_arguments_are_checked(binary):
    async with stdio_session(binary) as session:
        bad_regex = await refusal(session, "process_list", {"name_regex": "([a-z"})
        negative = await refusal(session, "process_list", {"limit": -3})
        huge = await call(session, "process_list", {"limit": 99999, "fields": ["name"]})
        bad_sort = await refusal(session, "process_list", {"sort": "colour"})
        bad_field = await refusal(session, "process_list", {"fields": ["pid", "shoe_size"]})
        first = await call(session, "process_list", {"sort": "pid", "limit": 2, "fields": ["name"]})
        second = await call(session, "process_list", {"sort": "pid", "limit": 2, "fields": ["name"], "cursor": first["next_cursor"]})
    assert bad_regex.startswith("name_regex `([a-z` is not a valid regular expression: ")
    assert negative == "limit -3 is out of range: give at least 1 (default 20, at most 500)"
    assert huge["notes"] == ["limit 99999 is more than one page holds: gave at most 500; use next_cursor for the rest"]
    assert len(huge["processes"]) == min(500, huge["total"])
    assert "`cpu`, `memory`, `pid`, `start`, `name`" in bad_sort and "colour" in bad_sort
    assert "shoe_size" in bad_field and "`cpu_percent`" in bad_field
    assert [row["pid"] for row in first["processes"]][0] == 1
    assert first["next_cursor"] and second["processes"][0]["pid"] > first["processes"][-1]["pid"]


# --- process_get --------------------------------------------------------------------------------


async def test_process_get_describes_a_known_process(binary, subject):
    mine = subject()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    async with stdio_session(binary) as session:
        details = await call(session, "process_get", {"pid": mine.pid, "start_time": start_time_of(mine.pid)})
    link = Path(mine.args[0])
    assert details["pid"] == mine.pid and details["ppid"] == os.getpid()
    assert details["name"] == "sm-test-subject" and details["state"] == "sleeping"
    assert details["command_line"] == [str(link), "300"]
    assert details["exe"] == os.path.realpath("/bin/sleep")
    assert details["cwd"] == os.getcwd()
    assert details["user"] == pwd.getpwuid(os.geteuid()).pw_name and "real_user" not in details
    assert details["start_time"] == start_time_of(mine.pid)
    assert details["threads"] == 1 and details["kernel_thread"] is False
    status = dict(line.split(":", 1) for line in Path(f"/proc/{mine.pid}/status").read_text().splitlines())
    assert details["memory"]["rss_bytes"] == int(status["VmRSS"].split()[0]) * 1024
    assert details["open_files"]["count"] == len(os.listdir(f"/proc/{mine.pid}/fd"))
    assert details["open_files"]["limit"] == soft
    files = next(limit for limit in details["limits"] if limit["name"] == "open_files")
    assert (files["soft"], files["hard"]) == (str(soft), "unlimited" if hard == resource.RLIM_INFINITY else str(hard))
    assert details["io"]["read_chars"] >= 0 and details["children"] == []
    assert "environment" not in details and "unreadable" not in details


async def test_process_get_lists_children_and_refuses_the_wrong_process(binary, tmp_path):
    family = subprocess.Popen(["sh", "-c", "sleep 300 & sleep 300 & wait"])
    try:
        assert await wait_until_async(lambda: len(command_output("ps", "-o", "pid=", "--ppid", str(family.pid)).split()) >= 2)
        kids = sorted(int(pid) for pid in command_output("ps", "-o", "pid=", "--ppid", str(family.pid)).split())
        async with stdio_session(binary) as session:
            parent = await call(session, "process_get", {"pid": family.pid})
            tree = await call(session, "process_tree", {"pid": family.pid})
            wrong = await refusal(session, "process_get", {"pid": family.pid, "start_time": "2000-01-01T00:00:00.000Z"})
    finally:
        subprocess.run(["pkill", "-P", str(family.pid)])
        family.kill()
        family.wait()
    assert parent["children"] == kids
    assert tree["root"]["pid"] == family.pid and tree["root"]["name"] == "sh"
    assert [(child["pid"], child["name"]) for child in tree["root"]["children"]] == [(pid, "sleep") for pid in kids]
    assert (tree["shown"], tree["hidden"]) == (3, 0)
    assert wrong.startswith(f"pid {family.pid} is another process now (sh started ")
    assert wrong.endswith("not 2000-01-01T00:00:00.000Z): the one you saw has exited")


def cgroup_truth(pid: int) -> list[tuple[list[str], str]]:
    """`/proc/PID/cgroup` grouped by path: each distinct path once, with its controllers."""
    groups: dict[str, list[str]] = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        groups.setdefault(path, []).extend(name for name in controllers.split(",") if name)
    return [(sorted(set(names)), path) for path, names in groups.items()]


async def test_process_get_counts_what_the_kernel_lists(binary):
    # No open files at all: `ls /proc/PID/fd` shows nothing, and neither may the answer.
    closed = subprocess.Popen(["sh", "-c", "exec 0<&- 1>&- 2>&- ; exec sleep 300"], stdin=subprocess.DEVNULL)
    zombie = subprocess.Popen(["sh", "-c", "exit 0"])
    try:
        assert await wait_until_async(lambda: comm(closed.pid) == "sleep" and not os.listdir(f"/proc/{closed.pid}/fd"))
        assert await wait_until_async(lambda: stat_fields(zombie.pid)[0] == "Z")
        async with stdio_session(binary) as session:
            empty = await call(session, "process_get", {"pid": closed.pid})
            dead = await session.call_tool("process_get", {"pid": zombie.pid})
        assert empty["open_files"]["count"] == len(os.listdir(f"/proc/{closed.pid}/fd")) == 0
        # Each distinct cgroup path once, with its controllers, as /proc/PID/cgroup has them.
        ours = [(group.get("controllers", []), group["path"]) for group in empty["cgroups"]]
        assert ours == cgroup_truth(closed.pid)
        assert dead.is_error is False
        text = dead.content[0].text
        assert dead.structured_content["state"] == "zombie"
        assert "a zombie: it has exited" in text and "not readable here" not in text, text
        for controllers, path in cgroup_truth(zombie.pid):
            line = f"cgroup {','.join(controllers)}: {path}" if controllers else f"cgroup {path}"
            assert text.count(line) == 1, (line, text)
    finally:
        closed.kill()
        closed.wait()
        zombie.wait()


async def test_process_get_of_an_exited_pid_is_not_found(binary):
    gone = subprocess.Popen(["true"])
    gone.wait()
    async with stdio_session(binary) as session:
        text = await refusal(session, "process_get", {"pid": gone.pid})
    assert text == f"no process {gone.pid}: it has exited, or never existed; list the processes again"


async def test_the_environment_is_for_admins_and_redacts_secrets(binary, tmp_path):
    environment = {**os.environ, "SM_PLAIN": "visible", "SM_API_TOKEN": "hunter2", "DB_PASSWORD": "swordfish"}
    process = subprocess.Popen(["sleep", "300"], env=environment)
    admin = make_config("[security]\nadmin_tier = true\nlocal_role = \"admin\"\n")
    try:
        async with stdio_session(binary) as session:
            refused = await refusal(session, "process_get", {"pid": process.pid, "include_environment": True})
        async with stdio_session(binary, "--config", str(admin)) as session:
            details = await call(session, "process_get", {"pid": process.pid, "include_environment": True})
    finally:
        process.kill()
        process.wait()
    assert refused.startswith("permission denied: process_get needs the `admin` tier (include_environment)")
    env = details["environment"]
    assert env["SM_PLAIN"] == "visible"
    assert env["SM_API_TOKEN"] == "[redacted]" and env["DB_PASSWORD"] == "[redacted]"
    assert "hunter2" not in str(details) and "swordfish" not in str(details)


# --- process_tree -------------------------------------------------------------------------------


async def test_the_tree_from_pid_1_is_cut_by_depth_and_budget(binary):
    async with stdio_session(binary) as session:
        shallow = await call(session, "process_tree", {"depth": 1})
        tiny = await call(session, "process_tree", {"max_nodes": 1})
        unknown = await refusal(session, "process_tree", {"pid": 4_000_000})
    children_of_1 = sorted(int(pid) for pid in command_output("ps", "-o", "pid=", "--ppid", "1").split())
    shown = [child["pid"] for child in shallow["root"]["children"]]
    # The server's own processes come and go; pid 1's long-lived children are all there.
    assert set(children_of_1) - set(shown) <= {p for p in children_of_1 if not Path(f"/proc/{p}").exists()}
    assert all("children" not in child for child in shallow["root"]["children"])
    assert shallow["shown"] == 1 + len(shown)
    assert shallow["hidden"] == sum(child.get("hidden", 0) for child in shallow["root"]["children"])
    assert tiny["shown"] == 1 and "children" not in tiny["root"]
    assert tiny["root"]["hidden"] == tiny["hidden"] > 0
    assert unknown == "no process 4000000: it has exited, or never existed"


# --- names a process chose: argv and prctl(PR_SET_NAME) cannot forge rows ------------------------

FORGER = (
    "import ctypes, sys, time\n"
    "ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)\n"  # PR_SET_NAME
    "print('ready', flush=True)\n"
    "time.sleep(300)\n"
)


async def test_a_process_cannot_forge_rows_in_the_text(binary, tmp_path):
    """A process whose argv holds a newline and a fake `sshd` row owned by root (and ESC and
    U+202E), and whose prctl name holds a newline, printed as extra rows in process_list's and
    process_tree's text. Now each process is one row and the escapes show."""
    forged_arg = "x\n1 root running 0% 1 MiB 2026-01-01T00:00:00Z sshd: FAKE ROW\x1b[2K\u202e"
    comm = "sm-f\nFAKE\x1b"
    script = tmp_path / "forger.py"
    script.write_text(FORGER)
    process = subprocess.Popen([sys.executable, str(script), comm, forged_arg], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        async with stdio_session(binary) as session:
            listing = await session.call_tool(
                "process_list", {"name": "sm-f", "fields": ["pid", "user", "name", "command"]}
            )
            got = await session.call_tool("process_get", {"pid": process.pid})
            tree = await session.call_tool("process_tree", {"pid": os.getpid(), "depth": 1})
    finally:
        process.kill()
        process.wait()
    rows = listing.structured_content["processes"]
    assert [row["pid"] for row in rows] == [process.pid], rows
    assert rows[0]["name"] == comm, "the structured answer keeps the name as it is"
    lines = [line for line in listing.content[0].text.split("\n") if not line.startswith("(")]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{process.pid} root sm-f\\nFAKE\\x1b: ")
    # The command line is escaped too (where the row cuts it depends on the interpreter's path,
    # so only the absence of raw control and bidi characters is compared).
    assert "\x1b" not in listing.content[0].text and "\u202e" not in listing.content[0].text
    detail = got.content[0].text.split("\n")
    assert detail[0].startswith(f"{process.pid} sm-f\\nFAKE\\x1b (")
    assert detail[1].startswith("command: ")
    assert detail[1].endswith(" x\\n1 root running 0% 1 MiB 2026-01-01T00:00:00Z sshd: FAKE ROW\\x1b[2K\\u{202e}")
    assert not [line for line in detail if "sshd: FAKE ROW" in line and not line.startswith("command: ")]
    tree_lines = tree.content[0].text.split("\n")
    assert f"  {process.pid} sm-f\\nFAKE\\x1b (root)" in tree_lines, tree_lines
    for text in (listing.content[0].text, got.content[0].text, tree.content[0].text):
        assert "\x1b" not in text and "\u202e" not in text
