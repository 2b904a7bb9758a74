"""The record's work after an exchange: run a moment later, never lost, never contagious."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import pytest
import yarl

from proxy.publish.deferred import DeferredRecords
from proxy.settings import ProxySettings
from proxy.upstream import Upstream
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


async def test_jobs_run_once_the_next_request_is_on_its_way_upstream() -> None:
    # At one connection the previous call's record is built while the upstream works on
    # the next request, not before that request is written: aiohttp writes a body in a
    # task of its own, a loop round after the request is made (Python before 3.12).
    received: list[float] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def upstream() -> None:
        connection, _ = listener.accept()
        with connection:
            while connection.recv(65536):
                received.append(time.monotonic())
                connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    threading.Thread(target=upstream, daemon=True).start()
    url = yarl.URL(f"http://127.0.0.1:{listener.getsockname()[1]}/v1/chat/completions")
    upstream_client = Upstream(ProxySettings(OPENAI_BASE_URL=str(url.origin())))
    deferred = DeferredRecords(delay_s=600)
    finished: list[float] = []

    def slow_record() -> None:
        time.sleep(0.2)  # blocks the loop, as building a big record does
        finished.append(time.monotonic())

    try:
        for _ in range(2):  # the first opens the connection
            deferred.add(slow_record)
            deferred.run_soon()
            response = await upstream_client.send("POST", url, [], b'{"model":"m"}')
            await response.read()
            response.release()
    finally:
        await upstream_client.aclose()
        listener.close()
    assert len(received) == len(finished) == 2
    assert received[1] < finished[1]  # the upstream had the request while the job ran
