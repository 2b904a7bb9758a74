"""The summaries of the files a query needs, in one in-memory DuckDB table ``calls``.

``sync`` brings the table up to date for a selection: files whose name and size are
already loaded are left alone, cached summaries are loaded, and only the remaining files
are scanned (in batches of about ``scan_batch_bytes``), written to the cache and loaded.
Files gone from the store are dropped. All access goes through one lock: a DuckDB
connection is not for concurrent use.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb

from explorer.cache import SummaryCache
from explorer.partitions import LogFile, Selection, log_files, select
from explorer.scan import SUMMARY_SCHEMA, connect, scan_into
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
            cached = self.cache.entries()
            from_cache = [f for f in needed if cached.get(f.stored.name) == f.stored.size_bytes]
            to_scan = [f for f in needed if cached.get(f.stored.name) != f.stored.size_bytes]
            self._load_cached([file.stored for file in from_cache])
            total_bytes = sum(file.stored.size_bytes for file in to_scan)
            done_bytes = 0
            started = time.monotonic()
            for batch in _batches(to_scan, self.scan_batch_bytes):
                self._scan(batch, cached)
                done_bytes += sum(file.stored.size_bytes for file in batch)
                if progress is not None:
                    progress(done_bytes, total_bytes)
            if to_scan:
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

    def _load_cached(self, files: list[StoredFile]) -> None:
        if not files:
            return
        paths = [str(self.cache.path(file.name, file.size_bytes)) for file in files]
        self._replace(
            [file.name for file in files], "SELECT * FROM read_parquet($paths)", {"paths": paths}
        )
        for file in files:
            self._loaded[file.name] = file.size_bytes

    def _scan(self, batch: list[LogFile], cached: dict[str, int]) -> None:
        stored = [file.stored for file in batch]
        con = self._con
        con.execute(f"CREATE OR REPLACE TEMP TABLE scanned ({SUMMARY_SCHEMA})")
        try:
            with self.store.readable_by_duckdb(stored, self.cache.scratch) as paths:
                scan_into(con, "scanned", paths)
            self._write_summaries(stored, cached)
            self._replace([file.name for file in stored], "SELECT * FROM scanned", {})
        finally:
            con.execute("DROP TABLE IF EXISTS scanned")
        for file in stored:
            self._loaded[file.name] = file.size_bytes

    def _write_summaries(self, stored: list[StoredFile], cached: dict[str, int]) -> None:
        """One Parquet entry per file, written by a single partitioned COPY."""
        folder = self.cache.batch_folder()
        numbers = {file.name: number for number, file in enumerate(stored)}
        self._con.execute(
            "CREATE OR REPLACE TEMP TABLE batch_files AS "
            "SELECT unnest($names) AS file, generate_subscripts($names, 1) - 1 AS file_no",
            {"names": [file.name for file in stored]},
        )
        quoted = str(folder).replace("'", "''")
        try:
            self._con.execute(
                "COPY (SELECT scanned.*, file_no FROM scanned JOIN batch_files USING (file)) "
                f"TO '{quoted}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (file_no))"
            )
            written = {
                int(part.name.removeprefix("file_no=")): next(part.glob("*.parquet"))
                for part in folder.iterdir()
                if part.name.startswith("file_no=")
            }
            for file in stored:
                temporary = self.cache.temporary_path(file.name, file.size_bytes)
                source = written.get(numbers[file.name])
                if source is not None:
                    source.replace(temporary)
                else:  # no complete line yet: an empty summary
                    target = str(temporary).replace("'", "''")
                    self._con.execute(
                        f"COPY (SELECT * FROM scanned LIMIT 0) TO '{target}' (FORMAT parquet)"
                    )
                self.cache.commit(file.name, file.size_bytes, cached.get(file.name))
        finally:
            self._con.execute("DROP TABLE IF EXISTS batch_files")
            shutil.rmtree(folder, ignore_errors=True)
