"""The shipper on a real Redis Cluster of three masters: every script touches one slot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from redis.cluster import RedisCluster as SyncCluster

from shared.streams import RECORD_FIELD, dead_letter_stream, intents_key, shipped_key
from shipper.settings import ShipperSettings
from tests.factories import make_record
from tests.shipper.conftest import running_worker, shipped_ids
from tests.support.redis_cluster import RedisCluster
from tests.support.waiting import async_wait_until

STREAM = "{proxy}:exchanges"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    with RedisCluster(tmp_path / "cluster") as started:
        yield started


def test_a_cluster_needs_a_hash_tagged_stream() -> None:
    with pytest.raises(ValidationError, match="hash-tagged"):
        ShipperSettings(_env_file=None, redis_cluster=True,  # type: ignore[call-arg]
                        redis_stream="proxy:exchanges")


@pytest.mark.slow
async def test_the_shipper_ships_exactly_once_on_a_three_master_cluster(
    cluster: RedisCluster, shipper_settings: ShipperSettings, log_dir: Path
) -> None:
    settings = shipper_settings.model_copy(update={
        "redis_url": cluster.url, "redis_cluster": True, "redis_stream": STREAM,
        "shipper_dead_letter_max_entries": 2,
    })
    client = SyncCluster.from_url(cluster.url)
    records = [make_record(user_id=f"u{n % 3}") for n in range(200)]
    for record in [*records, records[0]]:  # one published twice
        client.xadd(STREAM, {RECORD_FIELD: record.to_json()})
    for _ in range(3):
        client.xadd(STREAM, {RECORD_FIELD: b"not json"})

    def drained() -> bool:
        return int(client.xlen(STREAM)) == 0

    async with running_worker(settings) as worker:
        await async_wait_until(drained, what="the stream drained")
    ids = shipped_ids(log_dir)
    assert sorted(ids) == sorted(r.id for r in records)
    assert worker.totals.records_already_landed_total == 1
    assert int(client.xlen(dead_letter_stream(STREAM))) == 2
    assert int(client.zcard(shipped_key(STREAM))) == 200
    assert int(client.hlen(intents_key(STREAM))) == 0
    # The keys really are spread over a cluster, and ours share one slot.
    slots = {client.keyslot(key) for key in (STREAM, shipped_key(STREAM), intents_key(STREAM))}
    assert len(slots) == 1 and client.keyslot("proxy:exchanges") not in slots
    client.close()
