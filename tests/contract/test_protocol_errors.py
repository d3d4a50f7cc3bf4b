"""Bad input gets the error the specification prescribes, and the server keeps serving.

JSON-RPC 2.0: invalid JSON (or a message cut off) is -32700 Parse error; JSON that is not a
request is -32600 Invalid Request; params that do not fit the method are -32602 Invalid params.
MCP tools: an unknown tool is a -32602 protocol error; arguments that do not fit the tool's input
schema are a tool execution error (isError: true) the model can correct.
Streamable HTTP: bad input is 400 with the JSON-RPC error as body; a foreign Origin 403; a body
over the limit 413."""

from __future__ import annotations

import pytest

from rawclient import StdioSession, get, modern_call, modern_meta, post
from servers import wait_for_record

OVERVIEW_CALL = {"jsonrpc": "2.0", "id": 100, "method": "tools/call", "params": {"name": "system_overview", "arguments": {}}}


@pytest.fixture
def stdio(binary):
    session = StdioSession(binary)
    session.initialize()
    yield session
    assert session.close() == 0


def assert_still_serving(stdio: StdioSession) -> None:
    answer = stdio.request(OVERVIEW_CALL)
    assert answer["id"] == 100
    assert answer["result"]["isError"] is False


def test_stdio_malformed_json_is_a_parse_error(stdio):
    stdio.send_raw(b"{this is not json\n")
    answer = stdio.receive()
    assert answer["error"]["code"] == -32700
    assert "id" not in answer or answer["id"] is None
    assert_still_serving(stdio)


def test_stdio_truncated_message_is_a_parse_error(stdio):
    stdio.send_raw(b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"sys\n')
    answer = stdio.receive()
    assert answer["error"]["code"] == -32700
    assert "ends before the JSON is complete" in answer["error"]["message"]
    assert_still_serving(stdio)


def test_stdio_unknown_tool_is_invalid_params(stdio):
    answer = stdio.request({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "no_such_tool", "arguments": {}}})
    assert answer["id"] == 6
    assert answer["error"]["code"] == -32602
    assert answer["error"]["message"] == "Unknown tool: no_such_tool"
    assert_still_serving(stdio)


def test_stdio_arguments_that_are_not_an_object_are_invalid_params(stdio):
    answer = stdio.request({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "system_overview", "arguments": "all"}})
    assert answer["id"] == 7
    assert answer["error"]["code"] == -32602
    assert "`arguments`" in answer["error"]["message"]
    answer = stdio.request({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": 42}})
    assert answer["id"] == 8
    assert answer["error"]["code"] == -32602
    assert_still_serving(stdio)


def test_stdio_arguments_outside_the_schema_are_a_tool_error(stdio):
    answer = stdio.request({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "system_overview", "arguments": {"verbose": True}}})
    assert answer["id"] == 9
    assert answer["result"]["isError"] is True
    assert "invalid argument `verbose`" in answer["result"]["content"][0]["text"]
    assert_still_serving(stdio)


def test_stdio_non_request_json_is_an_invalid_request(stdio):
    stdio.send_raw(b"[1, 2, 3]\n")
    answer = stdio.receive()
    assert answer["error"]["code"] == -32600
    stdio.send_raw(b'{"jsonrpc":"2.0","id":11}\n')
    answer = stdio.receive()
    assert answer["error"]["code"] == -32600
    assert answer["id"] == 11
    assert_still_serving(stdio)


def test_stdio_unknown_method_is_method_not_found(stdio):
    answer = stdio.request({"jsonrpc": "2.0", "id": 12, "method": "vendor/frobnicate", "params": {}})
    assert answer["id"] == 12
    assert answer["error"]["code"] == -32601
    assert_still_serving(stdio)


def test_stdio_oversized_line_is_refused_without_buffering(stdio):
    stdio.send_raw(b'{"jsonrpc":"2.0","id":13,"method":"ping","params":{"pad":"' + b"x" * (2 * 1024 * 1024) + b'"}}\n')
    answer = stdio.receive()
    assert answer["error"]["code"] == -32600
    assert "limits.max_request_bytes" in answer["error"]["message"]
    assert_still_serving(stdio)


def test_stdio_message_cut_off_at_end_of_input_is_answered(binary):
    session = StdioSession(binary)
    session.initialize()
    session.send_raw(b'{"jsonrpc":"2.0","id":14,"method":"tools/li')
    session.process.stdin.close()
    answer = session.receive()
    assert answer["error"]["code"] == -32700
    assert session.process.wait(timeout=10) == 0


# --- HTTP ------------------------------------------------------------------------------------


def assert_http_still_serving(url: str) -> None:
    answer = modern_call(url, "system_overview", {})
    assert answer.status == 200
    assert answer.json()["result"]["isError"] is False


def test_http_malformed_json_is_400_with_a_parse_error(http_server):
    answer = post(http_server.url, "{this is not json")
    assert answer.status == 400
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"]["code"] == -32700
    assert_http_still_serving(http_server.url)


def test_http_truncated_message_is_400_with_a_parse_error(http_server):
    answer = post(http_server.url, '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":')
    assert answer.status == 400
    assert answer.json()["error"]["code"] == -32700
    assert_http_still_serving(http_server.url)


def test_http_unknown_tool_is_invalid_params(http_server):
    answer = modern_call(http_server.url, "no_such_tool", {}, request_id=21)
    assert answer.status == 200
    body = answer.json()
    assert body["id"] == 21
    assert body["error"]["code"] == -32602
    assert body["error"]["message"] == "Unknown tool: no_such_tool"
    assert_http_still_serving(http_server.url)


def test_http_wrongly_typed_arguments(http_server):
    answer = modern_call(http_server.url, "system_overview", "all", request_id=22)
    assert answer.status == 400
    body = answer.json()
    assert body["id"] == 22
    assert body["error"]["code"] == -32602
    answer = modern_call(http_server.url, "system_overview", {"verbose": 1}, request_id=23)
    assert answer.status == 200
    assert answer.json()["result"]["isError"] is True
    assert_http_still_serving(http_server.url)


def test_http_foreign_origin_is_403(http_server):
    answer = post(http_server.url, "{}", {"Origin": "https://evil.example"})
    assert answer.status == 403
    assert "Origin" in answer.json()["error"]["message"]
    record = wait_for_record(http_server, lambda r: r.get("outcome") == "origin_refused")
    assert record["event"] == "request" and record["decision"] == "refused"
    assert "`https://evil.example` is not allowed" in record["detail"]
    assert record["remote"].startswith("127.0.0.1:")
    assert_http_still_serving(http_server.url)


def test_http_foreign_origin_with_a_valid_request_is_403(http_server):
    answer = post(
        http_server.url,
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "system_overview", "arguments": {}, "_meta": modern_meta()}},
        {"Origin": "http://192.168.1.20:8080", "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "system_overview"},
    )
    assert answer.status == 403


def test_http_loopback_origin_is_allowed_by_default(http_server):
    """A page served from this machine (e.g. the MCP Inspector web UI) may call the server."""
    for origin in ("http://localhost:6274", "http://127.0.0.1:3000", "http://[::1]:8080"):
        answer = post(
            http_server.url,
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "system_overview", "arguments": {}, "_meta": modern_meta()}},
            {"Origin": origin, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "system_overview"},
        )
        assert answer.status == 200, origin


def test_http_disallowed_host_is_403(http_server):
    answer = post(http_server.url, "{}", {"Host": "attacker.example"})
    assert answer.status == 403
    assert "Host" in answer.json()["error"]["message"]
    record = wait_for_record(http_server, lambda r: r.get("outcome") == "host_refused")
    assert "`attacker.example` is not allowed" in record["detail"]


def test_http_body_over_the_limit_is_413(http_server):
    body = '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"' + "x" * (2 * 1024 * 1024) + '"}}'
    answer = post(http_server.url, body)
    assert answer.status == 413
    assert "limits.max_request_bytes" in answer.json()["error"]["message"]
    record = wait_for_record(http_server, lambda r: r.get("outcome") == "too_large")
    assert record["event"] == "request" and record["identity"] == "token:test"
    assert_http_still_serving(http_server.url)


def test_healthz(http_server):
    answer = get(http_server.url, "/healthz")
    assert answer.status == 200
    assert answer.body == b'{"status":"ok"}'


def test_http_chunked_body_over_the_limit_is_413(http_server):
    """Without Content-Length the limit is enforced while reading, with the same answer."""
    import http.client
    from urllib.parse import urlparse

    parsed = urlparse(http_server.url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)

    def chunks():
        yield b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"'
        for _ in range(32):
            yield b"x" * 65536
        yield b'"}}'

    connection.request(
        "POST", parsed.path, body=chunks(), encode_chunked=True,
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **http_server.auth_headers},
    )
    response = connection.getresponse()
    assert response.status == 413
    connection.close()
    assert_http_still_serving(http_server.url)
