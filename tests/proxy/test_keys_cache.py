"""The key snapshot of one replica, in-process over fakeredis: reloads, expiry, outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import fakeredis
import pytest

from proxy.auth import StaticKeyStore, key_digest
from proxy.keys.cache import KeyCache
from proxy.keys.entry import new_key
from proxy.keys.store import KeysUnavailable, RedisKeys
from shared.streams import KEYS_ENTRIES


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
async def client(server: fakeredis.FakeServer) -> AsyncIterator[fakeredis.aioredis.FakeRedis]:
    client = fakeredis.aioredis.FakeRedis(server=server)
    yield client
    await client.aclose()


@pytest.fixture
def keys(client: fakeredis.aioredis.FakeRedis) -> RedisKeys:
    return RedisKeys(client)


def cache_over(keys: RedisKeys, now: list[float] | None = None) -> KeyCache:
    """A cache with one static key; its clock reads ``now[0]`` (default: the real time)."""
    static = StaticKeyStore([("pk-static-key-0001", "operator")])
    clock = (lambda: now[0]) if now is not None else time.time
    return KeyCache(keys, static, refresh_interval_s=1.0, clock=clock)


async def test_a_snapshot_is_reloaded_only_when_the_version_moves(keys: RedisKeys) -> None:
    cache = cache_over(keys)
    alice, alice_entry = new_key("alice")
    await keys.add(alice_entry)

    assert await cache.refresh() is True
    assert await cache.refresh() is False  # same version: one GET, no reload
    assert await cache.user_for(key_digest(alice)) == "alice"
    assert await cache.user_for(key_digest("pk-static-key-0001")) == "operator"
    assert await cache.user_for(key_digest("pk-nobody")) is None

    assert await keys.remove(alice_entry.key_id) is True
    assert await cache.refresh() is True
    assert await cache.user_for(key_digest(alice)) is None


async def test_an_expired_key_is_refused(keys: RedisKeys) -> None:
    now = [datetime.now(UTC).timestamp()]
    cache = cache_over(keys, now)
    key, entry = new_key("bob", datetime.now(UTC) + timedelta(hours=1))
    await keys.add(entry)
    await cache.refresh()

    assert await cache.user_for(key_digest(key)) == "bob"
    now[0] += 2 * 3600
    assert await cache.user_for(key_digest(key)) is None


async def test_the_last_snapshot_serves_through_an_outage(
    keys: RedisKeys, server: fakeredis.FakeServer
) -> None:
    cache = cache_over(keys)
    kept, kept_entry = new_key("carol")
    revoked, revoked_entry = new_key("dave")
    await keys.add(kept_entry)
    await keys.add(revoked_entry)
    await keys.remove(revoked_entry.key_id)
    await cache.refresh()

    server.connected = False
    with pytest.raises(KeysUnavailable):
        await cache.refresh()
    assert await cache.user_for(key_digest(kept)) == "carol"
    assert await cache.user_for(key_digest(revoked)) is None


async def test_a_malformed_entry_does_not_hide_the_others(
    keys: RedisKeys, client: fakeredis.aioredis.FakeRedis
) -> None:
    cache = cache_over(keys)
    key, entry = new_key("erin")
    await keys.add(entry)
    await client.hset(KEYS_ENTRIES, "broken", "{not json")
    await keys.add(new_key("frank")[1])  # bumps the version past the broken write

    await cache.refresh()
    assert len(cache) == 2
    assert await cache.user_for(key_digest(key)) == "erin"


def test_nothing_but_the_digest_of_a_key_is_stored() -> None:
    key, entry = new_key("grace")
    assert key.startswith(entry.prefix)
    assert key not in entry.to_json() and key[len(entry.prefix) :] not in entry.to_json()


async def test_a_replica_started_during_an_outage_loads_the_keys_when_redis_is_back(
    keys: RedisKeys, server: fakeredis.FakeServer
) -> None:
    key, entry = new_key("heidi")
    await keys.add(entry)
    server.connected = False
    cache = KeyCache(keys, StaticKeyStore([]), refresh_interval_s=0.02)
    await cache.start(first_load_timeout_s=1.0)
    try:
        assert not cache.loaded
        assert await cache.user_for(key_digest(key)) is None

        server.connected = True
        for _ in range(100):
            if cache.loaded:
                break
            await asyncio.sleep(0.02)
        assert await cache.user_for(key_digest(key)) == "heidi"
    finally:
        await cache.stop(timeout_s=1.0)
