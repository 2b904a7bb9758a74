"""The record's work after an exchange: run a moment later, never lost, never contagious."""

from __future__ import annotations

import asyncio
import logging

import pytest

from proxy.publish.deferred import DeferredRecords
from tests.support.waiting import async_wait_until


async def test_jobs_run_after_the_caller_returns_in_the_order_queued() -> None:
    deferred = DeferredRecords(delay_s=0.001)
    ran: list[int] = []
    deferred.add(lambda: ran.append(1))
    deferred.add(lambda: ran.append(2))

    assert ran == []
    await async_wait_until(lambda: ran == [1, 2])


async def test_stop_runs_what_is_queued_and_later_jobs_at_once() -> None:
    deferred = DeferredRecords(delay_s=600)
    ran: list[str] = []
    deferred.add(lambda: ran.append("queued"))

    deferred.stop()
    assert ran == ["queued"]
    deferred.add(lambda: ran.append("late"))
    assert ran == ["queued", "late"]
    await asyncio.sleep(0)
    assert ran == ["queued", "late"]


async def test_a_failing_job_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deferred = DeferredRecords(delay_s=600)
    ran: list[str] = []

    def fails() -> None:
        raise ValueError("broken record")

    deferred.add(fails)
    deferred.add(lambda: ran.append("next"))
    with caplog.at_level(logging.ERROR, logger="proxy.publish.deferred"):
        deferred.run()
    assert ran == ["next"]
    assert "record_build_failed" in caplog.text


async def test_run_soon_runs_the_queued_jobs_before_the_timer() -> None:
    deferred = DeferredRecords(delay_s=600)
    ran: list[str] = []
    deferred.add(lambda: ran.append("record"))

    deferred.run_soon()  # an exchange waits for its upstream
    assert ran == []
    await async_wait_until(lambda: ran == ["record"])
