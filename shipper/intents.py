"""The Redis side of the exactly-once protocol (docs/delivery.md): intents and shipped ids.

``{REDIS_STREAM}:intents`` maps a record id to every placement it was ever given,
one line each: ``owner\\tms\\tplacement`` (owner: the stream entry, or a replay's
tag). ``{REDIS_STREAM}:shipped`` holds the ids that landed, for a retention window.
Both are only ever read and written by the scripts below, so each check-and-record
is atomic, and every key is ``{REDIS_STREAM}:...`` (one Cluster slot).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.redis_client import RedisClient
from shared.replication import ReplicaWait
from shipper.sink import Placement
from shipper.source import LUA_SPLIT_IDS, join_ids, json_ids, mapped_redis_errors

# KEYS: stream, intents, shipped. ARGV: group, consumer ('' = no ownership to check),
# placement, JSON record ids, joined owners (one per record), force ('1': record although
# earlier placements exist, the caller checked them). Returns {recorded, lost owners,
# shipped record ids, flat [record id, intents, ...]}.
_PLACE = LUA_SPLIT_IDS + """
local records = cjson.decode(ARGV[4])
local owners = split_ids(ARGV[5])
local lost, shipped, earlier = {}, {}, {}
if ARGV[2] ~= '' then
  for _, owner in ipairs(owners) do
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], owner, owner, 1)
    if #pending == 0 or pending[1][2] ~= ARGV[2] then
      table.insert(lost, owner)
    end
  end
end
-- One call per slice of ids, not per id: Lua's calls into Redis cost more than the lookups.
local known = {}
for first = 1, #records, 1000 do
  local last = math.min(first + 999, #records)
  local scores = redis.call('ZMSCORE', KEYS[3], unpack(records, first, last))
  local placed = redis.call('HMGET', KEYS[2], unpack(records, first, last))
  for i = first, last do
    if scores[i - first + 1] then
      table.insert(shipped, records[i])
    elseif placed[i - first + 1] then
      known[i] = placed[i - first + 1]
      if ARGV[6] ~= '1' then
        table.insert(earlier, records[i])
        table.insert(earlier, known[i])
      end
    end
  end
end
if #lost > 0 or #shipped > 0 or #earlier > 0 then
  return {0, lost, shipped, earlier}
end
local tail = '\\t' .. now_ms() .. '\\t' .. ARGV[3]
local fields, n, count = {}, 0, #records
for i, record_id in ipairs(records) do
  local placed = known[i]
  if not placed then
    fields[n + 1], fields[n + 2], n = record_id, owners[i] .. tail, n + 2
  elseif not string.find(placed, ARGV[3], 1, true) then
    fields[n + 1], fields[n + 2], n = record_id, placed .. '\\n' .. owners[i] .. tail, n + 2
  end
  if n >= 1000 or (n > 0 and i == count) then
    redis.call('HSET', KEYS[2], unpack(fields, 1, n))
    n = 0
  end
end
return {1, lost, shipped, earlier}
"""

# Forget the intents of records none of whose owners is still in the stream (acked,
# dead-lettered or deleted); a replay's intents after ``ARGV[3]`` ms. KEYS: stream,
# intents. ARGV: HSCAN cursor, page size, max age of non-entry owners in ms.
_SWEEP = LUA_SPLIT_IDS + """
local reply = redis.call('HSCAN', KEYS[2], ARGV[1], 'COUNT', tonumber(ARGV[2]))
local fields, now, removed = reply[2], now_ms(), 0
for i = 1, #fields, 2 do
  local live = false
  for line in string.gmatch(fields[i + 1], '[^\\n]+') do
    local owner, ms = string.match(line, '^([^\\t]*)\\t(%d+)\\t')
    if owner and string.match(owner, '^%d+%-%d+$') then
      live = #redis.call('XRANGE', KEYS[1], owner, owner) > 0
    else
      live = ms ~= nil and now - tonumber(ms) < tonumber(ARGV[3])
    end
    if live then break end
  end
  if not live then
    redis.call('HDEL', KEYS[2], fields[i])
    removed = removed + 1
  end
end
return {reply[1], removed}
"""

@dataclass(slots=True)
class Verdict:
    """What ``IntentLedger.place`` found; ``recorded`` means: write now."""

    recorded: bool
    lost_owners: set[str] = field(default_factory=set)
    shipped_ids: set[str] = field(default_factory=set)
    earlier: dict[str, list[Placement]] = field(default_factory=dict)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _placements(raw: bytes | str) -> list[Placement]:
    return [Placement.decode(line.split("\t", 2)[2]) for line in _text(raw).splitlines()]


class IntentLedger:
    """Intents and shipped ids of one stream, as seen by one consumer (or by a replay)."""

    def __init__(
        self, client: RedisClient, stream: str, group: str, consumer: str | None,
        intents: str, shipped: str, replica_wait: ReplicaWait | None = None,
    ) -> None:
        self._client = client
        self._wait = replica_wait or ReplicaWait()
        self._group = group
        self._consumer = consumer or ""
        self._keys = [stream, intents, shipped]
        self._place_script = client.register_script(_PLACE)
        self._sweep_script = client.register_script(_SWEEP)

    async def place(
        self, placement: Placement, record_ids: Sequence[str], owners: Sequence[str],
        force: bool, check_owners: bool = True,
    ) -> Verdict:
        """Record ``placement`` for every record (written by the owner at the same index: its
        stream entry id, or a replay's tag) unless one is lost, shipped, or has earlier
        placements. With ``force`` earlier placements (checked by the caller) do not stop it;
        without ``check_owners`` (or for a ledger without a consumer) ownership is not asked.
        """
        # An intent no replica confirmed could vanish in a failover: the file would then
        # be written without it, so it counts as not recorded (SourceUnavailable).
        with mapped_redis_errors():
            reply = await self._wait.run_script(
                self._client, self._place_script, self._keys,
                [self._group, self._consumer if check_owners else "", placement.encode(),
                 json_ids(record_ids), join_ids(owners), "1" if force else "0"],
            )
        recorded, lost, shipped, flat = reply
        earlier = {_text(flat[i]): _placements(flat[i + 1]) for i in range(0, len(flat), 2)}
        return Verdict(
            recorded=bool(recorded),
            lost_owners={_text(owner) for owner in lost},
            shipped_ids={_text(record_id) for record_id in shipped},
            earlier=earlier,
        )

    async def sweep(self, page: int = 200, max_pages: int = 50, replay_max_age_ms: int = 3_600_000
                    ) -> int:
        """Forget intents whose entries all left the stream; returns how many were forgotten."""
        cursor: bytes | str = "0"
        removed = 0
        with mapped_redis_errors():
            for _ in range(max_pages):
                cursor, cut = await self._sweep_script(
                    keys=self._keys[:2], args=[cursor, page, replay_max_age_ms]
                )
                removed += int(cut)
                if _text(cursor) == "0":
                    break
        return removed

