"""REDIS_MIN_REPLICAS: a record counts as published only once enough replicas have it.

Against a real primary with a real replica (``--replicaof``): a short ``WAIT`` count is
ambiguous, the record is spooled and published again under the same id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from proxy.metrics import Metrics
from proxy.publish.drainer import Drainer
from proxy.publish.outcomes import Outcome, xadd_batch
from proxy.publish.publisher import Publisher
from proxy.publish.spool import Spool
from shared.replication import ReplicaWait
from shared.spool_format import read_records, segment_paths
from shared.streams import RECORD_FIELD
from tests.factories import make_pending
from tests.support.redis_sentinel import ReplicatedRedis

pytestmark = pytest.mark.slow  # each test starts several servers (docs/testing.md)

STREAM = "test:exchanges"


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicatedRedis]:
    with ReplicatedRedis(tmp_path_factory.mktemp("replicated"), replicas=1) as redis:
        yield redis


@pytest.fixture
async def primary(replicated: ReplicatedRedis) -> Any:
    client = Redis.from_url(replicated.url, socket_timeout=3)
    await client.delete(STREAM)
    yield client
    await client.aclose()


async def _payloads(client: Redis) -> list[bytes]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(STREAM))
    return [fields[RECORD_FIELD.encode()] for _, fields in entries]


async def test_a_batch_one_replica_confirmed_is_published(primary: Redis) -> None:
    landing = await xadd_batch(
        primary, STREAM, [b"a", b"b"], timeout_s=1, replica_wait=ReplicaWait(1, 1000)
    )

    assert landing.outcomes == [Outcome.PUBLISHED, Outcome.PUBLISHED]


async def test_a_short_count_is_ambiguous_although_the_primary_has_the_records(
    primary: Redis,
) -> None:
    # Two replicas asked for, one exists: the primary stored the entries, yet a failover
    # could lose them, so they are not counted as published.
    landing = await xadd_batch(
        primary, STREAM, [b"a", b"b"], timeout_s=1, replica_wait=ReplicaWait(2, 50)
    )

    assert landing.outcomes == [Outcome.AMBIGUOUS, Outcome.AMBIGUOUS]
    assert landing.error is not None and "WAIT 2" in landing.error
    assert await _payloads(primary) == [b"a", b"b"]


async def test_an_unconfirmed_record_is_spooled_and_published_again_under_its_id(
    primary: Redis, tmp_path: Path
) -> None:
    metrics = Metrics()
    spool = Spool(tmp_path, "w", metrics, max_bytes=1 << 26, full_policy="drop")
    publisher = Publisher(
        primary, STREAM, metrics, spool, queue_size=100, batch_size=10, timeout_s=1,
        replica_wait=ReplicaWait(2, 50),
    )
    spool.start()
    publisher.start()
    pending = make_pending(3)

    for item in pending:
        publisher.submit(item)
    await publisher.stop(timeout_s=5)
    await spool.close()

    totals = metrics.totals()
    assert totals["proxy_records_published_total"] == 0
    assert totals["proxy_records_ambiguous_total"] == 3
    spooled = [line for path in segment_paths(tmp_path) for line in read_records(path)]
    assert spooled == [p.payload for p in pending]

    # Once the replicas confirm, the drainer publishes the same bytes (the same ids) again;
    # the shipper lands each id once (tests/shipper/test_exactly_once.py).
    spool = Spool(tmp_path, "w2", metrics, max_bytes=1 << 26, full_policy="drop")
    spool.start()
    drainer = Drainer(
        primary, STREAM, spool, publisher, metrics, interval_s=0.1, timeout_s=1,
        replica_wait=ReplicaWait(1, 1000),
    )
    publisher.outage = True
    await drainer.drain_once()
    await spool.close()

    assert await _payloads(primary) == [p.payload for p in pending] * 2
    assert segment_paths(tmp_path) == []


class _Pipeline:
    """A pipeline whose second command lost its connection, as redis-py reports it."""

    def __init__(self, results: list[object]) -> None:
        self.results = results

    async def __aenter__(self) -> _Pipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def execute_command(self, *args: object) -> None:
        return None

    async def execute(self, raise_on_error: bool) -> list[object]:
        return self.results


class _Client:
    def __init__(self, results: list[object]) -> None:
        self.results = results

    def pipeline(self, transaction: bool) -> _Pipeline:
        return _Pipeline(self.results)


async def test_a_connection_error_on_one_command_is_ambiguous_and_a_reply_error_is_not() -> None:
    client = cast(Any, _Client([b"1-0", RedisConnectionError("lost"), ResponseError("OOM")]))

    landing = await xadd_batch(
        client, STREAM, [b"a", b"b", b"c"], timeout_s=1, replica_wait=ReplicaWait()
    )

    assert landing.outcomes == [Outcome.PUBLISHED, Outcome.AMBIGUOUS, Outcome.FAILED]
    assert landing.published_prefix == 1
