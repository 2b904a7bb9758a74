"""Summaries on disk, keyed by file name and size, in ``EXPLORER_CACHE_DIR``.

Layout: ``v{N}/{store}/seg-*.parquet``, each with a ``.json`` beside it that lists the
``[name, size]`` of every file whose summary rows the segment holds (a file without
complete lines is listed too: it is known to be empty). One scan batch writes one
segment, so a cold scan of thousands of files creates a handful of files, not thousands.

A file's entry is the one in the newest segment that lists it. A closed day's file
keeps its size, so its entry stays valid and it is never scanned again; a file the
shipper appended to has a new size and is scanned again into a new segment. A segment
none of whose entries is current any more is deleted. Segments are written under a
temporary name and renamed, the ``.json`` last, so a reader never sees half a segment
and two explorers may share the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from explorer.scan import SUMMARY_VERSION

_PREFIX = "seg-"
PRUNE_GRACE_S = 60.0


@dataclass(frozen=True, slots=True)
class Entry:
    """Where the summary of one file at one size is."""

    size_bytes: int
    segment: Path


class SummaryCache:
    """The cache folder of one store."""

    def __init__(self, root: Path, store_location: str) -> None:
        store_key = hashlib.sha256(store_location.encode()).hexdigest()[:16]
        self.folder = root / f"v{SUMMARY_VERSION}" / store_key
        self.folder.mkdir(parents=True, exist_ok=True)
        self.scratch = root / "scratch"
        """Where a scan stages the bytes it hands to DuckDB."""

    def new_segment(self) -> tuple[Path, Path]:
        """(temporary path, final path) of a new segment's Parquet file."""
        stem = f"{_PREFIX}{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(3)}"
        return self.folder / f".{stem}.tmp", self.folder / f"{stem}.parquet"

    def publish(self, temporary: Path, segment: Path, files: Iterable[tuple[str, int]]) -> None:
        """Make a written segment visible, with the files it summarises."""
        os.replace(temporary, segment)
        listing = segment.with_suffix(".json")
        staged = listing.with_name(f".{listing.name}.tmp")
        staged.write_text(json.dumps([[name, size] for name, size in files]))
        os.replace(staged, listing)

    def entries(self) -> dict[str, Entry]:
        """The current entry of every file the cache knows."""
        found: dict[str, Entry] = {}
        for listing in sorted(self.folder.glob(f"{_PREFIX}*.json")):  # oldest first
            try:
                pairs = json.loads(listing.read_text())
            except (OSError, ValueError):
                continue  # removed meanwhile by another explorer
            segment = listing.with_suffix(".parquet")
            for name, size in pairs:
                found[name] = Entry(int(size), segment)
        return found

    def prune(self, current: dict[str, int]) -> int:
        """Delete segments none of whose entries matches ``current`` (name -> listed size)."""
        entries = self.entries()
        live = {
            entry.segment
            for name, entry in entries.items()
            if current.get(name) == entry.size_bytes
        }
        removed = 0
        # Another explorer's brand-new segment may match a listing newer than ``current``.
        settled_before = time.time() - PRUNE_GRACE_S
        for listing in self.folder.glob(f"{_PREFIX}*.json"):
            segment = listing.with_suffix(".parquet")
            try:
                settled = listing.stat().st_mtime < settled_before
            except FileNotFoundError:
                continue
            if settled and segment not in live:
                listing.unlink(missing_ok=True)
                segment.unlink(missing_ok=True)
                removed += 1
        return removed
