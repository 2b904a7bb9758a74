"""The summaries of the files a query needs, in one in-memory DuckDB table ``calls``.

``sync`` brings the table up to date for a selection: files whose name and size are
already loaded are left alone, cached summaries are loaded, and only the remaining files
are scanned (in batches of about ``scan_batch_bytes``), written to the cache and loaded.
Files gone from the store are dropped. All access goes through one lock: a DuckDB
connection is not for concurrent use.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from explorer.cache import Entry, SummaryCache
from explorer.partitions import LogFile, Selection, log_files, select
from explorer.scan import SUMMARY_SCHEMA, connect, scan_into, tag_lines
from explorer.store import LogStore, StoredFile
from shared.logs import log_event

logger = logging.getLogger(__name__)

_DELETE_FILES = "DELETE FROM calls WHERE file IN (SELECT unnest($names))"

Progress = Callable[[int, int], None]
"""Called with (bytes scanned so far, bytes to scan) while files are scanned."""


@dataclass(frozen=True, slots=True)
class SyncStats:
    files_needed: int
    files_scanned: int
    bytes_scanned: int
    files_from_cache: int


def _batches(files: Sequence[LogFile], max_bytes: int) -> Iterator[list[LogFile]]:
    batch: list[LogFile] = []
    size = 0
    for file in files:
        if batch and size + file.stored.size_bytes > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(file)
        size += file.stored.size_bytes
    if batch:
        yield batch


class Index:
    """The ``calls`` table over one store, kept in step with the store's files."""

    def __init__(
        self,
        store: LogStore,
        cache: SummaryCache,
        *,
        scan_batch_bytes: int = 64 * 1024 * 1024,
        refresh_s: float = 0.0,
    ) -> None:
        self.store = store
        self.cache = cache
        self.scan_batch_bytes = scan_batch_bytes
        self.refresh_s = refresh_s
        self._con = connect(cache.folder.parent / "duckdb-tmp")
        self._con.execute(f"CREATE TABLE calls ({SUMMARY_SCHEMA})")
        self._loaded: dict[str, int] = {}
        self._listing: list[LogFile] = []
        self._listed_at = -float("inf")
        self._lock = threading.RLock()

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection, held exclusively for the block."""
        with self._lock:
            yield self._con

    def listing(self) -> list[LogFile]:
        """The store's log files, listed again when the last listing is ``refresh_s`` old."""
        with self._lock:
            now = time.monotonic()
            if now - self._listed_at >= self.refresh_s:
                self._listing = log_files(self.store.list_files())
                self._listed_at = now
            return self._listing

    def sync(self, selection: Selection, progress: Progress | None = None) -> SyncStats:
        """Make ``calls`` hold every record of the files ``selection`` needs."""
        with self._lock:
            listing = self.listing()
            self._drop_gone({file.stored.name for file in listing})
            needed = [
                file
                for file in select(listing, selection)
                if self._loaded.get(file.stored.name) != file.stored.size_bytes
            ]
            if not needed:
                return SyncStats(0, 0, 0, 0)
            entries = self.cache.entries()
            cached = {name: entry.size_bytes for name, entry in entries.items()}
            from_cache = [f for f in needed if cached.get(f.stored.name) == f.stored.size_bytes]
            to_scan = [f for f in needed if cached.get(f.stored.name) != f.stored.size_bytes]
            vanished = {
                file.name for file in self._load_cached([f.stored for f in from_cache], entries)
            }
            if vanished:
                from_cache = [f for f in from_cache if f.stored.name not in vanished]
                to_scan += [f for f in needed if f.stored.name in vanished]
            total_bytes = sum(file.stored.size_bytes for file in to_scan)
            done_bytes = 0
            started = time.monotonic()
            for batch, staged in self._staged(list(_batches(to_scan, self.scan_batch_bytes))):
                self._scan(batch, staged)
                done_bytes += sum(file.stored.size_bytes for file in batch)
                if progress is not None:
                    progress(done_bytes, total_bytes)
            if to_scan:
                self.cache.prune({file.stored.name: file.stored.size_bytes for file in listing})
                log_event(
                    logger,
                    "files_scanned",
                    files=len(to_scan),
                    bytes=total_bytes,
                    duration_s=round(time.monotonic() - started, 3),
                )
            return SyncStats(len(needed), len(to_scan), total_bytes, len(from_cache))

    def _drop_gone(self, present: set[str]) -> None:
        gone = [name for name in self._loaded if name not in present]
        if gone:
            self._con.execute(_DELETE_FILES, {"names": gone})
            for name in gone:
                del self._loaded[name]

    def _replace(self, names: list[str], source_sql: str, params: dict[str, object]) -> None:
        self._con.execute(_DELETE_FILES, {"names": names})
        self._con.execute(f"INSERT INTO calls {source_sql}", params)

    def _load_cached(self, files: list[StoredFile], entries: dict[str, Entry]) -> list[StoredFile]:
        """Load the cached summaries of ``files``; returns those whose segment vanished."""
        if not files:
            return []
        segments = [str(entries[file.name].segment) for file in files]
        try:
            self._replace(
                [file.name for file in files],
                "SELECT p.* EXCLUDE (filename) FROM read_parquet($paths, filename = true) p "
                "JOIN (SELECT unnest($names) AS w_file, unnest($segments) AS w_segment) "
                "ON p.file = w_file AND p.filename = w_segment",
                {
                    "paths": sorted(set(segments)),
                    "names": [f.name for f in files],
                    "segments": segments,
                },
            )
        except duckdb.IOException:
            return files  # another explorer pruned a segment meanwhile: scan instead
        for file in files:
            self._loaded[file.name] = file.size_bytes
        return []

    def _stage(self, batch: list[LogFile], number: int) -> Path:
        """Write ``batch`` as one tagged JSONL file in the scratch folder (see ``tag_lines``)."""
        self.cache.scratch.mkdir(parents=True, exist_ok=True)
        staged = self.cache.scratch / f"batch-{os.getpid()}-{id(self)}-{number}.jsonl"
        try:
            with open(staged, "wb") as out:
                for file, data in self.store.fetch([file.stored for file in batch]):
                    out.write(tag_lines(file.name, data))
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        return staged

    def _staged(self, batches: list[list[LogFile]]) -> Iterator[tuple[list[LogFile], Path]]:
        """Each batch staged; the next one is read and tagged while DuckDB parses this one."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="explorer-stage") as pool:
            pending: list[tuple[list[LogFile], Future[Path]]] = []
            try:
                for number, batch in enumerate(batches):
                    pending.append((batch, pool.submit(self._stage, batch, number)))
                    if len(pending) == 2:
                        ready, future = pending.pop(0)
                        yield ready, future.result()
                while pending:
                    ready, future = pending.pop(0)
                    yield ready, future.result()
            finally:
                for _, future in pending:  # the caller stopped early: drop what was staged
                    if not future.cancel() and future.exception() is None:
                        future.result().unlink(missing_ok=True)

    def _scan(self, batch: list[LogFile], staged: Path) -> None:
        stored = [file.stored for file in batch]
        con = self._con
        temporary, segment = self.cache.new_segment()
        con.execute(f"CREATE OR REPLACE TEMP TABLE scanned ({SUMMARY_SCHEMA})")
        try:
            scan_into(con, "scanned", [str(staged)])
            quoted = str(temporary).replace("'", "''")
            con.execute(f"COPY scanned TO '{quoted}' (FORMAT parquet, COMPRESSION zstd)")
            self.cache.publish(temporary, segment, [(f.name, f.size_bytes) for f in stored])
            self._replace([file.name for file in stored], "SELECT * FROM scanned", {})
        finally:
            con.execute("DROP TABLE IF EXISTS scanned")
            staged.unlink(missing_ok=True)
            temporary.unlink(missing_ok=True)
        for file in stored:
            self._loaded[file.name] = file.size_bytes
