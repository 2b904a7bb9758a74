"""The publisher against a real Redis: XADD off the response path, the spool when it fails."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import cast

import pytest

from proxy.metrics import Metrics
from proxy.publish.publisher import PendingRecord, Publisher
from proxy.publish.spool import Spool
from proxy.settings import ProxySettings
from shared.redis_client import RedisClient, connect
from shared.spool_format import read_records, segment_paths
from shared.streams import RECORD_FIELD
from tests.factories import make_pending
from tests.support.redis_server import RedisServer

STREAM = "test:exchanges"
TIMEOUT_S = 0.3


def _pipeline(redis: RedisClient, folder: Path, metrics: Metrics) -> tuple[Publisher, Spool]:
    spool = Spool(folder, "w", metrics, max_bytes=1 << 26, full_policy="drop")
    publisher = Publisher(
        redis, STREAM, metrics, spool, queue_size=1000, batch_size=10, timeout_s=TIMEOUT_S
    )
    spool.start()
    publisher.start()
    return publisher, spool


def _client(url: str) -> RedisClient:
    """Made as the proxy makes its publishing client: no read timeout of its own, the
    publisher bounds each round trip."""
    settings = ProxySettings(_env_file=None, redis_url=url)  # type: ignore[call-arg]
    return connect(settings, timeout_s=2, connect_timeout_s=TIMEOUT_S, bounded_by_caller=True)


async def _stream(redis: RedisClient) -> list[bytes]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrange(STREAM))
    return [fields[RECORD_FIELD.encode()] for _, fields in entries]


def _spooled(folder: Path) -> list[bytes]:
    return [line for path in segment_paths(folder) for line in read_records(path)]


def _submit_all(publisher: Publisher, pending: list[PendingRecord]) -> float:
    started = time.perf_counter()
    for item in pending:
        publisher.submit(item)
    return time.perf_counter() - started


async def test_records_are_published_one_entry_each_and_drained_at_stop(
    redis_url: str, tmp_path: Path
) -> None:
    redis, metrics = _client(redis_url), Metrics()
    publisher, spool = _pipeline(redis, tmp_path, metrics)
    pending = make_pending(35)

    _submit_all(publisher, pending)
    await publisher.stop(timeout_s=5)
    await spool.close()

    assert await _stream(redis) == [p.payload for p in pending]
    assert metrics.totals()["proxy_records_published_total"] == 35
    assert _spooled(tmp_path) == []
    await redis.aclose()


async def test_records_handed_over_together_share_one_round_trip_and_each_is_logged(
    redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    redis, metrics = _client(redis_url), Metrics()
    publisher, spool = _pipeline(redis, tmp_path, metrics)
    pending = make_pending(7)  # as deferred.py hands over finished exchanges' records

    with caplog.at_level(logging.DEBUG, logger="proxy.publish.publisher"):
        _submit_all(publisher, pending)
        await publisher.stop(timeout_s=5)
    await spool.close()

    events = [r.event_fields for r in caplog.records if r.getMessage() == "record_published"]
    assert [fields["record_id"] for fields in events] == [p.record_id for p in pending]
    assert {fields["batch_size"] for fields in events} == {7}
    assert metrics.totals()["proxy_records_published_total"] == 7
    await redis.aclose()


async def test_a_refused_publish_is_spooled_and_so_are_the_records_after_it(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis, metrics = _client(redis_server.url), Metrics()
    publisher, spool = _pipeline(redis, tmp_path, metrics)
    redis_server.stop()
    pending = make_pending(25)

    _submit_all(publisher, pending)
    await publisher.stop(timeout_s=5)
    await spool.close()

    assert _spooled(tmp_path) == [p.payload for p in pending]
    totals = metrics.totals()
    assert totals["proxy_records_spooled_total"] == 25
    assert totals["proxy_record_publish_failures_total"] >= 1
    assert totals["proxy_records_dropped_total"] == 0
    assert totals["proxy_records_published_total"] == 0
    assert totals["proxy_records_ambiguous_total"] == 0  # refused: certainly not applied
    await redis.aclose()


async def test_a_hung_redis_times_out_into_the_spool_as_ambiguous(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis, metrics = _client(redis_server.url), Metrics()
    await redis.ping()  # a pooled connection, as after normal traffic
    publisher, spool = _pipeline(redis, tmp_path, metrics)
    redis_server.pause()
    try:
        pending = make_pending(40)
        submit_s = _submit_all(publisher, pending)
        await asyncio.sleep(TIMEOUT_S * 3)
        await spool.flush()
        spooled = [json.loads(line)["id"] for line in _spooled(tmp_path)]
    finally:
        redis_server.resume()
    await publisher.stop(timeout_s=5)
    await spool.close()

    # The caller never waits for Redis: one wait would take a whole timeout (a bound of a few
    # ms instead fails when a busy machine leaves the test unscheduled that long).
    assert submit_s < TIMEOUT_S
    assert spooled == [p.record_id for p in pending]
    assert metrics.totals()["proxy_records_ambiguous_total"] >= 1
    assert metrics.totals()["proxy_records_dropped_total"] == 0
    await redis.aclose()


async def test_a_full_queue_spills_into_the_spool(redis_url: str, tmp_path: Path) -> None:
    redis, metrics = _client(redis_url), Metrics()
    spool = Spool(tmp_path, "w", metrics, max_bytes=1 << 26, full_policy="drop")
    publisher = Publisher(
        redis, STREAM, metrics, spool, queue_size=5, batch_size=5, timeout_s=TIMEOUT_S
    )
    spool.start()  # the publisher is not started: its queue fills up
    pending = make_pending(12)

    _submit_all(publisher, pending)
    await spool.flush()

    assert _spooled(tmp_path) == [p.payload for p in pending[5:]]
    publisher.start()
    await publisher.stop(timeout_s=5)
    await spool.close()
    # Once records wait in the spool, the queued ones go behind them, not around them.
    assert _spooled(tmp_path) == [p.payload for p in pending[5:] + pending[:5]]
    await redis.aclose()


async def test_a_record_submitted_after_stop_is_spooled_or_counted(
    redis_url: str, tmp_path: Path
) -> None:
    redis, metrics = _client(redis_url), Metrics()
    publisher, spool = _pipeline(redis, tmp_path, metrics)
    await publisher.stop(timeout_s=5)
    late, too_late = make_pending(2)

    publisher.submit(late)  # a call that finished during shutdown
    await spool.close()
    publisher.submit(too_late)  # ... or after everything closed: lost, but never silently

    assert _spooled(tmp_path) == [late.payload]
    assert metrics.totals()["proxy_records_dropped_total"] == 1
    await redis.aclose()


async def test_a_connection_closed_before_the_reply_is_ambiguous(tmp_path: Path) -> None:
    async def swallow_then_hang_up(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.read(1)  # the XADDs arrived, as far as anyone can tell
        writer.close()

    server = await asyncio.start_server(swallow_then_hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    redis, metrics = _client(f"redis://127.0.0.1:{port}/0"), Metrics()
    publisher, spool = _pipeline(redis, tmp_path, metrics)
    pending = make_pending(3)

    _submit_all(publisher, pending)
    await publisher.stop(timeout_s=5)
    await spool.close()
    server.close()

    assert _spooled(tmp_path) == [p.payload for p in pending]
    assert metrics.totals()["proxy_records_ambiguous_total"] == 3
    await redis.aclose()
