"""HTTPS with rustls, and client certificates as credentials (mutual TLS)."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from catalogue import OPERATOR_TOOLS, READ_TOOLS
from certs import Authority
from rawclient import modern_meta, tool_names
from servers import make_config, server_env, start_server

LISTING = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": modern_meta()}})
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2026-07-28",
    "Mcp-Method": "tools/list",
}


@pytest.fixture
def pki(tmp_path):
    ca = Authority(tmp_path, "systemmanager-test")
    return {
        "ca": ca,
        "server": ca.issue("localhost", server=True),
        "ops": ca.issue("ops-laptop", server=False),
        "stranger": ca.issue("stranger", server=False),
        "rogue": Authority(tmp_path, "rogue").issue("ops-laptop", server=False),
    }


def tls_config(pki, mutual: bool) -> str:
    text = f'[tls]\ncert = "{pki["server"].cert}"\nkey = "{pki["server"].key}"\n'
    if mutual:
        text += f'client_ca = "{pki["ca"].cert}"\n[tls.client_roles]\nops-laptop = "operator"\n'
    return text


def client_context(pki, identity: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["ca"].cert))
    if identity:
        context.load_cert_chain(str(pki[identity].cert), str(pki[identity].key))
    return context


def list_tools(server, context: ssl.SSLContext, token: str | None = None) -> tuple[int, dict]:
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    headers = dict(HEADERS)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection.request("POST", "/mcp", body=LISTING, headers=headers)
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    return response.status, body


@pytest.mark.anyio
async def test_the_sdk_client_works_over_https_with_a_token(binary, pki, host_truth):
    server = start_server(binary, "--http", "127.0.0.1:0", config=tls_config(pki, mutual=False))
    try:
        assert server.url.startswith("https://127.0.0.1:")
        client = httpx2.AsyncClient(verify=client_context(pki), headers=server.auth_headers)
        async with client, streamable_http_client(server.url, http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.discover()
                result = await session.call_tool("system_overview", {})
        assert result.structured_content["hostname"] == host_truth["hostname"]
    finally:
        assert server.stop() == 0


def test_plain_http_to_the_tls_port_gets_no_answer(binary, pki):
    server = start_server(binary, "--http", "127.0.0.1:0", config=tls_config(pki, mutual=False))
    try:
        port = int(server.url.rsplit(":", 1)[1].split("/")[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            connection.request("POST", "/mcp", body=LISTING, headers=HEADERS)
            connection.getresponse().read()
    finally:
        assert server.stop() == 0


def test_a_client_certificate_is_a_credential(binary, pki):
    server = start_server(binary, "--http", "127.0.0.1:0", config=tls_config(pki, mutual=True), role="viewer")
    try:
        status, body = list_tools(server, client_context(pki, "ops"))
        assert status == 200, body
        assert tool_names(body) == OPERATOR_TOOLS  # ops-laptop → operator

        # A certificate the CA signed for a name no role maps authenticates nobody...
        status, body = list_tools(server, client_context(pki, "stranger"))
        assert status == 401, body
        # ...but its holder may still bring a token.
        status, body = list_tools(server, client_context(pki, "stranger"), server.token)
        assert status == 200 and tool_names(body) == READ_TOOLS  # the token is a viewer's

        # No certificate at all: the token decides.
        status, body = list_tools(server, client_context(pki), server.token)
        assert status == 200 and tool_names(body) == READ_TOOLS

        # A certificate from another CA fails the handshake.
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            list_tools(server, client_context(pki, "rogue"))
    finally:
        assert server.stop() == 0
    records = [json.loads(line) for line in (server.config.parent / "audit.jsonl").read_text().splitlines()]
    assert [r["detail"] for r in records if r["event"] == "auth"] == [
        "this server requires a bearer token: send `Authorization: Bearer <token>` (an operator "
        "creates one with `systemmanager token create`)"
    ]


def test_calls_by_certificate_are_audited_by_its_name(binary, pki):
    server = start_server(binary, "--http", "127.0.0.1:0", config=tls_config(pki, mutual=True), role=None)
    try:
        port = int(server.url.rsplit(":", 1)[1].split("/")[0])
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=client_context(pki, "ops"), timeout=10)
        body = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "system_overview", "arguments": {}, "_meta": modern_meta()}})
        headers = dict(HEADERS, **{"Mcp-Method": "tools/call", "Mcp-Name": "system_overview"})
        connection.request("POST", "/mcp", body=body, headers=headers)
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        assert server.stop() == 0
    records = [json.loads(line) for line in (server.config.parent / "audit.jsonl").read_text().splitlines()]
    call = next(r for r in records if r.get("tool") == "system_overview")
    assert call["identity"] == "cert:ops-laptop" and call["role"] == "operator"


def test_tls_may_listen_beyond_loopback(binary, pki):
    server = start_server(binary, "--http", "0.0.0.0:0", config=tls_config(pki, mutual=False))
    try:
        assert server.url.startswith("https://0.0.0.0:")
    finally:
        assert server.stop() == 0


def test_tls_configuration_mistakes_are_named(binary, pki, tmp_path):
    for text, message in [
        (f'[tls]\ncert = "{pki["server"].cert}"\n', "`tls.key`: TLS needs both `cert` and `key`"),
        (f'[tls]\ncert = "{pki["server"].cert}"\nkey = "{pki["ops"].key}"\n', "do not belong together"),
        (f'[tls]\ncert = "{tmp_path}/missing.pem"\nkey = "{pki["server"].key}"\n', "cannot read certificates"),
    ]:
        config = make_config(text)
        result = subprocess.run(
            [str(binary), "serve", "--http", "127.0.0.1:0", "--config", str(config)],
            capture_output=True, text=True, env=server_env(), timeout=10,
        )
        assert result.returncode in (1, 2), result
        assert message in result.stderr, result.stderr
