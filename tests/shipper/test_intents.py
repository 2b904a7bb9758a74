"""The intent protocol's Redis side and the consumer housekeeping, against a real Redis."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from shared.streams import CONSUMER_GROUP, RECORD_FIELD, intents_key
from shipper.intents import IntentLedger
from shipper.sink import Placement
from shipper.source import StreamSource
from tests.shipper.conftest import STREAM

PLACEMENT = Placement.of("u_m_20240101.jsonl", 0, b"{}\n")


def _ledger(client: aioredis.Redis, consumer: str) -> IntentLedger:
    return IntentLedger(client, STREAM, CONSUMER_GROUP, consumer, intents_key(STREAM))


async def test_an_intent_is_recorded_only_while_the_consumer_owns_every_entry(
    redis_url: str, redis_client: redis.Redis
) -> None:
    ids = [redis_client.xadd(STREAM, {RECORD_FIELD: b"{}"}).decode() for _ in range(3)]
    redis_client.xgroup_create(STREAM, CONSUMER_GROUP, id="0")
    redis_client.xreadgroup(CONSUMER_GROUP, "slow", {STREAM: ">"})
    client = aioredis.Redis.from_url(redis_url)
    slow, fast = _ledger(client, "slow"), _ledger(client, "fast")
    # Another shipper claims one entry: the slow one may record nothing at all.
    redis_client.xclaim(STREAM, CONSUMER_GROUP, "fast", 0, [ids[1]])
    assert await slow.record(ids, PLACEMENT) == [ids[1]]
    assert await slow.recorded(ids) == {}
    assert await slow.record([ids[0], ids[2]], PLACEMENT) == []
    assert await fast.record([ids[1]], PLACEMENT) == []
    assert await fast.recorded(ids) == {entry_id: PLACEMENT for entry_id in ids}
    await client.aclose()


async def test_only_long_idle_consumers_without_pending_entries_are_removed(
    redis_url: str, redis_client: redis.Redis
) -> None:
    redis_client.xgroup_create(STREAM, CONSUMER_GROUP, id="0", mkstream=True)
    redis_client.xadd(STREAM, {RECORD_FIELD: b"{}"})
    redis_client.xreadgroup(CONSUMER_GROUP, "holds-one", {STREAM: ">"})
    redis_client.xgroup_createconsumer(STREAM, CONSUMER_GROUP, "idle-empty")
    source = StreamSource(aioredis.Redis.from_url(redis_url), STREAM, "me")
    assert await source.forget_stale_consumers(min_idle_ms=60_000) == []
    assert await source.forget_stale_consumers(min_idle_ms=0) == ["idle-empty"]
    names = {c["name"] for c in redis_client.xinfo_consumers(STREAM, CONSUMER_GROUP)}
    assert names == {b"holds-one"} or names == {"holds-one"}
    await source.close()


async def test_finish_acks_deletes_and_forgets_a_large_batch_atomically(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # More ids than one Lua unpack() slice, and one entry that must stay.
    pipe = redis_client.pipeline(transaction=False)
    for _ in range(2501):
        pipe.xadd(STREAM, {RECORD_FIELD: b"{}"})
    ids = [entry_id.decode() for entry_id in pipe.execute()]
    redis_client.xgroup_create(STREAM, CONSUMER_GROUP, id="0")
    redis_client.xreadgroup(CONSUMER_GROUP, "me", {STREAM: ">"})
    redis_client.hset(intents_key(STREAM), mapping={entry_id: "x" for entry_id in ids})
    source = StreamSource(aioredis.Redis.from_url(redis_url), STREAM, "me")
    await source.finish(ids[:-1])
    assert [entry_id.decode() for entry_id, _ in redis_client.xrange(STREAM)] == ids[-1:]
    assert redis_client.xpending(STREAM, CONSUMER_GROUP)["pending"] == 1
    assert redis_client.hkeys(intents_key(STREAM)) == [ids[-1].encode()]
    await source.close()
