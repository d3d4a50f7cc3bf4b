"""The MCP Inspector CLI (the reference client tool, in Node) against the server: stdio and
HTTP, legacy and modern eras, and its strict schema-portability check."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from servers import REPO, default_config, server_env

INSPECTOR = REPO / "tests" / "npm" / "node_modules" / ".bin" / "mcp-inspector"


@pytest.fixture(scope="module")
def inspector() -> Path:
    assert INSPECTOR.exists(), f"{INSPECTOR} is missing: run `npm ci` in tests/npm (the test script does)"
    return INSPECTOR


def run_inspector(inspector: Path, *args: str) -> dict:
    result = subprocess.run(
        [str(inspector), "--cli", *args, "--format", "json", "-q"],
        capture_output=True, text=True, timeout=120, env=server_env(),
    )
    assert result.returncode == 0, f"inspector exited {result.returncode}:\n{result.stderr}"
    return json.loads(result.stdout)


def target(transport: str, binary: Path, http_server) -> list[str]:
    if transport == "stdio":
        # The Inspector passes the server only a few environment variables (and takes --config
        # for itself): hand the test config over explicitly.
        return ["-e", f"SYSTEMMANAGER_CONFIG={default_config()}", str(binary), "serve"]
    return [http_server.url, "--transport", "http", "--header", f"Authorization: Bearer {http_server.token}"]


@pytest.fixture(params=["stdio", "http"])
def transport(request):
    return request.param


@pytest.fixture
def maybe_http(request, transport):
    return request.getfixturevalue("http_server") if transport == "http" else None


@pytest.mark.parametrize("era", ["legacy", "modern"])
def test_inspector_lists_and_calls(inspector, binary, transport, maybe_http, era, host_truth):
    where = target(transport, binary, maybe_http)
    listing = run_inspector(inspector, *where, "--method", "tools/list", "--protocol-era", era)
    names = [tool["name"] for tool in listing["result"]["tools"]]
    assert "system_overview" in names

    called = run_inspector(
        inspector, *where, "--method", "tools/call", "--tool-name", "system_overview", "--protocol-era", era
    )
    result = called["result"]
    assert result.get("isError") is False
    assert result["structuredContent"]["hostname"] == host_truth["hostname"]
    assert result["structuredContent"]["memory"]["total_bytes"] == host_truth["mem_total"]


def test_inspector_strict_schema_check_is_clean(inspector, binary):
    result = subprocess.run(
        [str(inspector), "--cli", "-e", f"SYSTEMMANAGER_CONFIG={default_config()}", str(binary), "serve",
         "--method", "tools/list", "--strict"],
        capture_output=True, text=True, timeout=120, env=server_env(),
    )
    # --strict exits 6 on an error-severity portability problem and reports warnings on stderr.
    assert result.returncode == 0, result.stderr
    assert "Warning:" not in result.stderr, result.stderr
    assert "Error:" not in result.stderr, result.stderr
