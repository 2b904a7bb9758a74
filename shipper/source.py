"""The Redis stream the shipper reads: consumer group, reads, claims, acks and dead letters.

Every redis-py error is mapped here (and only here) to ``SourceUnavailable``, so the
worker deals with one kind of Redis failure: back off, then try again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from shared.streams import CONSUMER_GROUP, dead_letter_stream, intents_key

Fields = dict[bytes, bytes]


class SourceUnavailable(Exception):
    """Redis could not be reached or refused a command; retry later."""


@contextmanager
def mapped_redis_errors() -> Iterator[None]:
    """Turn any redis-py error into ``SourceUnavailable``."""
    try:
        yield
    except redis_errors.RedisError as exc:
        raise SourceUnavailable(f"{type(exc).__name__}: {exc}") from exc
    except OSError as exc:
        raise SourceUnavailable(f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One stream entry; ``fields`` is None when the entry was deleted while pending."""

    entry_id: str
    fields: Fields | None


# Deleting a consumer also drops its pending entries, so check and delete atomically:
# a consumer qualifies only with nothing pending and after a long silence.
_FORGET_STALE_CONSUMERS = """
local removed = {}
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #consumer, 2 do info[consumer[i]] = consumer[i + 1] end
  if info['pending'] == 0 and info['idle'] >= tonumber(ARGV[2]) and info['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    table.insert(removed, info['name'])
  end
end
return removed
"""


# redis-py's asyncio client packs every argument in Python: a script that takes the entry
# ids as ONE argument, joined by spaces (ids never contain one), spares packing a thousand.
# ``split_ids`` cuts that argument back into a Lua table.
LUA_SPLIT_IDS = """
local function split_ids(joined)
  local ids = {}
  for entry_id in string.gmatch(joined, '%S+') do
    ids[#ids + 1] = entry_id
  end
  return ids
end
"""

# Ack, delete and forget the intents of shipped entries, atomically (a script runs alone).
# KEYS: stream, intents hash. ARGV: group, joined entry ids. Lua's unpack() has a stack
# limit, hence the slices.
_FINISH = LUA_SPLIT_IDS + """
local ids = split_ids(ARGV[2])
for first = 1, #ids, 1000 do
  local last = math.min(first + 999, #ids)
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ids, first, last))
  redis.call('XDEL', KEYS[1], unpack(ids, first, last))
  redis.call('HDEL', KEYS[2], unpack(ids, first, last))
end
return #ids
"""


def join_ids(entry_ids: Sequence[str]) -> str:
    """Entry ids as one script argument, for ``split_ids``."""
    return " ".join(entry_ids)


def connect(redis_url: str) -> aioredis.Redis:
    """A client with bounded connect time, so an outage is noticed rather than waited on."""
    return aioredis.Redis.from_url(
        redis_url, socket_connect_timeout=5, health_check_interval=30, decode_responses=False
    )


def _entries(raw: Sequence[tuple[bytes, Fields | None]]) -> list[StreamEntry]:
    return [StreamEntry(entry_id.decode(), fields or None) for entry_id, fields in raw]


class StreamSource:
    """The shipper's view of ``REDIS_STREAM`` as one consumer of the shippers' group."""

    def __init__(self, client: aioredis.Redis, stream: str, consumer: str) -> None:
        self.client = client
        self.stream = stream
        self.group = CONSUMER_GROUP
        self.consumer = consumer
        self.intents_key = intents_key(stream)
        self.dead_stream = dead_letter_stream(stream)
        self._forget_script = client.register_script(_FORGET_STALE_CONSUMERS)
        self._finish_script = client.register_script(_FINISH)

    async def ensure_group(self) -> None:
        """Create the group from the start of the stream (and the stream) if missing."""
        with mapped_redis_errors():
            try:
                await self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            except redis_errors.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(self, after: str, count: int, block_ms: int | None) -> list[StreamEntry]:
        """``after='>'``: new entries (blocking up to ``block_ms``); an id: own pending ones."""
        with mapped_redis_errors():
            try:
                reply: Any = await self.client.xreadgroup(
                    self.group, self.consumer, {self.stream: after}, count=count, block=block_ms
                )
            except redis_errors.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # Redis lost its data (restart without persistence): start over.
                await self.ensure_group()
                return []
        if not reply:
            return []
        return _entries(reply[0][1])

    async def claim_idle(self, min_idle_ms: int, count: int) -> list[StreamEntry]:
        """Take over up to ``count`` entries another consumer left pending for ``min_idle_ms``."""
        claimed: list[StreamEntry] = []
        cursor = "0-0"
        with mapped_redis_errors():
            while len(claimed) < count:
                try:
                    reply: Any = await self.client.xautoclaim(
                        self.stream, self.group, self.consumer, min_idle_ms, cursor,
                        count=count - len(claimed),
                    )
                except redis_errors.ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    await self.ensure_group()
                    return claimed
                cursor = reply[0].decode()
                claimed.extend(_entries(reply[1]))
                if cursor == "0-0":
                    break
        return claimed

    async def finish(self, entry_ids: Sequence[str]) -> None:
        """Acknowledge and delete shipped entries and forget their intents, atomically."""
        if not entry_ids:
            return
        with mapped_redis_errors():
            await self._finish_script(
                keys=[self.stream, self.intents_key], args=[self.group, join_ids(entry_ids)]
            )

    async def dead_letter(self, entry: StreamEntry, reason: str) -> None:
        """Move an entry that cannot be shipped to the dead-letter stream, with the reason."""
        fields: dict[Any, Any] = dict(entry.fields or {})
        fields.update(reason=reason, entry_id=entry.entry_id, consumer=self.consumer)
        with mapped_redis_errors():
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.xadd(self.dead_stream, fields)
                pipe.xack(self.stream, self.group, entry.entry_id)
                pipe.xdel(self.stream, entry.entry_id)
                pipe.hdel(self.intents_key, entry.entry_id)
                await pipe.execute()

    async def forget_stale_consumers(self, min_idle_ms: int) -> list[str]:
        """Remove consumers (dead shippers) idle that long with nothing pending."""
        with mapped_redis_errors():
            try:
                removed = await self._forget_script(
                    keys=[self.stream], args=[self.group, min_idle_ms, self.consumer]
                )
            except redis_errors.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                return []
        return [name.decode() for name in removed]

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()
