"""From stream entries to payloads: parse each record, group by target file, cut into chunks.

A batch becomes one chunk per target file; a file's lines are split into several
chunks only when they exceed what one append may carry, and always on line
boundaries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import TypeVar

from pydantic import ValidationError

from shared.naming import file_stem
from shared.record import Record
from shared.streams import RECORD_FIELD
from shipper.canonical import CANONICAL_START, canonical_fields
from shipper.source import StreamEntry

_RECORD_KEY = RECORD_FIELD.encode()
_T = TypeVar("_T")
FIRST_GUESS_BYTES = 8 * 1024
PARSE_TURN = 256
"""Records checked between two turns of the event loop (``parse_batches``)."""


@dataclass(slots=True)
class Entry:
    """A valid record read from the stream, ready to be written as one line."""

    entry_id: str
    record_id: str
    stem: str
    line: bytes
    """The record's JSON on one line, without the newline (``payload`` adds it)."""

    @property
    def line_bytes(self) -> int:
        return len(self.line) + 1


@dataclass(frozen=True, slots=True)
class Rejected:
    """An entry that is not a shippable record, and why."""

    entry: StreamEntry
    reason: str


def parse_entry(entry: StreamEntry, max_line_bytes: int) -> Entry | Rejected:
    """Validate an entry's record and render the line it will be written as."""
    raw = (entry.fields or {}).get(_RECORD_KEY)
    if raw is None:
        return Rejected(entry, f"no '{RECORD_FIELD}' field")
    fields = canonical_fields(raw)
    if fields is not None:
        record_id, line = fields.record_id, raw
        stem = _stem(fields.user_id, fields.model, fields.day)
    else:
        try:
            record = Record.from_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "record"
            return Rejected(entry, f"invalid record: {where}: {first['msg']}")
        record_id, line = record.id, _line(raw, record)
        stem = _stem(record.user_id, record.model, record.timestamp.date())
    if len(line) + 1 > max_line_bytes:
        return Rejected(entry, f"record too large: {len(line) + 1} bytes > {max_line_bytes}")
    return Entry(entry.entry_id, record_id, stem, line)


def _line(raw: bytes, record: Record) -> bytes:
    """The line to write: the entry's own bytes when they already are the canonical form."""
    # The proxy publishes ``Record.to_json()``: its bytes already are the line, and validation
    # proved them a ``Record``. Anything else is rendered anew: bytes that may span lines
    # (JSON allows a raw CR or LF between tokens), lack ``schema_version``, or carry a
    # timestamp that validation turned into UTC (naive, or another offset).
    if (
        raw.startswith(CANONICAL_START)
        and b"\n" not in raw
        and b"\r" not in raw
        and b'"timestamp":"%s"' % record.timestamp.isoformat().encode() in raw
    ):
        return raw
    return record.to_json()


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
        return payload(self.entries)

    @property
    def size_bytes(self) -> int:
        return sum(entry.line_bytes for entry in self.entries)


def payload(entries: Iterable[Entry]) -> bytes:
    """The entries' lines, each ended by a newline, in one copy."""
    return b"\n".join([*(entry.line for entry in entries), b""])


def chunks_by_file(entries: Iterable[Entry], max_append_bytes: int) -> list[Chunk]:
    """One chunk per target file, split further only where an append would be too big."""
    by_stem: dict[str, list[Entry]] = {}
    for entry in entries:
        by_stem.setdefault(entry.stem, []).append(entry)
    chunks: list[Chunk] = []
    for stem, lines in by_stem.items():
        chunks.extend(
            Chunk(stem, part) for part in _runs(lines, lambda e: e.line_bytes, max_append_bytes)
        )
    return chunks


def _runs(items: Iterable[_T], size_of: Callable[[_T], int], max_bytes: int) -> list[list[_T]]:
    """Consecutive runs of at most ``max_bytes`` (a run holds at least one item, however big)."""
    runs: list[list[_T]] = []
    size = 0
    for item in items:
        item_bytes = size_of(item)
        if not runs or size + item_bytes > max_bytes:
            runs.append([])
            size = 0
        runs[-1].append(item)
        size += item_bytes
    return runs


@dataclass(slots=True)
class ParsedBatch:
    """A batch between reading and writing: what to acknowledge, dead-letter and append."""

    deleted_ids: list[str]
    """Entries deleted while pending to us: nothing left to write, only to acknowledge."""
    rejected: list[Rejected]
    chunks: list[Chunk]
    fresh: bool = False
    """Read as new (``XREADGROUP >``) just now, rather than re-read or claimed."""

    @property
    def entry_count(self) -> int:
        return len(self.deleted_ids) + len(self.rejected) + sum(len(c.entries) for c in self.chunks)


async def parse_batches(
    entries: Sequence[StreamEntry], max_batch_bytes: int, max_append_bytes: int
) -> list[ParsedBatch]:
    """Cut a read into batches by size, parse their records and group the lines by file."""
    return [
        await _parse_batch(batch, max_append_bytes)
        for batch in split_by_bytes(entries, max_batch_bytes)
    ]


async def _parse_batch(batch: Sequence[StreamEntry], max_append_bytes: int) -> ParsedBatch:
    deleted_ids: list[str] = []
    rejected: list[Rejected] = []
    parsed: list[Entry] = []
    for start in range(0, len(batch), PARSE_TURN):
        if start:
            # Checking a read takes tens of milliseconds: meanwhile the event loop moves the
            # appends in flight on (a finished open answered, a placement sent to Redis).
            await asyncio.sleep(0)
        for entry in batch[start : start + PARSE_TURN]:
            if entry.fields is None:
                deleted_ids.append(entry.entry_id)
                continue
            result = parse_entry(entry, max_append_bytes)
            if isinstance(result, Rejected):
                rejected.append(result)
            else:
                parsed.append(result)
    return ParsedBatch(deleted_ids, rejected, chunks_by_file(parsed, max_append_bytes))


class ReadSize:
    """How many entries to ask for: about one batch's bytes, judged by the last read's
    records (the first read assumes ``FIRST_GUESS_BYTES`` each), at most ``max_records``."""

    def __init__(self, max_records: int, max_batch_bytes: int) -> None:
        self.max_records = max_records
        self.max_batch_bytes = max_batch_bytes
        self._entry_bytes = FIRST_GUESS_BYTES

    def count(self) -> int:
        # A margin for records above the mean: a read is one batch, not one and a sliver.
        target_bytes = self.max_batch_bytes * 9 // 10
        return max(1, min(self.max_records, target_bytes // self._entry_bytes))

    def observe(self, entries: Sequence[StreamEntry]) -> None:
        """Learn the size of records from a read."""
        sizes = [_raw_bytes(entry) for entry in entries if entry.fields]
        if sizes:
            self._entry_bytes = max(1, -(-sum(sizes) // len(sizes)))


def split_by_bytes(entries: Sequence[StreamEntry], max_bytes: int) -> list[list[StreamEntry]]:
    """Cut a read into batches of at most ``max_bytes`` of raw record data (at least one entry)."""
    return _runs(entries, _raw_bytes, max_bytes)


def _raw_bytes(entry: StreamEntry) -> int:
    fields = entry.fields
    return len(fields.get(_RECORD_KEY, b"")) if fields else 0
