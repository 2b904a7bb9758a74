"""The Redis stream the shipper reads: consumer group, reads, claims, acks and dead letters.

Every redis-py error is mapped here (and only here) to ``SourceUnavailable``, so the
worker deals with one kind of Redis failure: back off, then try again. Every call is
bounded by the client's socket timeout, and redis-py's own retries are off: the
worker retries, so a shipper cut off from Redis gives up what it holds in bounded time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import msgspec
from redis import exceptions as redis_errors

from shared.redis_client import RedisClient, connect
from shared.replication import ReplicaWait
from shared.streams import (
    CONSUMER_GROUP,
    dead_letter_cut_key,
    dead_letter_stream,
    intents_key,
    shipped_key,
)
from shipper.settings import ShipperSettings

Fields = dict[bytes, bytes]


class SourceUnavailable(Exception):
    """Redis could not be reached, did not answer in time, or refused a command; retry later."""


@contextmanager
def mapped_redis_errors() -> Iterator[None]:
    """Turn any redis-py error into ``SourceUnavailable``."""
    try:
        yield
    except redis_errors.RedisError as exc:
        raise SourceUnavailable(f"{type(exc).__name__}: {exc}") from exc
    except OSError as exc:
        raise SourceUnavailable(f"{type(exc).__name__}: {exc}") from exc


class StreamEntry(NamedTuple):
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
# ``split_ids`` cuts that argument back into a Lua table. Record ids are free text, so
# they travel as one JSON array instead.
LUA_SPLIT_IDS = """
local function split_ids(joined)
  local ids = {}
  for entry_id in string.gmatch(joined, '%S+') do
    ids[#ids + 1] = entry_id
  end
  return ids
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# Ack and delete shipped entries; forget their records' intents and remember the records
# as shipped (docs/delivery.md), atomically. KEYS: stream, intents, shipped.
# ARGV: group, joined entry ids, JSON record ids, retention in ms. Lua's unpack() has a
# stack limit, hence the slices.
_FINISH = LUA_SPLIT_IDS + """
local ids = split_ids(ARGV[2])
for first = 1, #ids, 1000 do
  local last = math.min(first + 999, #ids)
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ids, first, last))
  redis.call('XDEL', KEYS[1], unpack(ids, first, last))
end
local records = cjson.decode(ARGV[3])
local now = now_ms()
for first = 1, #records, 500 do
  local last = math.min(first + 499, #records)
  redis.call('HDEL', KEYS[2], unpack(records, first, last))
  local scored = {}
  for i = first, last do
    scored[#scored + 1] = now
    scored[#scored + 1] = records[i]
  end
  redis.call('ZADD', KEYS[3], unpack(scored))
end
local retention = tonumber(ARGV[4])
if #records > 0 and retention > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - retention)
end
return #ids
"""

# Move one entry to the capped dead-letter stream, count what the cap cut, ack, delete,
# forget its record's intents. Idempotent: an entry no longer in the stream is only acked.
# KEYS: stream, dead, cut counter, intents. ARGV: group, entry id, cap, record id or '',
# then field/value pairs.
_DEAD_LETTER = """
if #redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) == 0 then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  return 0
end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 5))
local cut = redis.call('XTRIM', KEYS[2], 'MAXLEN', tonumber(ARGV[3]))
if cut > 0 then
  redis.call('INCRBY', KEYS[3], cut)
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if ARGV[4] ~= '' then
  redis.call('HDEL', KEYS[4], ARGV[4])
end
return 1
"""


# Reset the idle time of entries this consumer still owns (and only those), so a chunk in
# backoff is not claimed from a live shipper. KEYS: stream. ARGV: group, consumer, ids.
_TOUCH = LUA_SPLIT_IDS + """
local touched = 0
for _, entry_id in ipairs(split_ids(ARGV[3])) do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], entry_id, entry_id, 1)
  if #pending > 0 and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, entry_id, 'JUSTID')
    touched = touched + 1
  end
end
return touched
"""


def join_ids(entry_ids: Sequence[str]) -> str:
    """Entry ids as one script argument, for ``split_ids``."""
    return " ".join(entry_ids)


def json_ids(record_ids: Sequence[str]) -> bytes:
    """Record ids as one script argument (``cjson.decode`` in the script)."""
    return msgspec.json.encode(record_ids)


def _entries(raw: Sequence[tuple[bytes, Fields | None]]) -> list[StreamEntry]:
    return [StreamEntry(entry_id.decode(), fields or None) for entry_id, fields in raw]


class StreamSource:
    """The shipper's view of ``REDIS_STREAM`` as one consumer of the shippers' group."""

    def __init__(
        self,
        client: RedisClient,
        stream: str,
        consumer: str,
        *,
        shipped_retention_ms: int = 3 * 24 * 3600 * 1000,
        dead_letter_max_entries: int = 100_000,
        replica_wait: ReplicaWait | None = None,
    ) -> None:
        self.client = client
        self.replica_wait = replica_wait or ReplicaWait()
        """Intents and acks count once this many replicas have them (``REDIS_MIN_REPLICAS``)."""
        self.stream = stream
        self.group = CONSUMER_GROUP
        self.consumer = consumer
        self.intents_key = intents_key(stream)
        self.shipped_key = shipped_key(stream)
        self.dead_stream = dead_letter_stream(stream)
        self.shipped_retention_ms = shipped_retention_ms
        self.dead_letter_max_entries = dead_letter_max_entries
        self._forget_script = client.register_script(_FORGET_STALE_CONSUMERS)
        self._finish_script = client.register_script(_FINISH)
        self._dead_letter_script = client.register_script(_DEAD_LETTER)
        self._touch_script = client.register_script(_TOUCH)

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
        # RESP2 answers a list of [stream, entries]; RESP3 a map of stream -> entries.
        batch = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))[0]
        return _entries(batch)

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

    async def finish(self, entry_ids: Sequence[str], record_ids: Sequence[str]) -> None:
        """Ack and delete entries, and remember their records as shipped, atomically."""
        if not entry_ids and not record_ids:
            return
        # An ack no replica confirmed is retried: a failover must not forget a shipped id.
        with mapped_redis_errors():
            await self.replica_wait.run_script(
                self.client, self._finish_script,
                [self.stream, self.intents_key, self.shipped_key],
                [self.group, join_ids(entry_ids), json_ids(record_ids), self.shipped_retention_ms],
            )

    async def touch(self, entry_ids: Sequence[str]) -> int:
        """Mark entries this consumer still owns as alive (not idle); returns how many."""
        if not entry_ids:
            return 0
        with mapped_redis_errors():
            touched = await self._touch_script(
                keys=[self.stream], args=[self.group, self.consumer, join_ids(entry_ids)]
            )
        return int(touched)

    async def dead_letter(
        self, entry: StreamEntry, reason: str, *, target: str = "", record_id: str = ""
    ) -> None:
        """Move an entry that can never be shipped to the dead-letter stream, with the reason."""
        fields: dict[Any, Any] = dict(entry.fields or {})
        fields.update(reason=reason, entry_id=entry.entry_id, consumer=self.consumer)
        if target:
            fields["target"] = target
        flat = [item for pair in fields.items() for item in pair]
        with mapped_redis_errors():
            await self._dead_letter_script(
                keys=[self.stream, self.dead_stream, dead_letter_cut_key(self.stream),
                      self.intents_key],
                args=[self.group, entry.entry_id, self.dead_letter_max_entries, record_id, *flat],
            )

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


def build_source(settings: ShipperSettings, consumer: str, block_ms: int = 0) -> StreamSource:
    """A ``StreamSource`` with its own connection, every call bounded as ``settings`` say."""
    client = connect(settings, timeout_s=settings.shipper_redis_timeout_s,
                     block_ms=block_ms, keepalive=True)
    return StreamSource(
        client, settings.redis_stream, consumer,
        shipped_retention_ms=int(settings.shipper_shipped_ids_retention_s * 1000),
        dead_letter_max_entries=settings.shipper_dead_letter_max_entries,
        replica_wait=settings.replica_wait,
    )
