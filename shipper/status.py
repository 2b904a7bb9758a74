"""``python -m shipper status``: the backlog as a table or as JSON.

The numbers: the stream length (every entry not yet shipped, since shipped ones are
deleted), entries pending per consumer (read by a shipper, not yet acknowledged),
the age of the oldest unshipped record (from its entry id's time) and the number of
dead-lettered entries (and how many the dead-letter cap cut).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from redis import exceptions as redis_errors

from shared.redis_client import connect
from shared.streams import CONSUMER_GROUP, dead_letter_cut_key, dead_letter_stream
from shipper.settings import ShipperSettings
from shipper.source import SourceUnavailable, mapped_redis_errors


@dataclass(frozen=True, slots=True)
class Backlog:
    """What ``status`` reports."""

    stream: str
    stream_length: int
    pending_total: int
    pending_per_consumer: dict[str, int]
    oldest_unshipped_age_s: float | None
    dead_letter_count: int
    dead_letter_cut_total: int = 0
    """Dead letters dropped to keep the dead-letter stream within its cap."""


async def read_backlog(settings: ShipperSettings) -> Backlog:
    """Query Redis once; raises ``SourceUnavailable`` when it cannot be reached."""
    client = connect(settings, timeout_s=settings.shipper_redis_timeout_s, keepalive=True)
    stream = settings.redis_stream
    try:
        with mapped_redis_errors():
            length = int(await client.xlen(stream))
            oldest: Any = await client.xrange(stream, count=1)
            dead = int(await client.xlen(dead_letter_stream(stream)))
            dead_cut = int(await client.get(dead_letter_cut_key(stream)) or 0)
            try:
                summary = await client.xpending(stream, CONSUMER_GROUP)
            except redis_errors.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                summary = {"pending": 0, "consumers": []}
    finally:
        await client.aclose()
    per_consumer = {
        _text(consumer["name"]): int(consumer["pending"]) for consumer in summary["consumers"]
    }
    age_s = None
    if oldest:
        entry_ms = int(_text(oldest[0][0]).split("-")[0])
        age_s = round(max(0.0, time.time() - entry_ms / 1000), 3)
    return Backlog(stream, length, int(summary["pending"]), per_consumer, age_s, dead, dead_cut)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def render(backlog: Backlog) -> str:
    """A short human-readable table."""
    age_s = backlog.oldest_unshipped_age_s
    age = "-" if age_s is None else f"{age_s:.1f} s"
    rows = [
        ("stream", backlog.stream),
        ("stream length (unshipped)", str(backlog.stream_length)),
        ("pending (read, not yet acked)", str(backlog.pending_total)),
        ("oldest unshipped record age", age),
        ("dead-lettered entries", str(backlog.dead_letter_count)),
        ("dead letters cut by the cap", str(backlog.dead_letter_cut_total)),
    ]
    rows += [(f"  pending for {name}", str(count))
             for name, count in sorted(backlog.pending_per_consumer.items())]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


async def print_status(settings: ShipperSettings, *, as_json: bool) -> int:
    """Print the backlog; exit code 1 with a message when Redis is unreachable."""
    try:
        backlog = await read_backlog(settings)
    except SourceUnavailable as exc:
        print(f"shipper status: cannot reach Redis at {_safe_url(settings.redis_url)}: {exc}",
              file=sys.stderr)
        return 1
    print(json.dumps(asdict(backlog), indent=2) if as_json else render(backlog))
    return 0


def _safe_url(url: str) -> str:
    """The Redis URL without a password."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
