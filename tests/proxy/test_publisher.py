"""The publisher against a real Redis: XADD off the response path, failures to the fallback."""

from __future__ import annotations

import asyncio
from typing import cast

from redis.asyncio import Redis

from proxy.metrics import Metrics
from proxy.publish.publisher import PendingRecord, Publisher
from shared.streams import RECORD_FIELD
from tests.factories import make_record
from tests.support.redis_server import RedisServer

STREAM = "test:exchanges"


def _publisher(
    redis: Redis, metrics: Metrics, fallen: list[tuple[str, str]], expected: int = 0
) -> tuple[Publisher, asyncio.Event]:
    all_fallen = asyncio.Event()

    async def fallback(pending: PendingRecord, reason: str) -> None:
        fallen.append((pending.record_id, reason))
        if len(fallen) == expected:
            all_fallen.set()

    publisher = Publisher(redis, STREAM, metrics, fallback, queue_size=1000, batch_size=10)
    return publisher, all_fallen


def _pending(count: int) -> list[PendingRecord]:
    records = [make_record() for _ in range(count)]
    return [PendingRecord(record.id, record.to_json()) for record in records]


async def test_records_are_published_one_entry_each_and_drained_at_stop(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    metrics, fallen = Metrics(), list[tuple[str, str]]()
    publisher, _ = _publisher(redis, metrics, fallen)
    pending = _pending(35)
    publisher.start()

    for item in pending:
        publisher.submit(item)
    await publisher.stop(timeout_s=5)

    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrange(STREAM))
    assert [fields[RECORD_FIELD.encode()] for _, fields in entries] == [p.payload for p in pending]
    assert metrics.totals()["proxy_records_published_total"] == 35
    assert fallen == []
    await redis.aclose()


async def test_a_failed_publish_goes_to_the_fallback_and_is_counted(
    redis_server: RedisServer,
) -> None:
    redis = Redis.from_url(redis_server.url, socket_timeout=1, socket_connect_timeout=1)
    metrics, fallen = Metrics(), list[tuple[str, str]]()
    publisher, all_fallen = _publisher(redis, metrics, fallen, expected=3)
    publisher.start()
    redis_server.stop()
    pending = _pending(3)

    for item in pending:
        publisher.submit(item)
    await asyncio.wait_for(all_fallen.wait(), timeout=10)
    await publisher.stop(timeout_s=1)

    assert fallen == [(p.record_id, "publish_failed") for p in pending]
    assert metrics.totals()["proxy_record_publish_failures_total"] == 3
    assert metrics.totals()["proxy_records_published_total"] == 0
    await redis.aclose()

