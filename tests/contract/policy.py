"""What the suite demands of the machine it runs on. Locally, a test whose component is missing
(Docker, root, a cgroup hierarchy) skips; under CI=true nothing may be missing, so a skip is a
failure."""

from __future__ import annotations

import os

import pytest


def under_ci() -> bool:
    return os.environ.get("CI") == "true"


def require(condition: bool, reason: str) -> None:
    """A component this test needs: missing, the test skips locally and fails under CI=true."""
    if condition:
        return
    if under_ci():
        pytest.fail(f"missing under CI: {reason}")
    pytest.skip(reason)


def fail_skips_under_ci(session: pytest.Session) -> None:
    """Under CI=true a skipped test is a failure: every component must be present and run."""
    if not under_ci():
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        reporter.write_line(f"CI=true: {skipped} test(s) skipped; under CI every test must run", red=True)
        session.exitstatus = 1
