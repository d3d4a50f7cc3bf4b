"""Per-identity rate limits and concurrency bounds over HTTP: 429 with Retry-After for the noisy
identity, while another identity still gets through."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from groundtruth import threads_opening_a_fifo
from rawclient import bearer, modern_call
from servers import TOKEN_RELOAD_WAIT, create_token, held_proc, start_server
from waiting import wait_until


def test_a_flood_gets_429_while_another_identity_gets_through(binary):
    server = start_server(
        binary, "--http", "127.0.0.1:0",
        config="[limits.per_identity]\ncalls_per_minute = 30\nburst = 5\n",
    )
    try:
        noisy = create_token(binary, server.config, name="noisy", role="viewer")
        quiet = create_token(binary, server.config, name="quiet", role="viewer")
        # Not probed: a probe would spend the burst the statuses below count.
        time.sleep(TOKEN_RELOAD_WAIT)
        statuses = []
        refused = None
        for request_id in range(15):
            answer = modern_call(server.url, "system_overview", {}, request_id, headers=bearer(noisy))
            statuses.append(answer.status)
            if answer.status == 429:
                refused = answer
        assert statuses[:5] == [200] * 5, statuses
        assert statuses[5:].count(429) >= 9, statuses
        assert int(refused.headers["retry-after"]) >= 1
        error = refused.json()["error"]
        assert error["code"] == -31429
        assert error["message"].startswith("rate limit: token:noisy may make 30 calls per minute (role viewer); retry in")
        assert refused.json()["id"] == 14

        for request_id in range(5):
            answer = modern_call(server.url, "system_overview", {}, request_id, headers=bearer(quiet))
            assert answer.status == 200, answer.body
            assert answer.json()["result"]["isError"] is False
    finally:
        server.stop()
    assert 'outcome="rate_limited"' in server.log
    limited = [r for r in server.audit() if r["decision"] == "rate_limited"]
    # Five written one by one, the rest of a flood counted in one summary (the audit log must
    # not be a way to flood the disk).
    written = [r for r in limited if "suppressed" not in r]
    assert len(written) == min(5, statuses.count(429))
    assert len(written) + sum(r.get("suppressed", 0) for r in limited) == statuses.count(429)
    assert all(r["identity"] == "token:noisy" and r["tool"] == "system_overview" for r in limited)
    assert written[0]["detail"].startswith("rate limit:")
    assert not any(r.get("identity") == "token:quiet" and r["decision"] != "allowed" for r in server.audit())


def test_one_identity_at_its_concurrency_limit_does_not_block_another(binary, tmp_path):
    # system_overview blocks reading a FIFO standing in for /proc/meminfo: calls stay in flight.
    proc = held_proc(tmp_path)
    server = start_server(
        binary, "--http", "127.0.0.1:0",
        config=f'[host]\nproc = "{proc}"\n[limits]\nmax_concurrent_calls = 4\n[limits.per_identity]\nmax_concurrent = 2\n',
    )
    held = []
    try:
        noisy = create_token(binary, server.config, name="noisy", role="operator")
        quiet = create_token(binary, server.config, name="quiet", role="operator")
        # Not probed: a probe's system_overview would be held on the FIFO, the very bound tested.
        time.sleep(TOKEN_RELOAD_WAIT)
        for request_id in range(2):
            thread = threading.Thread(
                target=modern_call, args=(server.url, "system_overview", {}, request_id), kwargs={"headers": bearer(noisy)},
                daemon=True,
            )
            thread.start()
            held.append(thread)
        wait_until(lambda: threads_opening_a_fifo(server.process.pid) >= 2)  # both calls are held
        third = modern_call(server.url, "system_overview", {}, 3, headers=bearer(noisy))
        assert third.status == 429, third.body
        assert "token:noisy already has 2 calls in flight" in third.json()["error"]["message"]
        # The other identity is admitted: its call runs (and answers at once, without /proc/meminfo).
        other = modern_call(server.url, "process_signal", {"pid": 4000000, "signal": "TERM"}, 4, headers=bearer(quiet))
        assert other.status == 200, other.body
        assert "result" in other.json(), other.body
    finally:
        with open(proc / "meminfo", "w") as fifo:
            fifo.write(Path("/proc/meminfo").read_text())
        for thread in held:
            thread.join(5)
        server.stop()
