"""Bearer tokens over HTTP: created by the CLI, checked on every request, refused precisely
(401 + WWW-Authenticate) when missing, unknown, expired, revoked or put in the URL; roles
carried by tokens; secure defaults for listening beyond loopback."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from catalogue import OPERATOR_TOOLS, READ_TOOLS
from rawclient import bearer, modern_call, modern_list, modern_meta, post, unix_tool_names
from servers import TOKEN_RELOAD_WAIT, create_token, make_config, server_env, start_server, wait_for_record
from waiting import wait_until


def tokens_file(server) -> Path:
    return server.config.parent / "tokens.json"


def assert_audited_failure(server, detail: str, identity: str | None = None) -> dict:
    """The refusal is in the audit log: an auth event, with the reason and the peer."""
    record = wait_for_record(server, lambda r: r["event"] == "auth" and detail in r.get("detail", ""))
    assert record["decision"] == "auth_failed" and record["outcome"] == "auth_failed"
    assert record["transport"] == "http" and record["remote"].startswith("127.0.0.1:")
    assert record.get("identity") == identity
    return record


def assert_unauthorized(answer, error: str | None, message: str) -> None:
    assert answer.status == 401, answer.body
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="systemmanager"'), challenge
    if error is None:
        assert "error=" not in challenge, challenge
    else:
        assert f'error="{error}"' in challenge, challenge
    body = answer.json()
    assert body["error"]["code"] == -31401
    assert message in body["error"]["message"], body


def test_a_valid_token_is_accepted(http_server):
    answer = modern_list(http_server.url)
    assert answer.status == 200
    assert "process_signal" in [tool["name"] for tool in answer.json()["result"]["tools"]]


def test_no_token_is_401_without_an_error_code(http_server):
    assert_unauthorized(modern_list(http_server.url, auth=False), None, "this server requires a bearer token")
    assert_audited_failure(http_server, "this server requires a bearer token")


def test_an_unknown_token_is_401_invalid_token(http_server):
    forged = "smgr_" + "A" * 43
    answer = modern_list(http_server.url, {"Authorization": f"Bearer {forged}"})
    assert_unauthorized(answer, "invalid_token", "not known to this server")
    assert_audited_failure(http_server, "not known to this server")
    answer = modern_list(http_server.url, {"Authorization": "Bearer hunter2"})
    assert_unauthorized(answer, "invalid_token", "not a SystemManager token")
    assert_audited_failure(http_server, "not a SystemManager token")
    assert "hunter2" not in (http_server.config.parent / "audit.jsonl").read_text()


def test_another_scheme_is_401_invalid_request(http_server):
    answer = modern_list(http_server.url, {"Authorization": "Basic dXNlcjpwYXNz"})
    assert_unauthorized(answer, "invalid_request", "Authorization: Bearer")
    assert_audited_failure(http_server, "use `Authorization: Bearer <token>`")


def test_a_token_in_the_query_string_is_never_accepted(http_server):
    token = http_server.token
    for query in (f"?access_token={token}", f"?token={token}", f"?x={token}"):
        answer = modern_list(http_server.url + query, auth=False)
        assert_unauthorized(answer, "invalid_request", "never in the URL")
    # Not even alongside a valid header: a token in a URL has leaked into logs already.
    answer = post(
        http_server.url + f"?access_token={token}",
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": modern_meta()}},
        {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list", "Authorization": f"Bearer {token}"},
    )
    assert answer.status == 401
    assert_audited_failure(http_server, "never in the URL")
    assert token not in (http_server.config.parent / "audit.jsonl").read_text()
    # Spellings no pattern can list: the prefix percent-encoded, the prefix left off, any name.
    # /mcp takes no query string at all, whatever it holds and whatever header comes with it.
    encoded = "%73mgr_" + token.removeprefix("smgr_")
    bare = token.removeprefix("smgr_")
    for query in (f"?t={encoded}", f"?api_key={bare}", f"?k={bare[:20]}&v={bare[20:]}", "?x=1"):
        answer = post(
            http_server.url + query,
            {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": modern_meta()}},
            {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list", "Authorization": f"Bearer {token}"},
        )
        assert_unauthorized(answer, "invalid_request", "no query string")


def test_a_revoked_token_is_refused_within_a_second(binary, http_server):
    assert modern_list(http_server.url).status == 200
    result = subprocess.run(
        [str(binary), "token", "revoke", "test", "--config", str(http_server.config)],
        capture_output=True, text=True, env=server_env(),
    )
    assert result.returncode == 0, result.stderr
    # The promise under test: a revocation counts within the server's token reload interval.
    time.sleep(TOKEN_RELOAD_WAIT)
    assert_unauthorized(modern_list(http_server.url), "invalid_token", "the token `test` was revoked at")
    assert_audited_failure(http_server, "was revoked at", identity="token:test")


def test_an_expired_token_is_refused(binary, http_server):
    """Time passing is simulated by moving the token's expiry into the past in its file."""
    path = tokens_file(http_server)
    data = json.loads(path.read_text())
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    data["tokens"][0]["expires"] = past.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    path.write_text(json.dumps(data))
    # Not probed: the expiry must count from the first request after the reload interval.
    time.sleep(TOKEN_RELOAD_WAIT)
    assert_unauthorized(modern_list(http_server.url), "invalid_token", "the token `test` expired at")
    assert_audited_failure(http_server, "expired at", identity="token:test")


def test_a_viewer_token_neither_sees_nor_may_call_write_tools(binary, http_server):
    viewer = create_token(binary, http_server.config, name="reader", role="viewer")
    # Not probed: a probe's call would write the `token:reader` log line checked below.
    time.sleep(TOKEN_RELOAD_WAIT)
    headers = {"Authorization": f"Bearer {viewer}"}
    names = [tool["name"] for tool in modern_list(http_server.url, headers).json()["result"]["tools"]]
    assert names == READ_TOOLS
    answer = modern_call(http_server.url, "process_signal", {"pid": 1, "signal": "TERM"}, headers=headers)
    assert answer.status == 200
    result = answer.json()["result"]
    assert result["isError"] is True
    assert result["content"][0]["text"].startswith(
        "permission denied: process_signal needs the `operate` tier; role `viewer` grants: read"
    )
    http_server.stop()
    assert 'identity=token:reader role="viewer"' in http_server.log
    record = next(r for r in http_server.audit() if r.get("tool") == "process_signal")
    assert (record["identity"], record["role"], record["decision"], record["tier"]) == ("token:reader", "viewer", "denied", "operate")
    assert record["detail"].startswith("permission denied: process_signal needs the `operate` tier")


def test_token_files_hold_hashes_only_with_mode_0600(binary, tmp_path):
    config = make_config()
    secret = create_token(binary, config, name="ci", role="viewer")
    path = config.parent / "tokens.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_text()
    assert secret not in text and secret[5:] not in text
    assert secret.startswith("smgr_") and len(secret) == 48


def test_token_list_shows_when_a_token_was_last_used_never_its_secret(binary):
    server = start_server(binary, "--http", "127.0.0.1:0")
    assert modern_list(server.url).status == 200
    assert server.stop() == 0  # the server records last use on the way out
    result = subprocess.run(
        [str(binary), "token", "list", "--config", str(server.config)], capture_output=True, text=True, env=server_env()
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "CREATED", "EXPIRES", "LAST", "USED", "STATUS"]
    row = lines[1]
    assert row.startswith("test") and "operator" in row and row.endswith("active")
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert row.count(today) >= 2, row  # created and last used today
    assert server.token not in result.stdout


def test_token_create_refuses_unknown_roles_and_bad_lifetimes(binary):
    config = make_config()
    for args, message in [
        (["--name", "x", "--role", "root"], "no role is named `root`"),
        (["--name", "x", "--role", "viewer", "--expires", "5y"], "is not a lifetime"),
        (["--name", "bad name", "--role", "viewer"], "is not a token name"),
    ]:
        command = [str(binary), "token", "create", *args, "--config", str(config)]
        result = subprocess.run(command, capture_output=True, text=True, env=server_env())
        assert result.returncode == 1, (args, result.stdout)
        assert message in result.stderr, result.stderr
        assert result.stdout == ""


def test_the_unix_socket_needs_no_token_but_honours_one(binary, tmp_path):
    socket_path = tmp_path / "mcp.sock"
    server = start_server(binary, "--unix", str(socket_path), role=None)
    viewer = create_token(binary, server.config, name="reader", role="viewer")
    wait_until(lambda: unix_tool_names(socket_path, bearer(viewer))[0] == 200, interval=0.1)  # the server rereads its tokens
    assert unix_tool_names(socket_path) == (200, OPERATOR_TOOLS)  # local user
    assert unix_tool_names(socket_path, {"Authorization": f"Bearer {viewer}"}) == (200, READ_TOOLS)
    assert server.stop() == 0


def test_plaintext_beyond_loopback_is_refused_unless_configured(binary):
    config = make_config()
    result = subprocess.run(
        [str(binary), "serve", "--http", "0.0.0.0:0", "--config", str(config)],
        capture_output=True, text=True, env=server_env(), timeout=10,
    )
    assert result.returncode == 1
    assert "refusing to serve plaintext HTTP on 0.0.0.0:0" in result.stderr
    assert "tailscale serve" in result.stderr

    server = start_server(binary, "--http", "0.0.0.0:0", config="[http]\nallow_plaintext = true\n")
    try:
        assert server.url.startswith("http://0.0.0.0:")
    finally:
        assert server.stop() == 0


def test_a_first_start_without_tokens_says_how_to_create_one(binary):
    server = start_server(binary, "--http", "127.0.0.1:0", role=None)
    try:
        assert "no active tokens in" in server.log
        assert "systemmanager token create --name laptop --role viewer" in server.log
    finally:
        assert server.stop() == 0
