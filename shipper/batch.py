"""From stream entries to payloads: parse each record, group by target file, cut into chunks.

A batch becomes one chunk per target file; a file's lines are split into several
chunks only when they exceed what one append may carry, and always on line
boundaries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache

from pydantic import ValidationError

from shared.naming import file_stem
from shared.record import Record
from shared.streams import RECORD_FIELD
from shipper.source import StreamEntry

_RECORD_KEY = RECORD_FIELD.encode()


@dataclass(slots=True)
class Entry:
    """A valid record read from the stream, ready to be written as one line."""

    entry_id: str
    stem: str
    line: bytes
    may_have_intent: bool
    """True when an intent may already exist in Redis (see ``shipper.intents``)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """An entry that is not a shippable record, and why."""

    entry: StreamEntry
    reason: str


def parse_entry(entry: StreamEntry, may_have_intent: bool, max_line_bytes: int) -> Entry | Rejected:
    """Validate an entry's record and render the line it will be written as."""
    raw = (entry.fields or {}).get(_RECORD_KEY)
    if raw is None:
        return Rejected(entry, f"no '{RECORD_FIELD}' field")
    try:
        record = Record.from_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        return Rejected(entry, f"invalid record: {where}: {first['msg']}")
    line = record.to_json() + b"\n"
    if len(line) > max_line_bytes:
        return Rejected(entry, f"record too large: {len(line)} bytes > {max_line_bytes}")
    stem = _stem(record.user_id, record.model, record.timestamp.date())
    return Entry(entry.entry_id, stem, line, may_have_intent)


@lru_cache(maxsize=4096)
def _stem(user_id: str | None, model: str | None, day: date) -> str:
    # Records repeat the same few user/model/day triples; encoding each once saves CPU.
    return file_stem(user_id, model, datetime(day.year, day.month, day.day, tzinfo=UTC))


@dataclass(slots=True)
class Chunk:
    """Whole lines for one file, written by one append."""

    stem: str
    entries: list[Entry]

    @property
    def payload(self) -> bytes:
        return b"".join(entry.line for entry in self.entries)

    @property
    def size_bytes(self) -> int:
        return sum(len(entry.line) for entry in self.entries)


def chunks_by_file(entries: Iterable[Entry], max_append_bytes: int) -> list[Chunk]:
    """One chunk per target file, split further only where an append would be too big."""
    by_stem: dict[str, list[Entry]] = {}
    for entry in entries:
        by_stem.setdefault(entry.stem, []).append(entry)
    chunks: list[Chunk] = []
    for stem, lines in by_stem.items():
        chunks.extend(Chunk(stem, part) for part in _split(lines, max_append_bytes))
    return chunks


def _split(entries: Sequence[Entry], max_bytes: int) -> list[list[Entry]]:
    parts: list[list[Entry]] = [[]]
    size = 0
    for entry in entries:
        if parts[-1] and size + len(entry.line) > max_bytes:
            parts.append([])
            size = 0
        parts[-1].append(entry)
        size += len(entry.line)
    return parts


def split_by_bytes(entries: Sequence[StreamEntry], max_bytes: int) -> list[list[StreamEntry]]:
    """Cut a read into batches of at most ``max_bytes`` of raw record data (at least one entry)."""
    batches: list[list[StreamEntry]] = [[]]
    size = 0
    for entry in entries:
        entry_bytes = sum(len(value) for value in (entry.fields or {}).values())
        if batches[-1] and size + entry_bytes > max_bytes:
            batches.append([])
            size = 0
        batches[-1].append(entry)
        size += entry_bytes
    return [batch for batch in batches if batch]
