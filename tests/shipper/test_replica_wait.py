"""REDIS_MIN_REPLICAS in the shipper: an intent or an ack no replica confirmed is not done.

Real primary, real replica. The scripts' writes stay on the primary, but the caller sees
``SourceUnavailable`` and repeats the step, as after a lost reply.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis

from shared.replication import ReplicaWait
from shared.streams import CONSUMER_GROUP, RECORD_FIELD, intents_key, shipped_key
from shipper.intents import IntentLedger
from shipper.sink import Placement
from shipper.source import SourceUnavailable, StreamSource
from tests.support.redis_sentinel import ReplicatedRedis

pytestmark = pytest.mark.slow  # each test starts several servers (docs/testing.md)

STREAM = "wait:exchanges"
HERE = Placement.of("u_m_20240101.jsonl", 0, b"{}\n")


@pytest.fixture
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicatedRedis]:
    with ReplicatedRedis(tmp_path_factory.mktemp("replicated"), replicas=1) as server:
        yield server


def _source(url: str, wait: ReplicaWait) -> StreamSource:
    return StreamSource(aioredis.Redis.from_url(url), STREAM, "me", replica_wait=wait)


def _ledger(source: StreamSource) -> IntentLedger:
    return IntentLedger(source.client, STREAM, CONSUMER_GROUP, "me", intents_key(STREAM),
                        shipped_key(STREAM), source.replica_wait)


async def test_intents_and_acks_wait_for_replicas(replicated: ReplicatedRedis) -> None:
    direct = redis.Redis.from_url(replicated.url)
    direct.xgroup_create(STREAM, CONSUMER_GROUP, id="0", mkstream=True)
    entry, second = (direct.xadd(STREAM, {RECORD_FIELD: b"{}"}).decode() for _ in range(2))
    direct.xreadgroup(CONSUMER_GROUP, "me", {STREAM: ">"})
    short = _source(replicated.url, ReplicaWait(2, 50))  # one replica exists

    with pytest.raises(SourceUnavailable, match="WAIT 2"):
        await _ledger(short).place(HERE, ["r1"], [entry], force=False)
    # The intent is on the primary: the retry sees it as an earlier placement to check.
    assert direct.hget(intents_key(STREAM), "r1") is not None
    with pytest.raises(SourceUnavailable, match="WAIT 2"):
        await short.finish([entry], ["r1"])
    await short.close()

    # A promoted replica has none of the scripts: the wait path loads them again.
    direct.script_flush()
    enough = _source(replicated.url, ReplicaWait(1, 1000))
    verdict = await _ledger(enough).place(HERE, ["r2"], [second], force=False)
    assert verdict.recorded
    await enough.finish([second], ["r2"])
    assert direct.zscore(shipped_key(STREAM), "r2") is not None
    with replicated.replicas[0].client() as replica:
        assert replica.zscore(shipped_key(STREAM), "r2") is not None
    await enough.close()
    direct.close()
