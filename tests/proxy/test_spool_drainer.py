"""The drainer against a real Redis: re-publish in order, hand back, adopt, drain once."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import cast

from redis.asyncio import Redis

from proxy.metrics import Metrics
from proxy.publish.drainer import Drainer
from proxy.publish.publisher import Publisher
from proxy.publish.spool import Spool
from shared.spool_format import segment_name, segment_paths, try_lock
from shared.streams import RECORD_FIELD
from tests.factories import make_pending
from tests.support.redis_server import RedisServer
from tests.support.waiting import async_wait_until

STREAM = "test:exchanges"
TIMEOUT_S = 0.3


class Pipeline:
    """A publisher, spool and drainer over one folder, as the proxy wires them."""

    def __init__(self, url: str, folder: Path, writer: str = "w") -> None:
        self.metrics = Metrics()
        self.redis = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=TIMEOUT_S)
        self.spool = Spool(folder, writer, self.metrics, max_bytes=1 << 26, full_policy="drop")
        self.publisher = Publisher(
            self.redis, STREAM, self.metrics, self.spool,
            queue_size=10_000, batch_size=50, timeout_s=TIMEOUT_S,
        )
        self.drainer = Drainer(
            self.redis, STREAM, self.spool, self.publisher, self.metrics,
            interval_s=0.05, timeout_s=TIMEOUT_S, batch_size=40,
        )

    def start(self) -> None:
        self.spool.start()
        self.publisher.start()
        self.drainer.start()

    async def stop(self) -> None:
        await self.drainer.stop()
        await self.publisher.stop(5)
        await self.spool.close()
        await self.redis.aclose()


async def _stream_ids(url: str) -> list[str]:
    redis = Redis.from_url(url)
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrange(STREAM))
    await redis.aclose()
    return [json.loads(fields[RECORD_FIELD.encode()])["id"] for _, fields in entries]


async def _until(condition: object, timeout_s: float = 10) -> None:
    await async_wait_until(condition, timeout_s, interval_s=0.02)  # type: ignore[arg-type]


async def test_an_outage_is_spooled_then_drained_in_order_and_publishing_resumes(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    pipeline = Pipeline(redis_server.url, tmp_path)
    pipeline.start()
    before, during, after = make_pending(30), make_pending(200), make_pending(30)
    for item in before:
        pipeline.publisher.submit(item)
    await _until(lambda: pipeline.metrics.totals()["proxy_records_published_total"] == 30)

    redis_server.stop()
    for item in during:
        pipeline.publisher.submit(item)
        await asyncio.sleep(0.001)
    await _until(lambda: pipeline.metrics.totals()["proxy_records_spooled_total"] == 200)
    assert pipeline.spool.holds_records
    redis_server.start()  # empty again: only what comes now counts
    await _until(lambda: not pipeline.spool.holds_records)
    for item in after:
        pipeline.publisher.submit(item)
    await _until(lambda: pipeline.metrics.totals()["proxy_records_published_total"] == 60)
    await pipeline.stop()

    assert await _stream_ids(redis_server.url) == [p.record_id for p in during + after]
    assert segment_paths(tmp_path) == []
    assert pipeline.metrics.totals()["proxy_records_drained_total"] == 200
    assert pipeline.metrics.totals()["proxy_records_dropped_total"] == 0


async def test_under_steady_load_the_spool_drains_in_order_and_hands_back(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    pipeline = Pipeline(redis_server.url, tmp_path)
    pipeline.start()
    redis_server.stop()
    first = make_pending(3000)
    for item in first:
        pipeline.publisher.submit(item)
    await _until(lambda: pipeline.metrics.totals()["proxy_records_spooled_total"] == 3000)
    redis_server.start()
    more = make_pending(4000)
    sent = 0
    while pipeline.spool.holds_records:  # steady load while the drainer catches up
        assert sent < len(more), "the publisher never got back to Redis under load"
        pipeline.publisher.submit(more[sent])
        sent += 1
        await asyncio.sleep(0.0005)
    for item in more[sent:]:
        pipeline.publisher.submit(item)
    await pipeline.stop()

    assert await _stream_ids(redis_server.url) == [p.record_id for p in first + more]
    assert segment_paths(tmp_path) == []


async def test_a_dead_writers_segment_is_adopted_torn_tail_and_all(
    redis_url: str, tmp_path: Path
) -> None:
    dead = make_pending(5)
    lines = b"".join(p.payload + b"\n" for p in dead)
    (tmp_path / segment_name(1, "dead-host-1")).write_bytes(lines + b'{"id": "torn')
    held = tmp_path / segment_name(2, "live-host-2")
    held.write_bytes(make_pending(1)[0].payload + b"\n")
    live_lock = try_lock(held)  # a live sibling still writing this one
    assert live_lock is not None
    pipeline = Pipeline(redis_url, tmp_path)
    pipeline.start()

    await _until(lambda: not (tmp_path / segment_name(1, "dead-host-1")).exists())
    await asyncio.sleep(0.2)
    await pipeline.stop()

    assert await _stream_ids(redis_url) == [p.record_id for p in dead]
    assert held.exists()  # never touched while its writer holds the lock
    os.close(live_lock)


async def test_replicas_sharing_a_folder_drain_each_segment_once(
    redis_url: str, tmp_path: Path
) -> None:
    orphans = [make_pending(100) for _ in range(8)]
    for number, records in enumerate(orphans):
        path = tmp_path / segment_name(number, f"gone-{number}")
        path.write_bytes(b"".join(p.payload + b"\n" for p in records))
    replicas = [Pipeline(redis_url, tmp_path, writer=f"r{n}") for n in range(3)]
    for replica in replicas:
        replica.start()

    await _until(lambda: segment_paths(tmp_path) == [])
    for replica in replicas:
        await replica.stop()

    ids = await _stream_ids(redis_url)
    assert sorted(ids) == sorted(p.record_id for records in orphans for p in records)
