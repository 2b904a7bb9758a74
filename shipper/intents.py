"""Write intents in Redis: how a shipper never writes a record twice.

The hash ``{REDIS_STREAM}:intents`` maps a stream entry id to the ``Placement``
(file, offset, length, sha256) of the chunk that entry is being appended in.
For every chunk, ``Sink.append`` fixes the placement (local: under an exclusive
``flock`` on the file; Azure: offset = blob size, written with an append-position
condition) and then calls the worker's ``prepare(placement)``, which:

1. for entries that may already have an intent (read back from this consumer's
   pending list, claimed from a dead shipper, or set by an earlier attempt),
   reads those intents and asks the sink whether each old placement ``landed``.
   Entries whose earlier chunk landed are done: nothing is written, the worker
   acknowledges them and retries the chunk with the rest. This check runs after
   the sink fixed the new placement, under the same lock or offset condition, so
   a slow earlier owner can no longer write behind our back;
2. atomically (one Lua script) checks with ``XPENDING`` that this consumer still
   owns every entry and only then records the new placement as their intent.
   Entries another shipper has claimed are returned; the worker drops them;
3. returns True, and the sink writes.

A write therefore happens only for entries owned at intent time, and any later
owner checks, under the same lock/condition, whether the earlier intent's bytes
landed before writing them again: each record lands exactly once. Entries read
fresh (``XREADGROUP >``) have no intent yet and skip step 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from shipper.sink import Placement
from shipper.source import LUA_SPLIT_IDS, join_ids, mapped_redis_errors

# KEYS: stream, intents hash. ARGV: group, consumer, encoded placement, joined entry ids.
_RECORD_INTENT = LUA_SPLIT_IDS + """
local ids = split_ids(ARGV[4])
local lost = {}
for _, entry_id in ipairs(ids) do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], entry_id, entry_id, 1)
  if #pending == 0 or pending[1][2] ~= ARGV[2] then
    table.insert(lost, entry_id)
  end
end
if #lost > 0 then
  return lost
end
for _, entry_id in ipairs(ids) do
  redis.call('HSET', KEYS[2], entry_id, ARGV[3])
end
return lost
"""


class IntentLedger:
    """The intents of one consumer of one stream."""

    def __init__(
        self, client: aioredis.Redis, stream: str, group: str, consumer: str, key: str
    ) -> None:
        self._client = client
        self._stream = stream
        self._group = group
        self._consumer = consumer
        self._key = key
        self._record_script = client.register_script(_RECORD_INTENT)

    async def recorded(self, entry_ids: Sequence[str]) -> dict[str, Placement]:
        """The placements recorded earlier for these entries (those that have one)."""
        if not entry_ids:
            return {}
        with mapped_redis_errors():
            raw = await self._client.hmget(self._key, list(entry_ids))
        return {
            entry_id: Placement.decode(value)
            for entry_id, value in zip(entry_ids, raw, strict=True)
            if value is not None
        }

    async def record(self, entry_ids: Sequence[str], placement: Placement) -> list[str]:
        """Record ``placement`` for all entries if this consumer owns them all.

        Returns the ids it no longer owns (nothing was recorded then), or ``[]``.
        """
        with mapped_redis_errors():
            lost = await self._record_script(
                keys=[self._stream, self._key],
                args=[self._group, self._consumer, placement.encode(), join_ids(entry_ids)],
            )
        return [entry_id.decode() for entry_id in lost]
