"""The Redis side of the protocol (intents, shipped ids, sweeping) against a real Redis."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from shared.streams import CONSUMER_GROUP, RECORD_FIELD, intents_key, shipped_key
from shipper.intents import IntentLedger
from shipper.sink import Placement
from shipper.source import StreamSource
from tests.shipper.conftest import STREAM

HERE = Placement.of("u_m_20240101.jsonl", 0, b"{}\n")
THERE = Placement.of("u_m_20240101.jsonl", 3, b"{}\n")


def _ledger(client: aioredis.Redis, consumer: str | None) -> IntentLedger:
    return IntentLedger(client, STREAM, CONSUMER_GROUP, consumer, intents_key(STREAM),
                        shipped_key(STREAM))


async def test_placements_accumulate_and_ownership_is_checked(
    redis_url: str, redis_client: redis.Redis
) -> None:
    ids = [redis_client.xadd(STREAM, {RECORD_FIELD: b"{}"}).decode() for _ in range(3)]
    redis_client.xgroup_create(STREAM, CONSUMER_GROUP, id="0")
    redis_client.xreadgroup(CONSUMER_GROUP, "slow", {STREAM: ">"})
    client = aioredis.Redis.from_url(redis_url)
    slow, fast = _ledger(client, "slow"), _ledger(client, "fast")
    records = [f"r{n}" for n in range(3)]
    assert (await slow.place(HERE, records, ids, force=False)).recorded
    # Another shipper claims one entry: the slow one may record nothing more for it.
    redis_client.xclaim(STREAM, CONSUMER_GROUP, "fast", 0, [ids[1]])
    verdict = await slow.place(THERE, records, ids, force=True)
    assert not verdict.recorded and verdict.lost_owners == {ids[1]}
    # The new owner sees the earlier placement, and adds its own without erasing it.
    verdict = await fast.place(THERE, ["r1"], ids[1:2], force=False)
    assert not verdict.recorded and verdict.earlier == {"r1": [HERE]}
    assert (await fast.place(THERE, ["r1"], ids[1:2], force=True)).recorded
    assert (await fast.place(THERE, ["r1"], ids[1:2], force=True)).recorded  # no twin line
    verdict = await fast.place(HERE, ["r1"], ids[1:2], force=False)
    assert verdict.earlier == {"r1": [HERE, THERE]}
    await client.aclose()


async def test_a_shipped_record_is_never_placed_again_and_sweeping_forgets_the_gone(
    redis_url: str, redis_client: redis.Redis
) -> None:
    redis_client.xgroup_create(STREAM, CONSUMER_GROUP, id="0", mkstream=True)
    ids = [redis_client.xadd(STREAM, {RECORD_FIELD: b"{}"}).decode() for _ in range(3)]
    redis_client.xreadgroup(CONSUMER_GROUP, "me", {STREAM: ">"})
    source = StreamSource(aioredis.Redis.from_url(redis_url), STREAM, "me")
    ledger = _ledger(source.client, "me")
    assert (await ledger.place(HERE, ["same", "other", "gone"], ids, force=False)).recorded
    await source.finish([ids[0]], ["same"])
    # The same record id in another entry (a retried XADD) is known as shipped.
    redis_client.xadd(STREAM, {RECORD_FIELD: b"{}"})
    verdict = await ledger.place(THERE, ["same"], ids[1:2], force=True)
    assert verdict.shipped_ids == {"same"} and not verdict.recorded
    redis_client.xdel(STREAM, ids[2])  # left the stream without an ack
    assert await ledger.sweep() == 1
    assert set(redis_client.hkeys(intents_key(STREAM))) == {b"other"}
    replaying = _ledger(source.client, None)
    assert (await replaying.place(HERE, ["spooled"], ["replay:x"], force=False)).recorded
    assert await ledger.sweep() == 0  # a replay's intent lives for its max age
    assert await ledger.sweep(replay_max_age_ms=0) == 1
    await source.close()


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


async def test_finish_acks_deletes_and_remembers_a_large_batch_atomically(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # More ids than one Lua unpack() slice, and one entry that must stay.
    pipe = redis_client.pipeline(transaction=False)
    for _ in range(2501):
        pipe.xadd(STREAM, {RECORD_FIELD: b"{}"})
    ids = [entry_id.decode() for entry_id in pipe.execute()]
    redis_client.xgroup_create(STREAM, CONSUMER_GROUP, id="0")
    redis_client.xreadgroup(CONSUMER_GROUP, "me", {STREAM: ">"})
    records = [f"rec {n} with spaces" for n in range(2501)]
    redis_client.hset(intents_key(STREAM), mapping=dict.fromkeys(records, "x"))
    source = StreamSource(aioredis.Redis.from_url(redis_url), STREAM, "me")
    await source.finish(ids[:-1], records[:-1])
    assert [entry_id.decode() for entry_id, _ in redis_client.xrange(STREAM)] == ids[-1:]
    assert redis_client.xpending(STREAM, CONSUMER_GROUP)["pending"] == 1
    assert redis_client.hkeys(intents_key(STREAM)) == [records[-1].encode()]
    assert redis_client.zcard(shipped_key(STREAM)) == 2500
    await source.close()


async def test_a_placement_of_more_ids_than_one_slice_finds_and_records_each(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # The script looks ids up and records them 1,000 (or 500 pairs) at a time.
    records = [f"rec {n}" for n in range(2501)]
    owners = [f"replay:{n}" for n in range(2501)]
    redis_client.zadd(shipped_key(STREAM), {records[1000]: 1, records[2500]: 1})
    redis_client.hset(intents_key(STREAM), records[1999], f"replay:x\t1\t{THERE.encode()}")
    client = aioredis.Redis.from_url(redis_url)
    ledger = _ledger(client, None)
    verdict = await ledger.place(HERE, records, owners, force=False)
    assert not verdict.recorded
    assert verdict.shipped_ids == {records[1000], records[2500]}
    assert verdict.earlier == {records[1999]: [THERE]}
    unshipped = [record for record in records if record not in verdict.shipped_ids]
    unshipped_owners = [owners[records.index(record)] for record in unshipped]
    assert (await ledger.place(HERE, unshipped, unshipped_owners, force=True)).recorded
    intents = redis_client.hgetall(intents_key(STREAM))
    assert len(intents) == 2499
    assert intents[b"rec 0"].decode().startswith("replay:0\t")
    assert intents[b"rec 2499"].decode().startswith("replay:2499\t")
    assert intents[b"rec 1999"].decode().count("\n") == 1  # the earlier line kept, ours added
    await client.aclose()
