"""Waiting for a condition in a test: one helper instead of a deadline loop in every file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

What = str | Callable[[], str]
"""What is awaited, for the failure message; a callable is asked only on failure (a log)."""


def wait_until(
    predicate: Callable[[], T], timeout_s: float = 30.0, what: What = "",
    interval_s: float = 0.05,
) -> T:
    """Poll ``predicate`` until it returns something true, and return that.

    Fails with ``AssertionError`` after ``timeout_s``; the predicate may raise to fail at
    once (a process that exited, say).
    """
    deadline = time.monotonic() + timeout_s
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(_timed_out(timeout_s, what, predicate))
        time.sleep(interval_s)
    return result


async def async_wait_until(
    predicate: Callable[[], Awaitable[T] | T], timeout_s: float = 30.0, what: What = "",
    interval_s: float = 0.05,
) -> T:
    """``wait_until`` inside a running event loop; the predicate may be async."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(_timed_out(timeout_s, what, predicate))
        await asyncio.sleep(interval_s)


def _timed_out(timeout_s: float, what: What, predicate: object) -> str:
    described = what() if callable(what) else what
    return f"timed out after {timeout_s}s waiting for {described or predicate}"
