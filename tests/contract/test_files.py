"""The file tools through the official client: what they answer inside a root, and the
hostile suite — every path trick must fail with its exact error and leak nothing outside."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import make_config, start_server
from sdk import connect, stdio_session

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


async def call(session, tool, arguments):
    result = await session.call_tool(tool, arguments)
    assert result.is_error is False, result.content[0].text
    return result.structured_content


async def refusal(session, tool, arguments) -> str:
    result = await session.call_tool(tool, arguments)
    assert result.is_error is True, result.structured_content
    text = result.content[0].text
    assert SECRET not in text
    return text


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
        bad_regex = await refusal(session, "files_search", {"path": str(root), "content": "(unclosed"})
        neither = await refusal(session, "files_search", {"path": str(root)})
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
    escape = f"`{{}}` leads outside its root (through `..` or a symlink); only what is inside a root is readable"
    async with stdio_session(binary, "--config", str(config)) as session:
        read = lambda path: refusal(session, "files_read", {"path": path})
        assert await read(f"{root}/../outside/secret.txt") == escape.format(f"{root}/../outside/secret.txt")
        assert await read(str(outside / "secret.txt")) == f"`{outside}/secret.txt` is outside the file roots ({root}); only paths inside them are readable"
        assert await read("/etc/passwd") == f"`/etc/passwd` is outside the file roots ({root}); only paths inside them are readable"
        assert await read(f"{root}/to-secret") == escape.format(f"{root}/to-secret")
        assert await read(f"{root}/relative-escape") == escape.format(f"{root}/relative-escape")
        assert await read(f"{root}/to-shadow") == escape.format(f"{root}/to-shadow")
        assert await read(f"{root}/to-outside-dir/secret.txt") == escape.format(f"{root}/to-outside-dir/secret.txt")
        assert await refusal(session, "files_list", {"path": f"{root}/to-outside-dir"}) == escape.format(f"{root}/to-outside-dir")
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
        head = await refusal(session, "files_read", {"path": str(big), "max_bytes": 1024})
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
