"""The audit log against the attacks an adversarial review made on it: a flood of refused requests
with huge headers that rotated every real record away, a log cut at its start or truncated,
deleted while the server ran, refusals that left no record, and several servers appending to one
file. Each test is the attack as it was made, against a real server, checked with the file and
`audit verify`."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from rawclient import StdioSession, bearer, modern_call, modern_meta, post, wait_for_token
from servers import audit_records, audit_verify, create_token, make_config, start_server
from waiting import wait_until


def raw_request(url: str, head: str, body: bytes = b"") -> bytes:
    """One request written by hand on its own connection; the whole reply."""
    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
    return reply


def log_calls(binary: Path, config: Path, count: int) -> None:
    """`count` system_overview calls through one stdio server run with `config`."""
    session = StdioSession(binary, "--config", str(config))
    session.initialize()
    for request_id in range(count):
        session.request({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": "system_overview", "arguments": {}}})
    assert session.close() == 0


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_flood_with_huge_origin_headers_cannot_rotate_real_records_away(binary):
    # Small files, so that the flood as it was made (390 KB a request) would rotate everything
    # away many times over if each refusal were written whole.
    server = start_server(binary, "--http", "127.0.0.1:0", config="[audit]\nmax_bytes = 1048576\nkeep = 2\n")
    assert modern_call(server.url, "system_overview", {}, 1).status == 200
    huge = "http://" + "a" * (390 * 1024)
    parsed = urlparse(server.url)

    def flood(count: int) -> None:
        for _ in range(count):
            reply = raw_request(
                server.url,
                f"POST /mcp HTTP/1.1\r\nHost: {parsed.hostname}:{parsed.port}\r\nOrigin: {huge}\r\n"
                "Content-Length: 2\r\nConnection: close\r\n\r\n",
                b"{}",
            )
            assert reply.startswith(b"HTTP/1.1 403"), reply[:200]

    workers = [threading.Thread(target=flood, args=(75,)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert server.stop() == 0
    log = server.config.parent / "audit.jsonl"
    assert not Path(f"{log}.1").exists(), "the flood rotated the log"
    assert log.stat().st_size < 200_000, log.stat().st_size
    records = audit_records(server.config)
    assert records[0]["tool"] == "system_overview" and records[0]["outcome"] == "ok"
    refusals = [r for r in records if r["event"] == "request"]
    written = [r for r in refusals if "suppressed" not in r]
    summaries = [r for r in refusals if "suppressed" in r]
    assert 1 <= len(written) <= 5, len(written)
    # Every refusal is accounted for: written one by one, or counted in a summary.
    assert len(written) + sum(r["suppressed"] for r in summaries) == 300
    # A long field keeps its head, its length and its hash, never the attacker's megabytes.
    assert all(len(json.dumps(r)) < 4096 for r in refusals)
    # The refusal quotes 200 characters of the header, escaped, and marks the cut.
    assert "aaaa…` is not allowed" in written[0]["detail"]
    assert audit_verify(binary, log).returncode == 0
    # The server's own log follows the audit log: a line per refusal written one by one, none
    # for those counted, each quoting 200 characters of the header.
    refused_lines = [line for line in server.log.splitlines() if "refused HTTP request" in line]
    assert 1 <= len(refused_lines) <= 5 and all(len(line) < 1000 for line in refused_lines), len(refused_lines)


def test_a_flood_of_calls_past_the_rate_limit_is_summarised(binary):
    server = start_server(
        binary, "--http", "127.0.0.1:0",
        config="[audit]\nmax_bytes = 65536\nkeep = 1\n[limits.per_identity]\nburst = 2\ncalls_per_minute = 1\n",
    )
    statuses = [modern_call(server.url, "system_overview", {}, n).status for n in range(400)]
    assert statuses.count(200) == 2 and statuses.count(429) == 398
    assert server.stop() == 0
    log = server.config.parent / "audit.jsonl"
    assert not Path(f"{log}.1").exists(), "the flood rotated the log"
    limited = [r for r in audit_records(server.config) if r["decision"] == "rate_limited"]
    written = [r for r in limited if "suppressed" not in r]
    assert len(written) == 5
    assert sum(r.get("suppressed", 0) for r in limited) + len(written) == 398
    assert all(r["identity"] == "token:test" for r in limited)


def test_requests_that_are_not_http_leave_a_record(binary):
    server = start_server(binary, "--http", "127.0.0.1:0")
    parsed = urlparse(server.url)
    for garbage in (b"HELLO WORLD\r\n\r\n", b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"):
        with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(15)
            try:
                while sock.recv(65536):
                    pass
            except ConnectionResetError:
                pass
    # Each refusal is recorded as its connection ends, which may be after the client saw the end.
    wait_until(lambda: [r["outcome"] for r in audit_records(server.config)].count("malformed_request") >= 3)
    assert server.stop() == 0
    malformed = [r for r in audit_records(server.config) if r["outcome"] == "malformed_request"]
    assert len(malformed) == 3, audit_records(server.config)
    assert all(r["remote"].startswith("127.0.0.1:") and "HTTP/1.1" in r["detail"] for r in malformed)


def test_an_emptied_log_does_not_verify(binary, tmp_path):
    config = make_config()
    session = StdioSession(binary, "--config", str(config))
    session.initialize()
    assert session.close() == 0
    log = config.parent / "audit.jsonl"
    assert json.loads(log.read_text().splitlines()[0])["outcome"] == "started", "a log begins at once"
    log.write_text("")
    result = audit_verify(binary, log)
    assert result.returncode == 1 and "empty: it holds no records" in result.stdout, result.stdout


def test_a_log_cut_at_its_start_does_not_verify(binary, tmp_path):
    config = make_config()
    log_calls(binary, config, 60)
    lines = (config.parent / "audit.jsonl").read_text().splitlines(keepends=True)
    assert audit_verify(binary, config.parent / "audit.jsonl").returncode == 0
    for first in (50, 1):  # `tail -n +51`, and only the first line (the log's start) removed
        cut = tmp_path / f"cut-{first}.jsonl"
        cut.write_text("".join(lines[first:]))
        result = audit_verify(binary, cut)
        assert result.returncode == 1, result.stdout
        assert f"{cut}:1: cut at the start: the first record is seq {first + 1}" in result.stdout


def test_a_rotated_log_whose_oldest_kept_file_was_cut_does_not_verify(binary, tmp_path):
    config = make_config("[audit]\nmax_bytes = 4096\nkeep = 2\n")
    log_calls(binary, config, 80)
    log = config.parent / "audit.jsonl"
    files = [Path(f"{log}.2"), Path(f"{log}.1"), log]
    assert audit_verify(binary, *files).returncode == 0
    assert Path(f"{log}.anchor").exists(), "rotation keeps the last hash of the file it deleted"
    oldest = files[0].read_text().splitlines(keepends=True)
    files[0].write_text("".join(oldest[3:]))
    result = audit_verify(binary, *files)
    assert result.returncode == 1 and "cut at the start" in result.stdout, result.stdout


def test_a_log_deleted_or_truncated_while_the_server_runs_says_so(binary):
    server = start_server(binary, "--http", "127.0.0.1:0")
    log = server.config.parent / "audit.jsonl"
    for request_id in range(3):
        assert modern_call(server.url, "system_overview", {}, request_id).status == 200
    log.unlink()
    assert modern_call(server.url, "system_overview", {}, 10).status == 200
    assert log.exists(), "the server noticed and reopened the file"
    first = lines_of(log)[0]
    assert first["event"] == "log" and first["outcome"] == "reopened" and first["seq"] == 5
    assert "deleted" in first["detail"]
    result = audit_verify(binary, log)
    assert result.returncode == 1 and "deleted or replaced while it ran" in result.stdout, result.stdout

    with open(log, "r+b") as handle:  # truncated in place
        handle.truncate(0)
    assert modern_call(server.url, "system_overview", {}, 11).status == 200
    first = lines_of(log)[0]
    assert first["outcome"] == "truncated" and "shrank" in first["detail"], first
    result = audit_verify(binary, log)
    assert result.returncode == 1 and "cut while it ran" in result.stdout, result.stdout
    assert server.stop() == 0


def test_every_refused_request_leaves_one_record(binary):
    server = start_server(binary, "--http", "127.0.0.1:0")
    as_viewer = bearer(create_token(binary, server.config, name="viewer", role="viewer"))
    wait_for_token(server.url, as_viewer)
    # A KILL body under a header that names a harmless tool.
    body = {
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "process_signal", "arguments": {"pid": 1, "signal": "KILL"}, "_meta": modern_meta()},
    }
    mismatch = post(
        server.url, body,
        {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "system_overview", **as_viewer},
    )
    assert mismatch.status == 400, mismatch.body
    assert post(server.url, "{not json").status == 400
    unknown = {"jsonrpc": "2.0", "id": 8, "method": "no/such_method", "params": {"_meta": modern_meta()}}
    assert post(server.url, unknown, {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "no/such_method"}).status == 404
    parsed = urlparse(server.url)
    reply = raw_request(
        server.url,
        f"POST /mcp HTTP/1.1\r\nHost: {parsed.hostname}:{parsed.port}\r\nX-Big: {'b' * 500_000}\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 431"), reply[:100]
    # The last refusal is recorded as its connection ends, which may be after the client saw the end.
    wait_until(lambda: any(r["outcome"] == "headers_too_large" for r in audit_records(server.config)))
    assert server.stop() == 0
    records = audit_records(server.config)
    outcomes = [(r.get("identity"), r["outcome"]) for r in records if r["event"] == "request"]
    assert ("token:viewer", "http_400") in outcomes, outcomes
    named = next(r for r in records if r["outcome"] == "http_400")
    assert named["tool"] == "process_signal" and "Mcp-Name" in named["detail"], named
    assert ("token:test", "invalid_json") in outcomes, outcomes
    unknown_refused = [r for r in records if r["event"] == "request" and "no/such_method" in r.get("detail", "")]
    assert len(unknown_refused) == 1 and unknown_refused[0]["identity"] == "token:test", records
    assert (None, "headers_too_large") in outcomes, outcomes
    # The KILL was refused before any tool ran: its only record is the refusal.
    assert [r["tool"] for r in records if r["event"] == "call"] == ["system_overview"] * len(
        [r for r in records if r["event"] == "call"]
    )


def test_several_servers_appending_to_one_log_keep_one_chain(binary, tmp_path):
    log = tmp_path / "shared" / "audit.jsonl"
    config = make_config(
        f'[audit]\npath = "{log}"\nmax_bytes = 65536\nkeep = 100\n'
        "[limits.per_identity]\nburst = 1000\ncalls_per_minute = 100000\n"  # every call is let through
    )
    sessions = [StdioSession(binary, "--config", str(config)) for _ in range(3)]
    for session in sessions:
        session.initialize()

    def calls(session: StdioSession) -> None:
        for request_id in range(200):
            answer = session.request({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": "memory_usage", "arguments": {}}})
            assert "result" in answer

    workers = [threading.Thread(target=calls, args=(session,)) for session in sessions]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert all(session.close() == 0 for session in sessions)
    rotated = sorted(
        (path for path in log.parent.iterdir() if path.name.rsplit(".", 1)[-1].isdigit()),
        key=lambda path: -int(path.name.rsplit(".", 1)[-1]),
    )
    assert rotated, "the test is meant to rotate with several writers"
    result = audit_verify(binary, *rotated, log)
    assert result.returncode == 0, result.stdout
    records = [record for path in [*rotated, log] for record in lines_of(path)]
    calls_recorded = [r for r in records if r.get("tool") == "memory_usage"]
    assert len(calls_recorded) == 600
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    # Each server kept its own records' order, and every record names a distinct seq.
    assert len({r["seq"] for r in records}) == len(records)
    assert os.stat(log).st_mode & 0o777 == 0o600
