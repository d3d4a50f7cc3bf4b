"""Waiting for something to happen, rather than sleeping a fixed time and hoping it has.

The suite runs on busy machines (a compiler, sometimes a second suite beside it): a condition
polled with a generous timeout holds there, and costs nothing when it comes at once. Where a
test must let time pass because time is what it tests (a rate window, an idle timeout, a
sampler's interval), it sleeps, and says why beside the sleep."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Calls `predicate` until it returns something true, or until `timeout` seconds have passed;
    returns its last result. It asserts nothing: a test that needs the condition writes
    `assert wait_until(...), "what did not happen"`, and one that only gives the condition time
    checks what follows as it did."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


async def wait_until_async(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.02):
    """`wait_until` for async tests: sleeps with `asyncio.sleep`, so the event loop (an SDK
    session's reader, say) runs meanwhile. `predicate` may be a plain function or a coroutine
    function."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result or time.monotonic() >= deadline:
            return result
        await asyncio.sleep(interval)
