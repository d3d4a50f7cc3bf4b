"""Minimal raw JSON-RPC clients for what an SDK will not send: malformed JSON, cut-off messages,
wrong types, old protocol versions. They speak bytes, so the tests see exactly what the server
answers."""

from __future__ import annotations

import http.client
import json
import queue
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from servers import TOKENS_BY_URL, server_env
from waiting import wait_until

INIT_PARAMS = {
    "capabilities": {},
    "clientInfo": {"name": "raw-test-client", "version": "1"},
}


def dumps(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def modern_meta() -> dict:
    return {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }


class StdioSession:
    """A server process spoken to line by line."""

    def __init__(self, binary: Path, *args: str):
        self.process = subprocess.Popen(
            [str(binary), "serve", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=server_env(),
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.stderr: list[bytes] = []
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def send_raw(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def send(self, message: dict) -> None:
        self.send_raw(dumps(message).encode() + b"\n")

    def receive(self, timeout: float = 5.0) -> dict:
        line = self.lines.get(timeout=timeout)
        return json.loads(line)

    def request(self, message: dict, timeout: float = 5.0) -> dict:
        self.send(message)
        return self.receive(timeout)

    def initialize(self, version: str = "2025-11-25") -> dict:
        answer = self.request(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": version, **INIT_PARAMS}}
        )
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return answer

    def close(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        return self.process.wait(timeout=10)


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        if self.headers.get("content-type", "").startswith("text/event-stream"):
            messages = [
                json.loads(line[5:])
                for line in self.body.decode().splitlines()
                if line.startswith("data:") and line[5:].strip()
            ]
            return messages[-1]
        return json.loads(self.body)


def with_auth(url: str, headers: dict[str, str] | None, auth: bool) -> dict[str, str]:
    all_headers = dict(headers or {})
    if auth and url in TOKENS_BY_URL and not any(k.lower() == "authorization" for k in all_headers):
        all_headers["Authorization"] = f"Bearer {TOKENS_BY_URL[url]}"
    return all_headers


def post(url: str, body: bytes | str | dict, headers: dict[str, str] | None = None, auth: bool = True) -> HttpAnswer:
    """One POST on a fresh connection, with the headers every MCP client sends (and the server's
    test token, unless `auth` is false or the headers carry their own)."""
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    if isinstance(body, dict):
        body = dumps(body)
    if isinstance(body, str):
        body = body.encode()
    all_headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    all_headers.update(with_auth(url, headers, auth))
    target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    connection.request("POST", target, body=body, headers=all_headers)
    response = connection.getresponse()
    answer = HttpAnswer(
        response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    )
    connection.close()
    return answer


def get(url: str, path: str, headers: dict[str, str] | None = None, auth: bool = True) -> HttpAnswer:
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    connection.request("GET", path, headers=with_auth(url, headers, auth))
    response = connection.getresponse()
    answer = HttpAnswer(
        response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    )
    connection.close()
    return answer


def unix_post(socket_path: Path, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
    """One POST to /mcp over a unix socket, by hand (stdlib HTTP clients speak TCP only)."""
    payload = dumps(body).encode()
    head = {"Host": "localhost", "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream", "Connection": "close",
            "Content-Length": str(len(payload)), **headers}
    request = "POST /mcp HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(socket_path))
        sock.sendall(request.encode() + payload)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    status = int(reply.split(b" ", 2)[1])
    return status, json.loads(reply.split(b"\r\n\r\n", 1)[1])


def unix_tool_names(socket_path: Path, headers: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """A stateless tools/list over the unix socket: the status and the tool names."""
    status, answer = unix_post(
        socket_path,
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": modern_meta()}},
        {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list", **(headers or {})},
    )
    return status, [tool["name"] for tool in answer.get("result", {}).get("tools", [])]


def modern_call(url: str, name: str, arguments: object, request_id: int = 1, headers: dict[str, str] | None = None) -> HttpAnswer:
    """A stateless 2026-07-28 tools/call."""
    return post(
        url,
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments, "_meta": modern_meta()},
        },
        {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": name, **(headers or {})},
    )


def modern_list(url: str, headers: dict[str, str] | None = None, auth: bool = True) -> HttpAnswer:
    """A stateless 2026-07-28 tools/list."""
    return post(
        url,
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": modern_meta()}},
        {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list", **(headers or {})},
        auth=auth,
    )


def tool_names(body: dict) -> list[str]:
    """The tool names in a tools/list answer's body."""
    return [tool["name"] for tool in body["result"]["tools"]]


def wait_for_token(url: str, headers: dict[str, str]) -> None:
    """Waits until the server at `url` accepts the token in `headers` (one created after it
    started: it rereads its token file within a second), probing with system_overview calls."""
    accepted = wait_until(lambda: modern_call(url, "system_overview", {}, 1, headers).status == 200, interval=0.1)
    assert accepted, "the new token was never accepted"
