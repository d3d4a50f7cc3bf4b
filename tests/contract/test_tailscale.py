"""Tailscale identity: callers forwarded by `tailscale serve` are identified with tailscaled's
whois (a stand-in here), given the highest role their grants and the login list allow; identity
headers from any other peer are ignored; a failed whois denies."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from catalogue import OPERATOR_TOOLS as HOST_OPERATOR_TOOLS
from catalogue import READ_TOOLS as HOST_READ_TOOLS
from catalogue import TAILSCALE_TOOLS
from rawclient import modern_call, modern_list, modern_meta, tool_names, unix_tool_names
from servers import start_server, wait_for_record
from tailscaled import FakeTailscaled, whois

CAPABILITY = "example.com/cap/systemmanager"
# With [tailscale] enabled, the server also offers tailscale_status (read tier).
READ_TOOLS = [*HOST_READ_TOOLS, *TAILSCALE_TOOLS]
OPERATOR_TOOLS = [*HOST_OPERATOR_TOOLS, *TAILSCALE_TOOLS]


@pytest.fixture
def tailscaled(tmp_path):
    daemon = FakeTailscaled(
        tmp_path / "tailscaled.sock",
        {
            "100.64.0.1": whois("alice@example.com", "laptop", "100.64.0.1", {CAPABILITY: [{"role": "operator"}]}),
            "100.64.0.2": whois("carol@example.com", "phone", "100.64.0.2", {CAPABILITY: [{"role": "viewer"}]}),
            "100.64.0.3": whois("dave@example.com", "desktop", "100.64.0.3", {"example.com/cap/other": [{"role": "admin"}]}),
            "fd7a:115c:a1e0::4": whois("erin@example.com", "tablet", "fd7a:115c:a1e0::4", {CAPABILITY: [{"role": "viewer"}]}),
            # Tagged nodes: no user of their own (tailscaled says `tagged-devices`), no grant.
            "100.64.0.7": whois("tagged-devices", "ci-runner", "100.64.0.7", tags=["tag:ci", "tag:linux"]),
            "100.64.0.8": whois("tagged-devices", "printer", "100.64.0.8", tags=["tag:printer"]),
        },
    )
    yield daemon
    daemon.close()


def tailscale_config(daemon: FakeTailscaled, extra: str = "", proxy_uid: int = 0) -> str:
    return (
        f'[tailscale]\nenabled = true\nsocket = "{daemon.path}"\nservice = "svc:systemmanager"\n'
        f'capability = "{CAPABILITY}"\ncache_seconds = 0\nproxy_uid = {proxy_uid}\n'
        f'[tailscale.logins]\n"carol@example.com" = "operator"\n'
        f'[tailscale.tags]\n"tag:ci" = "viewer"\n{extra}'
    )


@pytest.fixture
def server(binary, tailscaled):
    server = start_server(binary, "--http", "127.0.0.1:0", config=tailscale_config(tailscaled), role=None)
    yield server
    server.stop()


def test_a_forwarded_tailnet_caller_gets_the_role_its_grant_names(server, tailscaled):
    answer = modern_list(server.url, {"X-Forwarded-For": "100.64.0.1"}, auth=False)
    assert answer.status == 200, answer.body
    assert tool_names(answer.json()) == OPERATOR_TOOLS
    assert tailscaled.requests == [
        {"path": "/localapi/v0/whois", "query": {"addr": "100.64.0.1", "svc_name": "svc:systemmanager"}, "host": "local-tailscaled.sock"}
    ]
    call = modern_call(server.url, "system_overview", {}, 2, headers={"X-Forwarded-For": "100.64.0.1"})
    assert call.status == 200
    server.stop()
    records = [json.loads(line) for line in (server.config.parent / "audit.jsonl").read_text().splitlines()]
    record = next(r for r in records if r.get("tool") == "system_overview")
    assert record["identity"] == "tailscale:alice@example.com/laptop" and record["role"] == "operator"


def test_the_highest_of_grant_and_login_list_wins(server):
    # carol's grant says viewer, the login list operator.
    assert tool_names(modern_list(server.url, {"X-Forwarded-For": "100.64.0.2"}, auth=False).json()) == OPERATOR_TOOLS


def test_ipv6_tailnet_addresses_work(server):
    assert tool_names(modern_list(server.url, {"X-Forwarded-For": "fd7a:115c:a1e0::4"}, auth=False).json()) == READ_TOOLS


def test_the_last_forwarded_address_is_the_one_trusted(server):
    # A client may claim anything first; tailscale serve appends the address it saw.
    answer = modern_list(server.url, {"X-Forwarded-For": "100.64.0.1, 100.64.0.2"}, auth=False)
    assert tool_names(answer.json()) == OPERATOR_TOOLS


def test_a_tagged_node_gets_the_role_its_tag_maps_to(server, tailscaled):
    answer = modern_list(server.url, {"X-Forwarded-For": "100.64.0.7"}, auth=False)
    assert answer.status == 200, answer.body
    assert tool_names(answer.json()) == READ_TOOLS
    refused = modern_list(server.url, {"X-Forwarded-For": "100.64.0.8"}, auth=False)
    assert refused.status == 403 and "tailscale.tags" in refused.body.decode(), refused.body


def test_a_tailnet_user_without_a_role_is_forbidden(server):
    answer = modern_list(server.url, {"X-Forwarded-For": "100.64.0.3"}, auth=False)
    assert answer.status == 403
    assert "dave@example.com has no SystemManager role" in answer.json()["error"]["message"]
    record = wait_for_record(server, lambda r: r["event"] == "auth")
    assert "dave@example.com has no SystemManager role" in record["detail"]


def test_a_failed_whois_denies(server, tailscaled):
    answer = modern_list(server.url, {"X-Forwarded-For": "100.64.0.99"}, auth=False)
    assert answer.status == 401
    assert "cannot verify the tailnet caller 100.64.0.99: tailscaled answered 404" in answer.json()["error"]["message"]
    wait_for_record(server, lambda r: "cannot verify the tailnet caller 100.64.0.99" in r.get("detail", ""))
    tailscaled.close()
    answer = modern_list(server.url, {"X-Forwarded-For": "100.64.0.1"}, auth=False)
    assert answer.status == 401
    assert "cannot reach tailscaled" in answer.json()["error"]["message"]


def test_identity_headers_are_never_read(server, tailscaled):
    answer = modern_list(server.url, {"Tailscale-User-Login": "alice@example.com", "Tailscale-User-Name": "Alice"}, auth=False)
    assert answer.status == 401
    assert tailscaled.requests == []


def test_the_unix_socket_forwarded_by_tailscale_serve_is_identified_by_whois(binary, tailscaled, tmp_path):
    socket_path = tmp_path / "mcp.sock"
    server = start_server(binary, "--unix", str(socket_path), config=tailscale_config(tailscaled), role=None)

    try:
        # Forwarded: the tailnet user, not the local user tailscaled runs as.
        assert unix_tool_names(socket_path, {"X-Forwarded-For": "100.64.0.2"}) == (200, OPERATOR_TOOLS)
        assert unix_tool_names(socket_path, {"X-Forwarded-For": "100.64.0.3"})[0] == 403
        # Not forwarded: a local client, identified by the kernel.
        assert unix_tool_names(socket_path) == (200, OPERATOR_TOOLS)
    finally:
        assert server.stop() == 0


FORWARD_AS_ANOTHER_USER = """
import http.client, json, sys
port = int(sys.argv[1])
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
connection.request("POST", "/mcp", body=body, headers={
    "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list", "X-Forwarded-For": "100.64.0.1"})
response = connection.getresponse()
print(response.status, response.read().decode())
"""


def test_a_local_process_that_is_not_the_proxy_cannot_forward_an_identity(server, tailscaled):
    # Any local user can reach loopback; only tailscaled's (tailscale.proxy_uid, root here) may
    # say who the caller is. `nobody` claiming to forward alice's address is a caller without a
    # credential, and tailscaled is never asked.
    assert os.geteuid() == 0, "running a client as another user needs root"
    port = server.url.rsplit(":", 1)[1].split("/")[0]
    result = subprocess.run(
        # The system's Python: the test venv may sit where `nobody` cannot read.
        ["/usr/bin/python3", "-I", "-c", FORWARD_AS_ANOTHER_USER, port],
        capture_output=True, text=True, timeout=20, user=65534, group=65534, extra_groups=[],
    )
    status, _, body = result.stdout.partition(" ")
    assert status == "401", result.stdout + result.stderr
    assert "requires a bearer token" in body
    assert tailscaled.requests == []
    # The proxy's own user is still believed.
    assert tool_names(modern_list(server.url, {"X-Forwarded-For": "100.64.0.1"}, auth=False).json()) == OPERATOR_TOOLS
    assert len(tailscaled.requests) == 1


def test_on_the_unix_socket_only_the_proxy_user_forwards(binary, tailscaled, tmp_path):
    socket_path = tmp_path / "mcp.sock"
    config = tailscale_config(tailscaled, proxy_uid=4242)  # tailscaled runs as another user here
    server = start_server(binary, "--unix", str(socket_path), config=config, role=None)
    try:
        # We (root) are not uid 4242: the header is ignored, and we are the local user we are.
        status, names_seen = unix_tool_names(socket_path, {"X-Forwarded-For": "100.64.0.3"})
        assert (status, names_seen) == (200, OPERATOR_TOOLS)
        assert tailscaled.requests == []
    finally:
        assert server.stop() == 0


@pytest.fixture
def namespace():
    """A network namespace joined to this one by a veth pair: a peer that is not loopback."""
    name = f"sm{uuid.uuid4().hex[:8]}"
    host_if, peer_if = f"{name}a", f"{name}b"
    commands = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", host_if, "type", "veth", "peer", "name", peer_if],
        ["ip", "link", "set", peer_if, "netns", name],
        ["ip", "addr", "add", "10.77.0.1/24", "dev", host_if],
        ["ip", "link", "set", host_if, "up"],
        ["ip", "netns", "exec", name, "ip", "addr", "add", "10.77.0.2/24", "dev", peer_if],
        ["ip", "netns", "exec", name, "ip", "link", "set", peer_if, "up"],
        ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
    ]
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True, text=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_forged_headers_from_a_non_loopback_peer_are_ignored(binary, tailscaled, namespace):
    assert os.geteuid() == 0, "network namespaces need root"
    config = tailscale_config(tailscaled, '\n[http]\nallow_plaintext = true\nallowed_hosts = ["10.77.0.1"]\n')
    server = start_server(binary, "--http", "10.77.0.1:0", config=config, role=None)
    try:
        port = server.url.rsplit(":", 1)[1].split("/")[0]
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": modern_meta()}})
        result = subprocess.run(
            ["ip", "netns", "exec", namespace, "curl", "-s", "-w", "\n%{http_code}", "--max-time", "10",
             "-H", "Content-Type: application/json", "-H", "Accept: application/json, text/event-stream",
             "-H", "MCP-Protocol-Version: 2026-07-28", "-H", "Mcp-Method: tools/list",
             "-H", "X-Forwarded-For: 100.64.0.1", "-H", "Tailscale-User-Login: alice@example.com",
             "-d", body, f"http://10.77.0.1:{port}/mcp"],
            capture_output=True, text=True, timeout=20,
        )
        *payload, status = result.stdout.splitlines()
        assert status == "401", result.stdout + result.stderr
        assert "requires a bearer token" in "".join(payload)
        assert tailscaled.requests == [], "tailscaled must not be asked about a non-loopback peer"
    finally:
        assert server.stop() == 0
    assert "remote=\"10.77.0.2:" in server.log
    record = next(r for r in server.audit() if r["event"] == "auth")
    assert record["remote"].startswith("10.77.0.2:") and record.get("identity") is None
    assert "requires a bearer token" in record["detail"]
