"""The keys in Redis: every read and write, with Redis errors mapped to ``KeysUnavailable``.

Layout and protocol: ``proxy.keys``. Writes are ``MULTI`` transactions over keys of one
hash tag, so they work on Redis Cluster too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError
from redis.exceptions import RedisError

from proxy.keys.entry import KeyEntry
from shared.logs import log_event
from shared.redis_client import RedisClient
from shared.streams import KEYS_ENTRIES, KEYS_LAST_USED, KEYS_VERSION

logger = logging.getLogger(__name__)

# Only for keys that still exist (a revoked key gets no time back), never moving a time
# backwards (replicas flush independently).
_MARK_USED = """
for i = 1, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    local old = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
    if tonumber(ARGV[i + 1]) > old then
      redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    end
  end
end
return 0
"""


class KeysUnavailable(Exception):
    """Redis did not answer (or refused) while reading or writing keys."""


@contextmanager
def redis_errors(action: str) -> Iterator[None]:
    """Turn Redis and socket errors into ``KeysUnavailable`` naming ``action``."""
    try:
        yield
    except (RedisError, OSError, TimeoutError) as exc:
        raise KeysUnavailable(f"Redis failed while {action}: {type(exc).__name__}") from exc


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parsed(raw: dict[bytes, bytes]) -> list[KeyEntry]:
    entries = []
    for key_id, value in raw.items():
        try:
            entries.append(KeyEntry.from_json(value))
        except ValidationError:
            # A hand-edited or foreign entry must not take every other key down with it.
            log_event(logger, "key_entry_invalid", logging.WARNING, key_id=_text(key_id))
    return entries


class RedisKeys:
    """The key entries, the version counter and the last-used times in Redis."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._mark_used = redis.register_script(_MARK_USED)

    async def add(self, entry: KeyEntry) -> None:
        with redis_errors("storing a key"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(KEYS_ENTRIES, entry.key_id, entry.to_json())
                pipe.incr(KEYS_VERSION)
                await pipe.execute()

    async def remove(self, key_id: str) -> bool:
        """Delete a key's entry; ``False`` when there was none."""
        with redis_errors("revoking a key"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hdel(KEYS_ENTRIES, key_id)
                pipe.hdel(KEYS_LAST_USED, key_id)
                pipe.incr(KEYS_VERSION)
                removed, _, _ = await pipe.execute()
        return bool(removed)

    async def version(self) -> int:
        with redis_errors("reading the keys' version"):
            value = await self._redis.get(KEYS_VERSION)
        return int(value or 0)

    async def snapshot(self) -> tuple[int, list[KeyEntry]]:
        """The version and every entry, read atomically."""
        with redis_errors("loading the keys"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(KEYS_VERSION)
                pipe.hgetall(KEYS_ENTRIES)
                version, raw = await pipe.execute()
        return int(version or 0), _parsed(raw)

    async def last_used(self) -> dict[str, float]:
        """Key id -> epoch seconds of its last accepted request."""
        with redis_errors("reading last-used times"):
            raw = await self._redis.hgetall(KEYS_LAST_USED)
        return {_text(key_id): float(value) for key_id, value in raw.items()}

    async def mark_used(self, times: dict[str, float]) -> None:
        """Record when keys were last used (epoch seconds)."""
        if not times:
            return
        args = [item for key_id, at in times.items() for item in (key_id, repr(at))]
        with redis_errors("writing last-used times"):
            await self._mark_used(keys=[KEYS_ENTRIES, KEYS_LAST_USED], args=args)
