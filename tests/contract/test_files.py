"""The file tools through the official client: what they answer inside a root, and the
hostile suite — every path trick must fail with its exact error and leak nothing outside."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from sdk import call, connect, refusal, stdio_session
from servers import make_config, start_server

pytestmark = pytest.mark.anyio

SECRET = "sm-outside-secret-7c1e"


@pytest.fixture
def tree(tmp_path):
    """A root with known content, a secret file beside it (outside), and a config for it."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "logs" / "old").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET + "\n")
    (root / "notes.txt").write_text("".join(f"line {n}\n" for n in range(1, 101)))
    (root / "logs" / "app.log").write_text("start\nERROR disk full\nok\n")
    (root / "logs" / "old" / "app.1.log").write_text("ERROR older failure\n")
    (root / ".hidden").write_text("ERROR in a dot file\n")
    (root / "binary.bin").write_bytes(b"ERROR\x00\x01\x02")
    (root / "latin1.txt").write_bytes(b"caf\xe9 ok\n")
    (root / ".env").write_text("PASSWORD=hunter2\n")
    config = make_config(f'[files]\nroots = ["{root}"]\n')
    return root, outside, config


async def test_no_roots_no_file_tools(binary):
    async with stdio_session(binary) as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
    assert not [name for name in names if name.startswith("files_")]


async def test_list_tree_read_tail_stat_inside_a_root(binary, tree):
    root, _, config = tree
    async with stdio_session(binary, "--config", str(config)) as session:
        listing = await call(session, "files_list", {"path": str(root)})
        paged = await call(session, "files_list", {"path": str(root), "limit": 2, "hidden": True})
        rest = await call(session, "files_list", {"path": str(root), "limit": 100, "hidden": True, "cursor": paged["next_cursor"]})
        by_size = await call(session, "files_list", {"path": str(root), "sort": "size"})
        tree_answer = await call(session, "files_tree", {"path": str(root), "depth": 1})
        lines = await call(session, "files_read", {"path": f"{root}/notes.txt", "start_line": 10, "lines": 3})
        by_bytes = await call(session, "files_read", {"path": f"{root}/notes.txt", "offset": 7, "max_bytes": 6})
        latin1 = await call(session, "files_read", {"path": f"{root}/latin1.txt"})
        tail = await call(session, "files_tail", {"path": f"{root}/notes.txt", "lines": 2})
        stat = await call(session, "files_stat", {"path": f"{root}/notes.txt", "sha256": True})
    assert [entry["name"] for entry in listing["entries"]] == ["binary.bin", "latin1.txt", "logs", "notes.txt"]
    assert listing["total"] == 4 and "next_cursor" not in listing
    assert len(paged["entries"]) == 2 and paged["total"] == 6
    assert [e["name"] for e in paged["entries"] + rest["entries"]] == sorted(os.listdir(root))
    sizes = {name: os.lstat(root / name).st_size for name in os.listdir(root) if not name.startswith(".")}
    assert [e["name"] for e in by_size["entries"]] == sorted(sizes, key=lambda name: (-sizes[name], name))
    logs = next(e for e in listing["entries"] if e["name"] == "logs")
    assert logs["type"] == "directory" and logs["mode"] == f"{os.stat(root / 'logs').st_mode & 0o7777:04o}"
    logs_node = next(n for n in tree_answer["root"]["children"] if n["name"] == "logs")
    assert logs_node["hidden_entries"] == 2 and tree_answer["cut"] is True
    assert lines["content"] == "line 10\nline 11\nline 12\n"
    assert lines["start_line"] == 10 and lines["next_line"] == 13 and lines["total_lines"] == 100
    assert lines["size_bytes"] == (root / "notes.txt").stat().st_size
    assert by_bytes["content"] == "line 2" and by_bytes["next_offset"] == 13
    assert latin1["content"] == "caf\\xe9 ok\n" and latin1["invalid_bytes"] == 1
    assert tail["content"] == "line 99\nline 100\n" and tail["lines_returned"] == 2
    assert stat["sha256"] == hashlib.sha256((root / "notes.txt").read_bytes()).hexdigest()
    assert stat["type"] == "file" and stat["uid"] == os.getuid()


async def test_search_by_name_and_content(binary, tree):
    root, _, config = tree
    async with stdio_session(binary, "--config", str(config)) as session:
        content = await call(session, "files_search", {"path": str(root), "content": "ERROR"})
        with_hidden = await call(session, "files_search", {"path": str(root), "content": "error", "case_insensitive": True, "hidden": True})
        by_name = await call(session, "files_search", {"path": str(root), "name": "*.log"})
        both = await call(session, "files_search", {"path": str(root), "name": "app.log", "content": "disk"})
        limited = await call(session, "files_search", {"path": str(root), "content": "line", "max_results": 5})
        bad_regex = await refusal(session, "files_search", {"path": str(root), "content": "(unclosed"}, never_showing=SECRET)
        neither = await refusal(session, "files_search", {"path": str(root)}, never_showing=SECRET)
    hits = {(hit["path"], hit["line"], hit["text"]) for hit in content["results"]}
    assert hits == {(f"{root}/logs/app.log", 2, "ERROR disk full"), (f"{root}/logs/old/app.1.log", 1, "ERROR older failure")}
    assert content["binary_skipped"] == 1
    assert f"{root}/.hidden" in {hit["path"] for hit in with_hidden["results"]}
    assert f"{root}/.env" not in {hit["path"] for hit in with_hidden["results"]}, "denied files are not searched"
    assert sorted(hit["path"] for hit in by_name["results"]) == [f"{root}/logs/app.log", f"{root}/logs/old/app.1.log"]
    assert [(hit["path"], hit["line"]) for hit in both["results"]] == [(f"{root}/logs/app.log", 2)]
    assert len(limited["results"]) == 5 and limited["stopped_early"] is True
    assert bad_regex.startswith("content `(unclosed` is not a valid regular expression")
    assert neither == "give `name` (a glob), `content` (a regular expression), or both"


async def test_search_reports_progress(binary, tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    for n in range(3000):
        (root / f"f{n}.txt").write_text("nothing here\n" * 200)
    config = make_config(f'[files]\nroots = ["{root}"]\n')
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, message))

    async with stdio_session(binary, "--config", str(config)) as session:
        result = await session.call_tool(
            "files_search", {"path": str(root), "content": "absent-word"}, progress_callback=on_progress
        )
    assert result.is_error is False and result.structured_content["files_searched"] == 3000
    # One notification per 1,000 files at least; progress only grows.
    assert len(seen) >= 2, f"progress notifications: {seen}"
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)


async def test_hostile_paths_fail_precisely_and_leak_nothing(binary, tree):
    root, outside, config = tree
    (root / "to-secret").symlink_to(outside / "secret.txt")
    (root / "to-outside-dir").symlink_to(outside)
    (root / "to-shadow").symlink_to("/etc/shadow")
    (root / "relative-escape").symlink_to("../outside/secret.txt")
    (root / "loop-a").symlink_to("loop-b")
    (root / "loop-b").symlink_to("loop-a")
    (root / "to-env").symlink_to(".env")
    os.mkfifo(root / "fifo")
    subprocess.run(["mknod", str(root / "null-device"), "c", "1", "3"], check=True)
    with open(os.path.join(os.fsencode(str(root)), b"bad-\xff-name.txt"), "w") as file:
        file.write("ok\n")
    escape = "`{}` leads outside its root (through `..` or a symlink); only what is inside a root is readable"
    async with stdio_session(binary, "--config", str(config)) as session:

        def read(path: str):
            return refusal(session, "files_read", {"path": path}, never_showing=SECRET)

        assert await read(f"{root}/../outside/secret.txt") == escape.format(f"{root}/../outside/secret.txt")
        assert await read(str(outside / "secret.txt")) == f"`{outside}/secret.txt` is outside the file roots ({root}); only paths inside them are readable"
        assert await read("/etc/passwd") == f"`/etc/passwd` is outside the file roots ({root}); only paths inside them are readable"
        assert await read(f"{root}/to-secret") == escape.format(f"{root}/to-secret")
        assert await read(f"{root}/relative-escape") == escape.format(f"{root}/relative-escape")
        assert await read(f"{root}/to-shadow") == escape.format(f"{root}/to-shadow")
        assert await read(f"{root}/to-outside-dir/secret.txt") == escape.format(f"{root}/to-outside-dir/secret.txt")
        assert await refusal(session, "files_list", {"path": f"{root}/to-outside-dir"}, never_showing=SECRET) == escape.format(f"{root}/to-outside-dir")
        assert await read(f"/proc/self/root{root}/notes.txt") == f"`/proc/self/root{root}/notes.txt` is outside the file roots ({root}); only paths inside them are readable"
        assert await read(f"{root}/loop-a") == f"`{root}/loop-a` goes through a symlink loop (or too many symlinks)"
        assert await read(f"{root}/fifo") == f"`{root}/fifo` is a fifo, not a regular file; only regular files are read"
        assert await read(f"{root}/null-device") == f"`{root}/null-device` is a char device, not a regular file; only regular files are read"
        assert await read(f"{root}/no\x00where") == "the path contains a NUL byte; no file name can"
        long = f"{root}/" + "a" * 5000
        assert await read(long) == f"the path is {len(long)} bytes; the longest path Linux opens is 4096"
        assert await read(f"{root}/binary.bin") == f"`{root}/binary.bin` looks binary (a NUL byte at offset 5); files_stat gives its type, size and SHA-256"
        assert await read(f"{root}/.env") == f"`{root}/.env` is on the deny list (`**/.env`); it is never read"
        assert await read(f"{root}/to-env") == f"`{root}/to-env` is on the deny list (`**/.env`); it is never read"
        assert await read("notes.txt") == f"`notes.txt` is not absolute: give a full path inside a root ({root})"
        assert await read(f"{root}/missing.txt") == f"`{root}/missing.txt` does not exist"
        listing = await call(session, "files_list", {"path": str(root), "hidden": True})
        link = await call(session, "files_stat", {"path": f"{root}/to-secret"})
    names = {entry["name"] for entry in listing["entries"]}
    assert "bad-\\xff-name.txt" in names, "an invalid UTF-8 name is shown with its byte escaped"
    assert link["type"] == "symlink" and link["symlink_target"] == str(outside / "secret.txt")


async def test_a_symlink_swapped_in_during_reads_never_leaks(binary, tree):
    """A thread flips a path between a file inside the root and a symlink to the secret while
    reads run: every answer is the inside file or a refusal, never the secret."""
    root, outside, config = tree
    target = root / "flip"
    inside = root / "inside.txt"
    inside.write_text("inside\n")
    stop = threading.Event()

    def flipper():
        while not stop.is_set():
            for source in (outside / "secret.txt", inside):
                tmp = root / "flip.tmp"
                try:
                    tmp.unlink()
                except FileNotFoundError:
                    pass
                tmp.symlink_to(source)
                tmp.rename(target)

    thread = threading.Thread(target=flipper)
    thread.start()
    answers = []
    try:
        async with stdio_session(binary, "--config", str(config)) as session:
            for _ in range(200):
                result = await session.call_tool("files_read", {"path": str(target)})
                answers.append(result.content[0].text)
    finally:
        stop.set()
        thread.join()
    assert not [text for text in answers if SECRET in text]
    assert any("inside" in text for text in answers)


async def test_a_sparse_10_gb_file_is_read_within_caps(binary, tmp_path):
    root = tmp_path / "sparse"
    root.mkdir()
    big = root / "big.log"
    with open(big, "wb") as file:
        file.truncate(10 * 1024**3)
        file.seek(10 * 1024**3 - 13)
        file.write(b"\nlast line 1\n")
    config = make_config(f'[files]\nroots = ["{root}"]\n')
    async with stdio_session(binary, "--config", str(config)) as session:
        started = time.monotonic()
        tail = await call(session, "files_tail", {"path": str(big), "lines": 1})
        tail_seconds = time.monotonic() - started
        head = await refusal(session, "files_read", {"path": str(big), "max_bytes": 1024}, never_showing=SECRET)
        huge = await call(session, "files_read", {"path": str(big), "offset": 10 * 1024**3 - 12, "max_bytes": 10**12})
    assert tail["content"] == "last line 1\n" and tail["size_bytes"] == 10 * 1024**3
    assert tail_seconds < 5, "a tail reads from the end, not the whole file"
    assert head.endswith("looks binary (a NUL byte at offset 0); files_stat gives its type, size and SHA-256")
    assert huge["content"] == "last line 1\n" and "total_lines" not in huge
    assert huge["notes"] == ["max_bytes 1000000000000 is over this server's limit: gave at most 262144"]


async def test_tail_follow_returns_what_was_appended(binary, tree):
    root, _, config = tree
    log = root / "logs" / "app.log"

    async def append_later():
        # Appended while the tail follows (follow_seconds 2), after its first read of the file.
        await asyncio.sleep(0.6)
        with open(log, "a") as file:
            file.write("appended line\n")

    async with stdio_session(binary, "--config", str(config)) as session:
        writer = asyncio.ensure_future(append_later())
        tail = await call(session, "files_tail", {"path": str(log), "lines": 1, "follow_seconds": 2})
        await writer
    assert tail["content"] == "ok\n"
    assert tail["appended"] == "appended line\n"


async def test_file_tools_over_http(binary, tree):
    root, _, _ = tree
    server = start_server(binary, "--http", "127.0.0.1:0", config=f'[files]\nroots = ["{root}"]\n', role="viewer")
    try:
        async with connect("http", binary, server.url, None, server.token) as session:
            await session.initialize()
            read = await call(session, "files_read", {"path": f"{root}/logs/app.log"})
            search = await call(session, "files_search", {"path": str(root), "content": "disk full"})
    finally:
        assert server.stop() == 0
    assert read["content"] == "start\nERROR disk full\nok\n"
    assert [hit["line"] for hit in search["results"]] == [2]


async def test_big_reads_are_held_to_the_output_cap(binary, tmp_path):
    """A file's text appears twice in an answer and JSON escaping can grow it: reads are held so
    the answer fits limits.max_output_bytes (64 KiB by default) and say where to go on."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "plain.log").write_text("".join(f"line {n:06}\n" for n in range(40_000)))
    (root / "tabs.log").write_bytes(b"\t\x01\"\\\n" * 60_000)
    config = make_config(f'[files]\nroots = ["{root}"]\n')
    async with stdio_session(binary, "--config", str(config)) as session:
        plain = await call(session, "files_read", {"path": f"{root}/plain.log"})
        escaped = await call(session, "files_read", {"path": f"{root}/tabs.log", "offset": 0, "max_bytes": 200_000})
        tail = await call(session, "files_tail", {"path": f"{root}/plain.log", "lines": 10_000})
        by_lines = await call(session, "files_read", {"path": f"{root}/plain.log", "start_line": 5, "lines": 9_000})
    held = "so the answer fits limits.max_output_bytes (65536); continue from where it ends"
    data = (root / "plain.log").read_bytes()
    assert plain["content"] == data[: plain["bytes_returned"]].decode() and plain["next_line"] > 1
    assert any(held in note for note in plain["notes"])
    assert 0 < escaped["bytes_returned"] < 32_768 and escaped["next_offset"] == escaped["bytes_returned"]
    assert any(held in note for note in escaped["notes"])
    assert tail["content"] == data[tail["offset"]:].decode() and 0 < tail["lines_returned"] < 10_000
    assert by_lines["content"].startswith("line 000004\n") and by_lines["next_line"] == 5 + by_lines["content"].count("\n")


# --- hostile contents: ignore files, FIFOs, swaps, descriptors, hard links -----------------------
#
# A root may hold whatever its writers put there. These tests start the server through a small
# wrapper that records its pid (for /proc/PID/status, /fd, /limits) and can lower its
# descriptor limits first, as `prlimit` would.

WRAPPER = (
    "import os, resource, sys\n"
    "pidfile, soft, hard = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])\n"
    "if soft >= 0:\n"
    "    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))\n"
    "open(pidfile, 'w').write(str(os.getpid()))\n"
    "os.execv(sys.argv[4], sys.argv[4:])\n"
)


def traced(pidfile: Path, nofile: tuple[int, int] | None = None) -> list[str]:
    """A wrapper for `stdio_session` that writes the server's pid to `pidfile` and, with
    `nofile`, starts it under that (soft, hard) RLIMIT_NOFILE."""
    soft, hard = nofile or (-1, -1)
    return [sys.executable, "-c", WRAPPER, str(pidfile), str(soft), str(hard)]


def proc_field(pid: int, name: str) -> int:
    """A `kB` field of /proc/PID/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {name} in /proc/{pid}/status")


def open_files_limit(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no open files limit in /proc/{pid}/limits")


def hostile_config(root: Path, files_extra: str = "", local_role: str = "viewer") -> Path:
    """A config for one root, a short call timeout (a hung call shows as a timeout, not a
    hang), room for a 5,000-entry tree in one answer, and a per-identity budget that lets one
    session send many calls at once."""
    return make_config(
        f'[files]\nroots = ["{root}"]\n{files_extra}\n'
        f'[security]\nlocal_role = "{local_role}"\n'
        "[limits]\ncall_timeout_seconds = 10\nmax_output_bytes = 4194304\n"
        "[limits.per_identity]\ncalls_per_minute = 1000000\nburst = 100000\nmax_concurrent = 64\n"
    )


LIBC = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> None:
    """renameat2(RENAME_EXCHANGE): the two names trade places atomically."""
    if LIBC.renameat2(AT_FDCWD, os.fsencode(str(a)), AT_FDCWD, os.fsencode(str(b)), RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(a))


class Swapper:
    """A thread that keeps exchanging pairs of names until stopped; counts its swaps."""

    def __init__(self, pairs: list[tuple[Path, Path]]):
        self.pairs, self.swaps, self.stop = pairs, 0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            for a, b in self.pairs:
                exchange(a, b)
                self.swaps += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def nobody_reads(fifo: Path) -> bool:
    """True when no process has `fifo` open for reading or waits in open() to read it: a
    non-blocking open for writing then fails with ENXIO."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ENXIO:
            return True
        raise
    os.close(fd)
    return False


async def timed(coroutine):
    started = time.monotonic()
    result = await coroutine
    return result, time.monotonic() - started


async def test_oversized_ignore_files_are_skipped_and_memory_stays_bounded(binary, tmp_path):
    """A 16 MiB .gitignore took one viewer's search to 1.5 GB RSS, and eight at once got the
    server OOM-killed: ignore files are read up to 1 MiB each, 256 and 8 MiB per search, and at
    most 64 KiB of distinct rules are compiled per search; what is skipped is noted."""
    root = tmp_path / "root"
    (root / "wild").mkdir(parents=True)
    (root / ".gitignore").write_bytes(b"a*b\n" * (4 * 1024 * 1024))
    # Under 1 MiB of text, but distinct wildcard rules that compile to ~400 MB.
    (root / "wild" / ".gitignore").write_text(
        "".join((f"{n}" + "*a?[bc]" * 700)[:4095] + "\n" for n in range(250))
    )
    # More ignore files than one search reads (each small and valid).
    for n in range(300):
        (root / "zz-many" / f"d{n:03}").mkdir(parents=True)
        (root / "zz-many" / f"d{n:03}" / ".gitignore").write_text(f"skip{n}.txt\n")
    (root / "zz-many" / "d000" / "found.txt").write_text("needle\n")
    (root / "keep.txt").write_text("needle\n")
    (root / "small").mkdir()
    (root / "small" / ".gitignore").write_text("*.log\n")
    (root / "small" / "x.log").write_text("needle\n")
    pidfile = tmp_path / "pid"
    arguments = {"path": str(root), "content": "needle", "gitignore": True, "timeout_seconds": 60}
    async with stdio_session(binary, "--config", str(hostile_config(root)), wrapper=traced(pidfile)) as session:
        pid = int(pidfile.read_text())
        answers = await asyncio.gather(*(call(session, "files_search", arguments) for _ in range(8)))
        peak_kib = proc_field(pid, "VmHWM")
    assert peak_kib < 200 * 1024, f"peak RSS {peak_kib} KiB"
    for answer in answers:
        paths = {hit["path"] for hit in answer["results"]}
        assert paths == {f"{root}/keep.txt", f"{root}/zz-many/d000/found.txt"}, paths
        notes = "\n".join(answer["notes"])
        assert f"ignore file `{root}/.gitignore` skipped: 16.0 MiB is over the 1.00 MiB read of an ignore file; its rules were not applied" in notes
        assert f"ignore file `{root}/wild/.gitignore` skipped: its 250 rules (1000 KiB) would take the search past 64.0 KiB of rules" in notes
        assert "ignore files not read: one search reads at most 256 of them, 8.00 MiB in all" in notes


async def test_a_fifo_gitignore_never_holds_a_thread(binary, tmp_path):
    """A FIFO named .gitignore blocked a thread in open() forever (600 calls filled the
    blocking pool): it is never opened, each search answers within its timeout, other calls
    answer meanwhile, and no thread of the server is left reading or waiting on the FIFO."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    os.mkfifo(root / ".gitignore")
    os.mkfifo(root / "sub" / ".gitignore")
    os.mkfifo(root / "sub" / "pipe.txt")
    (root / "sub" / "data.txt").write_text("needle\n")
    (root / "notes.txt").write_text("hello\n")
    arguments = {"path": str(root), "content": "needle", "gitignore": True, "hidden": True, "timeout_seconds": 3}
    async with stdio_session(binary, "--config", str(hostile_config(root))) as session:
        searches = [timed(call(session, "files_search", arguments)) for _ in range(6)]
        others = [
            timed(call(session, "files_read", {"path": f"{root}/notes.txt"})),
            timed(call(session, "system_overview", {})),
        ]
        results = await asyncio.gather(*searches, *others)
    for answer, seconds in results[:6]:
        assert seconds < 5, f"a search took {seconds:.1f} s"
        assert [hit["path"] for hit in answer["results"]] == [f"{root}/sub/data.txt"]
        assert f"ignore file `{root}/.gitignore` skipped: a fifo, not a regular file; its rules were not applied" in answer["notes"]
        assert f"ignore file `{root}/sub/.gitignore` skipped: a fifo, not a regular file; its rules were not applied" in answer["notes"]
    (read, read_seconds), (_, overview_seconds) = results[6:]
    assert read["content"] == "hello\n" and read_seconds < 3 and overview_seconds < 3
    for fifo in (root / ".gitignore", root / "sub" / ".gitignore", root / "sub" / "pipe.txt"):
        assert nobody_reads(fifo), f"the server holds {fifo} open"


async def test_fifos_swapped_in_mid_search_never_hold_a_thread(binary, tmp_path):
    """Files and a .gitignore keep trading places with FIFOs (renameat2 RENAME_EXCHANGE) while
    searches run: 6 of 16 searches hung in open() before; now every one answers within its
    timeout, a concurrent files_read answers, and the FIFOs are left with no reader."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    pairs = []
    for n in range(20):
        (root / f"data{n:02}.txt").write_text(f"needle {n}\n")
        os.mkfifo(root / f"pipe{n:02}")
        pairs.append((root / f"data{n:02}.txt", root / f"pipe{n:02}"))
    (root / "sub" / ".gitignore").write_text("*.log\n")
    os.mkfifo(root / "sub" / "fifo")
    pairs.append((root / "sub" / ".gitignore", root / "sub" / "fifo"))
    (root / "sub" / "kept.txt").write_text("needle kept\n")
    (root / "notes.txt").write_text("hello\n")
    arguments = {"path": str(root), "content": "needle", "gitignore": True, "timeout_seconds": 3}
    results = []
    async with stdio_session(binary, "--config", str(hostile_config(root))) as session:
        with Swapper(pairs) as swapper:
            for _ in range(2):
                batch = [timed(call(session, "files_search", arguments)) for _ in range(8)]
                batch.append(timed(call(session, "files_read", {"path": f"{root}/notes.txt"})))
                results.extend(await asyncio.gather(*batch))
    assert swapper.swaps > 100, f"only {swapper.swaps} swaps"
    searches = [(answer, seconds) for answer, seconds in results if "results" in answer]
    assert len(searches) == 16
    for answer, seconds in searches:
        assert seconds < 5, f"a search took {seconds:.1f} s"
        assert f"{root}/sub/kept.txt" in {hit["path"] for hit in answer["results"]}
    assert all(seconds < 3 for answer, seconds in results if "content" in answer)
    for a, b in pairs:
        fifo = a if a.is_fifo() else b
        assert nobody_reads(fifo), f"the server holds {fifo} open"


async def test_symlinks_exchanged_in_during_searches_never_leak_denied_content(binary, tmp_path):
    """renameat2(RENAME_EXCHANGE) swaps a file with a symlink to .env, a directory with one to
    .ssh, and a nested file with one to ../.env while searches and reads run: 60 hits of denied
    content came back under allowed names before. Entries are opened without following
    symlinks and each handle's real path is checked against the deny list."""
    env_secret, key_secret = "hunter2-env-5be1", "private-key-9d3a"
    root = tmp_path / "root"
    (root / ".ssh").mkdir(parents=True)
    (root / ".env").write_text(f"PASSWORD={env_secret}\n")
    (root / ".ssh" / "id_rsa").write_text(f"{key_secret}\n")
    (root / "benign.txt").write_text("benign marker\n")
    (root / "to-env").symlink_to(".env")
    (root / "sub").mkdir()
    (root / "sub" / "id_rsa").write_text("benign marker in sub\n")
    (root / "to-ssh").symlink_to(".ssh")
    (root / "nested").mkdir()
    (root / "nested" / "plain.txt").write_text("benign marker nested\n")
    (root / "nested" / "to-env").symlink_to("../.env")
    pairs = [
        (root / "benign.txt", root / "to-env"),
        (root / "sub", root / "to-ssh"),
        (root / "nested" / "plain.txt", root / "nested" / "to-env"),
    ]
    pattern = f"{env_secret}|{key_secret}|marker"
    answers = []
    async with stdio_session(binary, "--config", str(hostile_config(root))) as session:
        with Swapper(pairs) as swapper:
            for _ in range(60):
                result = await session.call_tool("files_search", {"path": str(root), "content": pattern})
                answers.append(result)
                for path in (f"{root}/benign.txt", f"{root}/sub/id_rsa", f"{root}/nested/plain.txt"):
                    answers.append(await session.call_tool("files_read", {"path": path}))
                    answers.append(await session.call_tool("files_tail", {"path": path, "lines": 1}))
    assert swapper.swaps > 100, f"only {swapper.swaps} swaps"
    texts = [json.dumps(result.structured_content) + result.content[0].text for result in answers]
    leaks = [text for text in texts if env_secret in text or key_secret in text]
    assert not leaks, f"{len(leaks)} answers carry denied content, e.g. {leaks[0][:300]}"
    found = [result.structured_content for result in answers[::7] if not result.is_error]
    assert any(hit["text"] == "benign marker" for answer in found for hit in answer["results"])


async def test_descriptors_per_search_are_bounded(binary, tmp_path):
    """A root with 3,000 subdirectories: one search (or tree) held a descriptor per
    subdirectory, and under a 1,024 limit another caller's files_read failed with "Too many
    open files". Now a search holds only the handles on its current path and a tree at most
    three; under `--nofile=1024:1024` every directory is searched and every concurrent read
    succeeds."""
    root = tmp_path / "root"
    root.mkdir()
    for n in range(3000):
        (root / f"d{n:04}").mkdir()
        (root / f"d{n:04}" / "f.txt").write_text("needle\n")
    (root / "notes.txt").write_text("hello\n")
    deep = root / "deep"
    deep.mkdir()
    for n in range(70):
        deep = deep / "x"
        deep.mkdir()
    (deep / "f.txt").write_text("needle\n")
    pidfile = tmp_path / "pid"
    counts: list[int] = []
    sampling = threading.Event()

    def sample(pid: int) -> None:
        while not sampling.is_set():
            try:
                counts.append(len(os.listdir(f"/proc/{pid}/fd")))
            except OSError:
                pass
            time.sleep(0.002)

    arguments = {"path": str(root), "content": "absent-word", "timeout_seconds": 120}
    async with stdio_session(binary, "--config", str(hostile_config(root)), wrapper=traced(pidfile, (1024, 1024))) as session:
        pid = int(pidfile.read_text())
        assert open_files_limit(pid) == (1024, 1024)
        sampler = threading.Thread(target=sample, args=(pid,), daemon=True)
        sampler.start()
        idle = len(os.listdir(f"/proc/{pid}/fd"))

        async def reads():
            answers = []
            for _ in range(40):
                answers.append(await session.call_tool("files_read", {"path": f"{root}/notes.txt"}))
                await asyncio.sleep(0.01)
            return answers

        tree = {"path": str(root), "depth": 2, "max_entries": 5000}
        searches = await asyncio.gather(
            *(call(session, "files_search", arguments) for _ in range(3)), call(session, "files_tree", tree), reads()
        )
        sampling.set()
        sampler.join()
    read_answers = searches.pop()
    tree_answer = searches.pop()
    # Breadth-first: the 3,002 top entries, then files of the first 1,998 subdirectories.
    assert tree_answer["entries"] == 5000 and tree_answer["cut"] is True
    assert [child["children"][0]["name"] for child in tree_answer["root"]["children"][:1998]] == ["f.txt"] * 1998
    for answer in searches:
        # notes.txt and the 3,000 f.txt; the one 71 levels down is past the depth bound.
        assert answer["files_searched"] == 3001 and answer.get("unreadable", 0) == 0, answer
        assert "1 directory more than 64 levels down was not searched; search from a deeper directory" in answer["notes"]
    failed = [result.content[0].text for result in read_answers if result.is_error]
    assert not failed, failed[:3]
    # Three searches at once, each at most 64 levels deep plus a file, and a tree: far below 1,024.
    assert max(counts) - idle < 3 * 70, f"descriptors: idle {idle}, peak {max(counts)}"


async def test_many_deep_searches_at_once_leave_descriptors_for_others(binary, tmp_path):
    """Sixty-four searches at once, each at the 64-level depth bound, held 1,024 descriptors and
    another caller's files_read failed with "Too many open files". Every file call now reserves
    what it may hold from one budget (half of the descriptor limit less 128): the searches wait
    their turn, and every read succeeds."""
    root = tmp_path / "root"
    deep = root
    for _ in range(64):
        deep = deep / "x"
    deep.mkdir(parents=True)
    (deep / "f.txt").write_text("needle\n")
    (root / "notes.txt").write_text("hello\n")
    pidfile = tmp_path / "pid"
    arguments = {"path": str(root), "content": "needle", "timeout_seconds": 60}
    config = hostile_config(root, local_role="viewer")
    # 64 searches and the reads beside them are all in flight at once (searches wait for the
    # budget): one identity, and the server, may hold more than 64 calls here.
    text = config.read_text().replace("call_timeout_seconds = 10", "call_timeout_seconds = 120")
    text = text.replace("[limits]\n", "[limits]\nmax_concurrent_calls = 128\n")
    config.write_text(text.replace("max_concurrent = 64", "max_concurrent = 128"))
    async with stdio_session(binary, "--config", str(config), wrapper=traced(pidfile, (1024, 1024))) as session:
        pid = int(pidfile.read_text())
        peak = [0]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                try:
                    peak[0] = max(peak[0], len(os.listdir(f"/proc/{pid}/fd")))
                except OSError:
                    pass
                time.sleep(0.002)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        async def reads():
            answers = []
            for _ in range(40):
                answers.append(await session.call_tool("files_read", {"path": f"{root}/notes.txt"}))
                await asyncio.sleep(0.02)
            return answers

        *searches, read_answers = await asyncio.gather(*(call(session, "files_search", arguments) for _ in range(64)), reads())
        sampling.set()
        sampler.join()
    failed = [result.content[0].text for result in read_answers if result.is_error]
    assert not failed, failed[:3]
    assert all(answer["files_searched"] == 2 for answer in searches), searches[0]
    assert peak[0] < 1024 - 64, f"peak {peak[0]} descriptors under a limit of 1,024"


async def test_the_server_raises_its_descriptor_soft_limit(binary, tmp_path):
    """Started with a soft RLIMIT_NOFILE of 256 under a hard limit of 4,096, the server raises
    its soft limit to the hard one."""
    root = tmp_path / "root"
    root.mkdir()
    pidfile = tmp_path / "pid"
    async with stdio_session(binary, "--config", str(hostile_config(root)), wrapper=traced(pidfile, (256, 4096))) as session:
        pid = int(pidfile.read_text())
        limits = open_files_limit(pid)
        await call(session, "files_list", {"path": str(root)})
    assert limits == (4096, 4096)


@pytest.mark.parametrize("refuse", [True, False])
async def test_hard_links_to_denied_files(binary, tmp_path, refuse):
    """A hard link gives a denied file an allowed name (`hl_env.txt` reads `.env`): the deny
    list cannot see it, as docs/security.md says. files.refuse_hardlinks = true refuses every
    regular file with more than one link in each tool that reads contents."""
    secret = "hunter2-hardlink-77c4"
    root = tmp_path / "root"
    (root / ".ssh").mkdir(parents=True)
    (root / ".env").write_text(f"PASSWORD={secret}\n")
    (root / ".ssh" / "id_ed25519").write_text(f"{secret}-key\n")
    os.link(root / ".env", root / "hl_env.txt")
    os.link(root / ".ssh" / "id_ed25519", root / "key-copy.txt")
    (root / "plain.txt").write_text("plain\n")
    config = hostile_config(root, f"refuse_hardlinks = {'true' if refuse else 'false'}")
    async with stdio_session(binary, "--config", str(config)) as session:
        plain = await call(session, "files_read", {"path": f"{root}/plain.txt"})
        results = {}
        for name in ("hl_env.txt", "key-copy.txt"):
            path = f"{root}/{name}"
            results[name] = [
                await session.call_tool("files_read", {"path": path}),
                await session.call_tool("files_tail", {"path": path}),
                await session.call_tool("files_stat", {"path": path, "sha256": True}),
            ]
        search = await call(session, "files_search", {"path": str(root), "content": secret})
        try:
            resource = (await session.read_resource(f"file://{root}/hl_env.txt")).contents[0].text
        except MCPError as error:
            resource = error.error
    assert plain["content"] == "plain\n"
    if refuse:
        for name, answers in results.items():
            for answer in answers:
                assert answer.is_error is True, answer
                assert answer.content[0].text == (
                    f"`{root}/{name}` has 2 hard links; this server reads no file with more than one "
                    "(files.refuse_hardlinks), since another of its names could be a denied file's"
                )
        assert search["results"] == [] and search["hardlinks_skipped"] == 2
        assert "2 files with more than one hard link skipped (files.refuse_hardlinks)" in search["notes"]
        assert resource.code == -32602 and "has 2 hard links" in resource.message
    else:
        # The documented limit of a deny list over names: the other name reads the content.
        assert results["hl_env.txt"][0].structured_content["content"] == f"PASSWORD={secret}\n"
        assert {hit["path"] for hit in search["results"]} == {f"{root}/hl_env.txt", f"{root}/key-copy.txt"}
        assert secret in resource


# --- names as the host has them: forged rows, bytes that are not UTF-8, backslashes ---------------


async def test_a_file_name_cannot_forge_rows_in_the_text(binary, tmp_path):
    """A name holding a newline printed as two rows ("1 entries" and a fake `root` row): every
    host string in text is escaped (render::text), one row per entry, and the count agrees."""
    root = tmp_path / "root"
    root.mkdir()
    forged = "x\n0644 root 1 MiB 2026-01-01 00:00 FAKE\x1b[2K\u202etxt.exe"
    (root / forged).write_text("hello\n")
    config = make_config(f'[files]\nroots = ["{root}"]\n')
    async with stdio_session(binary, "--config", str(config)) as session:
        listing = await session.call_tool("files_list", {"path": str(root)})
        tree_answer = await session.call_tool("files_tree", {"path": str(root)})
        search = await session.call_tool("files_search", {"path": str(root), "name": "x*"})
    shown = "x\\n0644 root 1 MiB 2026-01-01 00:00 FAKE\\x1b[2K\\u{202e}txt.exe"
    lines = listing.content[0].text.split("\n")
    assert lines[0] == f"{root}: 1 entry" and len(lines) == 2, lines
    assert lines[1].endswith(f" {shown}")
    assert listing.structured_content["entries"][0]["name"] == shown
    assert tree_answer.content[0].text.split("\n") == [str(root) + "/", f"  {shown}"]
    assert search.content[0].text.split("\n") == [f"{root}/{shown}", "1 result in 1 file searched"]
    for text in (listing.content[0].text, tree_answer.content[0].text, search.content[0].text):
        assert "\x1b" not in text and "\u202e" not in text


async def test_names_round_trip_through_every_file_tool(binary, tmp_path):
    """What a listing prints is accepted back: `bad\\xff.txt` (the byte 0xFF), a name with a
    real backslash (printed `\\\\`), and one with a newline, through files_stat, files_read,
    files_tail, files_list, files_search and the resource template (percent-encoded or as
    printed). An escape the server never writes is a clear error."""
    root = tmp_path / "root"
    (root / "dir\\name").mkdir(parents=True)
    raw = os.fsencode(str(root))
    names = {b"bad\xff.txt": "bad\\xff.txt", b"back\\slash.txt": "back\\\\slash.txt", b"new\nline.txt": "new\\nline.txt"}
    for name in names:
        with open(os.path.join(raw, name), "wb") as file:
            file.write(b"content of " + name.replace(b"\n", b"?") + b"\n")
    with open(os.path.join(raw, b"dir\\name", b"inner\xfe.txt"), "wb") as file:
        file.write(b"inner\n")
    config = make_config(f'[files]\nroots = ["{root}"]\n')
    async with stdio_session(binary, "--config", str(config)) as session:
        listing = await call(session, "files_list", {"path": str(root)})
        printed = sorted(entry["name"] for entry in listing["entries"])
        answers = {}
        for shown in printed:
            path = f"{root}/{shown}"
            if shown == "dir\\\\name":
                answers[shown] = [await call(session, "files_list", {"path": path}), await call(session, "files_stat", {"path": path})]
                continue
            answers[shown] = [
                await call(session, "files_stat", {"path": path}),
                await call(session, "files_read", {"path": path}),
                await call(session, "files_tail", {"path": path, "lines": 1}),
                (await session.read_resource(f"file://{path}")).contents[0].text,
            ]
        encoded = (await session.read_resource(f"file://{root}/bad%FF.txt")).contents[0].text
        backslash = (await session.read_resource(f"file://{root}/back%5Cslash.txt")).contents[0].text
        search = await call(session, "files_search", {"path": f"{root}/dir\\\\name", "name": "inner*"})
        bad_escape = await refusal(session, "files_stat", {"path": f"{root}/back\\slash.txt"}, never_showing=SECRET)
        with pytest.raises(MCPError) as raised:
            await session.read_resource(f"file://{root}/back\\slash.txt")
    assert printed == sorted([*names.values(), "dir\\\\name"])
    for name, shown in names.items():
        stat, read, tail, resource = answers[shown]
        expected = "content of " + os.fsdecode(name.replace(b"\n", b"?")).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") + "\n"
        assert stat["path"] == f"{root}/{shown}" and stat["size_bytes"] == len(b"content of " + name) + 1
        assert read["path"] == f"{root}/{shown}" and tail["path"] == f"{root}/{shown}"
        assert read["content"] == tail["content"] == resource == expected, (read, expected)
    assert encoded == answers["bad\\xff.txt"][1]["content"]
    assert backslash == answers["back\\\\slash.txt"][1]["content"]
    inner, inner_stat = answers["dir\\\\name"]
    assert [entry["name"] for entry in inner["entries"]] == ["inner\\xfe.txt"] and inner_stat["type"] == "directory"
    assert [hit["path"] for hit in search["results"]] == [f"{root}/dir\\\\name/inner\\xfe.txt"]
    assert bad_escape == (
        f"path `{root}/back\\slash.txt`: `\\s` at byte {len(str(root)) + 5} is not an escape this server writes "
        "(`\\\\` for a backslash, `\\xNN`, `\\n`, `\\r`, `\\t`, `\\u{XXXX}`); a backslash in a name is written `\\\\`"
    )
    assert raised.value.error.code == -32602 and "is not an escape this server writes" in raised.value.error.message


async def test_cuts_fall_between_characters_and_notes_say_what_was_held(binary, tmp_path):
    """`あ` x 100,000 read with max_bytes 100 ended in \\xe3 and counted it invalid; a tail of
    101 bytes started with \\x82. A `lines: 1` read of a small file said it was held to fit the
    output cap though nothing was held. Plurals agree with their counts."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "kana.txt").write_text("あ" * 100_000)
    (root / "small.txt").write_text("line1\nline2\nline3\n")
    (root / "one.txt").write_text("only\n")
    (root / "broken.txt").write_bytes(b"ok \xe3\x81 broken\n")
    config = make_config(f'[files]\nroots = ["{root}"]\n')
    async with stdio_session(binary, "--config", str(config)) as session:
        head = await call(session, "files_read", {"path": f"{root}/kana.txt", "offset": 0, "max_bytes": 100})
        by_lines = await call(session, "files_read", {"path": f"{root}/kana.txt", "max_bytes": 100})
        tiny = await call(session, "files_read", {"path": f"{root}/kana.txt", "offset": 0, "max_bytes": 1})
        tail = await call(session, "files_tail", {"path": f"{root}/kana.txt", "max_bytes": 101})
        small = await call(session, "files_read", {"path": f"{root}/small.txt", "lines": 1})
        broken = await call(session, "files_read", {"path": f"{root}/broken.txt"})
        one_tail = await session.call_tool("files_tail", {"path": f"{root}/one.txt", "lines": 1})
        one_read = await session.call_tool("files_read", {"path": f"{root}/one.txt"})
    assert head["content"] == "あ" * 33 and head["bytes_returned"] == 99 and head["next_offset"] == 99
    assert "invalid_bytes" not in head
    assert by_lines["content"] == "あ" * 33 and "invalid_bytes" not in by_lines
    assert by_lines["notes"] == ["line 1 is longer than the 100 bytes this answer holds; read the rest by offset 99"]
    assert tiny["content"] == "あ" and tiny["next_offset"] == 3
    assert tail["content"] == "あ" * 33 and tail["offset"] == 300_000 - 99 and "invalid_bytes" not in tail
    assert small["content"] == "line1\n" and small["next_line"] == 2 and "notes" not in small
    assert broken["invalid_bytes"] == 2 and broken["content"] == "ok \\xe3\\x81 broken\n"
    assert one_tail.content[0].text.startswith(f"{root}/one.txt: last 1 line (from byte 0 of 5)\n")
    assert one_read.content[0].text.startswith(f"{root}/one.txt: bytes 0-5 of 5, 1 line\n")


async def test_pages_fit_the_output_cap_so_the_cursor_skips_nothing(binary, tmp_path):
    """2,502 entries with long names, 400 a page: a page of 400 does not fit the default
    64 KiB answer, so it holds fewer, says so, and its next_cursor starts after the last entry
    it holds; walking the cursors yields every entry exactly once."""
    root = tmp_path / "root"
    root.mkdir()
    names = [f"{n:05d}-{'x' * 80}.log" for n in range(2502)]
    for name in names:
        (root / name).touch()
    config = make_config(f'[files]\nroots = ["{root}"]\n')
    seen, notes, cursor, pages = [], [], None, 0
    async with stdio_session(binary, "--config", str(config)) as session:
        while True:
            arguments = {"path": str(root), "limit": 400}
            if cursor:
                arguments["cursor"] = cursor
            result = await session.call_tool("files_list", arguments)
            assert result.is_error is False, result.content[0].text
            page = result.structured_content
            assert "truncated" not in page, "the gate had to cut a page"
            seen += [entry["name"] for entry in page["entries"]]
            notes += page.get("notes", [])
            pages += 1
            cursor = page.get("next_cursor")
            if not cursor or pages > 100:
                break
    assert seen == names
    assert pages > 2502 // 400 + 1, pages
    assert any("as many as fit limits.max_output_bytes" in note for note in notes), notes
