"""The official MCP Python SDK client, connected over any of our transports: stdio (the server as
a child process), Streamable HTTP with a bearer token, or HTTP over a unix socket; and the two
ways a test calls a tool through it, expecting an answer (`call`) or a refusal (`refusal`)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from servers import server_env


@asynccontextmanager
async def connect(transport: str, binary: Path, http_url: str | None, socket_path: Path | None, token: str | None = None):
    if transport == "stdio":
        params = StdioServerParameters(command=str(binary), args=["serve"], env=server_env())
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            yield session
    elif transport == "http":
        client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
        async with client, streamable_http_client(http_url, http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                yield session
    else:
        tolerate_anyio_unix_close_race()
        client = httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport(uds=str(socket_path)))
        async with client, streamable_http_client("http://localhost/mcp", http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                yield session


def tolerate_anyio_unix_close_race() -> None:
    """anyio's raw UNIX socket stream waits for readability with
    `loop.add_reader(sock, future.set_result, None)` and its `aclose()` resolves that future
    itself; when the reader callback is already queued, asyncio then reports
    `InvalidStateError` from `Future.set_result` (anyio/_backends/_asyncio.py,
    `_RawSocketMixin`). That is a client-side race at connection close, seen under CPU load, and
    says nothing about the server: ignore exactly that report, pass every other one on."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        exception = context.get("exception")
        if isinstance(exception, asyncio.InvalidStateError) and "Future.set_result" in repr(context.get("handle")):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


async def open_era(session: ClientSession, era: str) -> str:
    if era == "initialize":
        result = await session.initialize()
        assert result.server_info.name == "systemmanager"
        assert result.capabilities.tools is not None
        return result.protocol_version
    result = await session.discover()
    assert "2026-07-28" in result.supported_versions
    assert "2025-11-25" in result.supported_versions
    return session.protocol_version


ERAS = ["initialize", "discover"]


@asynccontextmanager
async def stdio_session(binary: Path, *args: str, wrapper: list[str] | None = None):
    """An initialized stdio session with a server started with `serve *args`, under `wrapper`
    (e.g. `ip netns exec NAME`) when given."""
    command = [*(wrapper or []), str(binary), "serve", *args]
    params = StdioServerParameters(command=command[0], args=command[1:], env=server_env())
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, arguments: dict | None = None) -> dict:
    """Calls `tool`, which must answer (not isError); its structured answer."""
    result = await session.call_tool(tool, arguments or {})
    assert result.is_error is False, result.content[0].text
    return result.structured_content


async def refusal(session: ClientSession, tool: str, arguments: dict, never_showing: str | None = None) -> str:
    """Calls `tool`, which must refuse (isError); the refusal's text, which must not hold
    `never_showing` when given (a secret the call must not leak)."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error is True, result.structured_content
    text = result.content[0].text
    if never_showing is not None:
        assert never_showing not in text
    return text
