"""Every protocol era a client may speak: 2026-07-28 (stateless, headers, caching hints),
2025-11-25 (sessions), and the older 2025-06-18 and 2025-03-26 handshakes, over HTTP and stdio."""

from __future__ import annotations

import pytest

from catalogue import OPERATOR_TOOLS
from rawclient import INIT_PARAMS, StdioSession, dumps, modern_call, modern_meta, post

LEGACY_VERSIONS = ["2025-11-25", "2025-06-18", "2025-03-26"]


def legacy_http_session(url: str, version: str) -> dict[str, str]:
    """Initializes a session; returns the headers later requests carry."""
    answer = post(url, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": version, **INIT_PARAMS}})
    assert answer.status == 200
    result = answer.json()["result"]
    assert result["protocolVersion"] == version
    session_id = answer.headers.get("mcp-session-id")
    assert session_id, "a session-era initialize must return Mcp-Session-Id"
    headers = {"Mcp-Session-Id": session_id}
    # 2025-03-26 predates the MCP-Protocol-Version header; later versions send it.
    if version != "2025-03-26":
        headers["MCP-Protocol-Version"] = version
    notified = post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, headers)
    assert notified.status == 202
    return headers


@pytest.mark.parametrize("version", LEGACY_VERSIONS)
def test_legacy_http_clients(http_server, version, host_truth):
    headers = legacy_http_session(http_server.url, version)
    listing = post(http_server.url, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers)
    assert listing.status == 200
    tools = listing.json()["result"]["tools"]
    assert [tool["name"] for tool in tools] == OPERATOR_TOOLS
    call = post(
        http_server.url,
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "system_overview", "arguments": {}}},
        headers,
    )
    result = call.json()["result"]
    assert result["isError"] is False
    assert result["structuredContent"]["kernel"] == host_truth["kernel"]
    # Legacy peers do not get the 2026-07-28 result discriminator.
    assert "resultType" not in result


def test_requests_without_a_known_session_are_refused(http_server):
    answer = post(
        http_server.url,
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"Mcp-Session-Id": "not-a-session", "MCP-Protocol-Version": "2025-11-25"},
    )
    assert answer.status == 404


@pytest.mark.parametrize("version", LEGACY_VERSIONS)
def test_legacy_stdio_clients(binary, version, host_truth):
    session = StdioSession(binary)
    answer = session.initialize(version)
    assert answer["result"]["protocolVersion"] == version
    call = session.request({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "system_overview", "arguments": {}}})
    assert call["result"]["structuredContent"]["hostname"] == host_truth["hostname"]
    assert session.close() == 0


def test_modern_http_is_stateless_json_with_caching_hints(http_server):
    discover = post(
        http_server.url,
        {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": modern_meta()}},
        {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "server/discover"},
    )
    assert discover.status == 200
    assert "mcp-session-id" not in discover.headers
    result = discover.json()["result"]
    assert "2026-07-28" in result["supportedVersions"]
    assert result["ttlMs"] > 0 and result["cacheScope"] in ("public", "private")
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "systemmanager"

    listing = post(
        http_server.url,
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": modern_meta()}},
        {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"},
    )
    assert listing.status == 200
    assert listing.headers["content-type"].startswith("application/json")
    result = listing.json()["result"]
    assert result["resultType"] == "complete"
    assert result["ttlMs"] > 0
    assert result["cacheScope"] == "private"

    call = modern_call(http_server.url, "system_overview", {})
    assert call.status == 200
    assert "mcp-session-id" not in call.headers
    assert call.json()["result"]["resultType"] == "complete"


def test_modern_http_checks_the_standard_headers(http_server):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "system_overview", "arguments": {}, "_meta": modern_meta()}}
    # Mcp-Name naming a different tool than the body.
    mismatch = post(http_server.url, body, {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "other"})
    assert mismatch.status == 400
    assert mismatch.json()["error"]["code"] == -32020
    # The _meta version without the header.
    missing = post(http_server.url, body, {"Mcp-Method": "tools/call", "Mcp-Name": "system_overview"})
    assert missing.status == 400
    assert missing.json()["error"]["code"] == -32020


def test_modern_stdio_discover_then_call(binary):
    session = StdioSession(binary)
    discover = session.request({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": modern_meta()}})
    assert "2026-07-28" in discover["result"]["supportedVersions"]
    listing = session.request({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": modern_meta()}})
    assert listing["result"]["ttlMs"] > 0
    call = session.request(
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "system_overview", "arguments": {}, "_meta": modern_meta()}}
    )
    assert call["result"]["resultType"] == "complete"
    assert call["result"]["isError"] is False
    assert session.close() == 0


def test_unsupported_version_is_refused_with_the_supported_list(http_server):
    meta = modern_meta() | {"io.modelcontextprotocol/protocolVersion": "2099-01-01"}
    answer = post(
        http_server.url,
        dumps({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}}),
        {"MCP-Protocol-Version": "2099-01-01", "Mcp-Method": "server/discover"},
    )
    assert answer.status == 400
    error = answer.json()["error"]
    assert error["code"] == -32022
    assert "2026-07-28" in error["data"]["supported"]
