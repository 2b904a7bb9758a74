"""The spool: the proxy's durable outage buffer in ``SPOOL_DIR``.

A record the publisher cannot get into Redis is appended to this process's own segment
files (format: ``shared.spool_format``) in groups, one ``fdatasync`` each, off the event
loop; while the spool holds this proxy's records, new ones follow them there, and the
drainer (``drainer.py``) hands publishing back to Redis. ``SPOOL_MAX_BYTES`` caps the
folder, ``SPOOL_FULL_POLICY`` says what happens when it is full (``reservations.py``).
The protocol, told once: docs/outages.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from proxy.metrics import Metrics
from proxy.publish.pending import PendingRecord
from proxy.publish.segments import OwnSegment, append, create_segment, delete, probe, release
from shared.logs import log_event

logger = logging.getLogger(__name__)

FullPolicy = Literal["drop", "reject"]
SEGMENT_MAX_BYTES = 16 * 1024 * 1024
"""A segment is closed past this size, so the drainer can delete the oldest ones early."""
RESERVE_FRACTION = 0.05


class Spool:
    """This proxy's segments in ``folder`` and the accounting of the whole folder."""

    def __init__(
        self,
        folder: Path,
        writer: str,
        metrics: Metrics,
        *,
        max_bytes: int,
        full_policy: FullPolicy,
        segment_max_bytes: int = SEGMENT_MAX_BYTES,
    ) -> None:
        self.folder = folder
        self.writer = writer
        self.full_policy: FullPolicy = full_policy
        self._metrics = metrics
        self._max_bytes = max_bytes
        self._segment_max_bytes = segment_max_bytes
        self._buffer: list[PendingRecord] = []
        self._requests: list[tuple[asyncio.Future[None], bool]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._active: OwnSegment | None = None
        self._sealed: list[OwnSegment] = []
        self._own_records = 0
        self._own_bytes = 0
        self._foreign_segments = 0
        self._foreign_bytes = 0
        self._was_full = False
        self._overflowed = False
        self._closed = False
        self.writable = True
        """False after a write failed, until one succeeds."""

    # --- state, read by the publisher, the drainer, /health and /ready ----------------

    @property
    def holds_records(self) -> bool:
        """Whether this proxy has spooled records not yet re-published."""
        return self._own_records > 0

    @property
    def records(self) -> int:
        """This proxy's spooled records not yet re-published."""
        return self._own_records

    @property
    def size_bytes(self) -> int:
        """Bytes of every segment in the folder (others' as of the drainer's last look)."""
        return self._own_bytes + self._foreign_bytes

    @property
    def max_bytes(self) -> int:
        """``SPOOL_MAX_BYTES``: the cap on the bytes of every segment in the folder."""
        return self._max_bytes

    @property
    def segments(self) -> int:
        """Segment files in the folder (others' as of the drainer's last look)."""
        own = len(self._sealed) + (1 if self._active is not None else 0)
        return own + self._foreign_segments

    @property
    def full(self) -> bool:
        """Less than the reserve is free, or a record did not fit since the last drain."""
        free_bytes = self._max_bytes - self.size_bytes
        return self._overflowed or free_bytes < self._max_bytes * RESERVE_FRACTION

    @property
    def can_accept(self) -> bool:
        """Whether a record handed over now would be kept (for ``/ready``)."""
        return self.writable and not self.full

    def own_paths(self) -> set[Path]:
        """The segments this proxy holds (written, or waiting for its drainer)."""
        paths = {segment.path for segment in self._sealed}
        if self._active is not None:
            paths.add(self._active.path)
        return paths

    def describe(self) -> dict[str, object]:
        """The spool's state for ``/health``."""
        return {
            "spooling": self.holds_records,
            "records": self.records,
            "bytes": self.size_bytes,
            "segments": self.segments,
            "max_bytes": self._max_bytes,
            "full": self.full,
            "writable": self.writable,
            "full_policy": self.full_policy,
        }

    # --- the writer's side ------------------------------------------------------------

    def start(self) -> None:
        """Start the background task that writes and fsyncs appended records."""
        self._task = asyncio.create_task(self._run(), name="spool-writer")

    async def check_writable(self) -> bool:
        """Try a write in the folder now (at start-up, and while it is known to fail)."""
        try:
            await asyncio.to_thread(probe, self.folder, self.writer)
        except OSError as exc:
            if self.writable:
                log_event(
                    logger, "spool_unwritable", logging.ERROR,
                    folder=str(self.folder), error=str(exc),
                )
            self.writable = False
        else:
            self.writable = True
        return self.writable

    def append(self, records: Sequence[PendingRecord]) -> None:
        """Hand records over to be written durably; never blocks.

        A record that does not fit under ``SPOOL_MAX_BYTES`` is lost, counted and logged.
        """
        for pending in records:
            size_bytes = len(pending.payload) + 1
            if self._closed:  # a call that outlived the shutdown's time limit
                self._lose(pending, "spool_closed")
                continue
            if self.size_bytes + size_bytes > self._max_bytes:
                self._overflowed = True
                self._lose(pending, "spool_full")
                continue
            self._buffer.append(pending)
            self._own_records += 1
            self._own_bytes += size_bytes
        if self._buffer:
            self._wake.set()
        self._refresh()

    async def flush(self) -> None:
        """Return once everything appended so far is durable (or counted as lost)."""
        await self._request(seal=False)

    async def seal(self) -> list[OwnSegment]:
        """Flush, close the segment being written; this proxy's undrained segments, oldest first."""
        await self._request(seal=True)
        return list(self._sealed)

    def segment_drained(self, segment: OwnSegment) -> None:
        """Account for one of this proxy's segments, re-published and deleted by the drainer."""
        self._sealed.remove(segment)
        self._own_records -= segment.records
        self._own_bytes -= segment.size_bytes
        self._overflowed = False
        self._refresh()

    def note_others(self, segments: int, size_bytes: int) -> None:
        """What the drainer saw of other writers' segments in the folder."""
        if size_bytes < self._foreign_bytes:
            self._overflowed = False
        self._foreign_segments = segments
        self._foreign_bytes = size_bytes
        self._refresh()

    async def close(self) -> None:
        """Write what is buffered, then let go of every segment (they stay on disk)."""
        if self._task is None:
            return
        await self.flush()
        self._closed = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        await self._seal_active()
        for segment in self._sealed:
            release(segment)
        log_event(
            logger,
            "spool_closed",
            records=self._own_records,
            segments=len(self._sealed),
            folder=str(self.folder),
        )
        self._sealed = []

    async def _request(self, *, seal: bool) -> None:
        if self._task is None:
            raise RuntimeError("the spool is not started")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._requests.append((done, seal))
        self._wake.set()
        await done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Requests made before this group are answered once it is durable.
            requests, self._requests = self._requests, []
            group, self._buffer = self._buffer, []
            if group:
                await self._write(group)
            if any(seal for _, seal in requests):
                await self._seal_active()
            for done, _ in requests:
                if not done.done():
                    done.set_result(None)
            if self._buffer or self._requests:
                self._wake.set()

    async def _write(self, group: list[PendingRecord]) -> None:
        data = b"".join(pending.payload + b"\n" for pending in group)
        try:
            active = self._active
            if active is None or active.size_bytes >= self._segment_max_bytes:
                await self._seal_active()
                active = self._active = await asyncio.to_thread(
                    create_segment, self.folder, self.writer
                )
            await asyncio.to_thread(append, active, data)
        except OSError as exc:
            self._write_failed(group, len(data), exc)
            await self._seal_active()  # never append after a failed write
            return
        active.records += len(group)
        active.size_bytes += len(data)
        self.writable = True
        self._metrics.records_spooled.inc(len(group))
        for pending in group:
            pending.settled()
            log_event(logger, "record_spooled", logging.DEBUG, record_id=pending.record_id)

    def _write_failed(self, group: list[PendingRecord], size_bytes: int, exc: OSError) -> None:
        if self.writable:
            log_event(
                logger, "spool_write_failed", logging.ERROR, folder=str(self.folder), error=str(exc)
            )
        self.writable = False
        self._own_records -= len(group)
        self._own_bytes -= size_bytes
        for pending in group:
            self._lose(pending, "spool_write_failed")
        self._refresh()

    async def _seal_active(self) -> None:
        active, self._active = self._active, None
        if active is None:
            return
        if active.records:
            self._sealed.append(active)
            return
        with contextlib.suppress(OSError):
            await asyncio.to_thread(delete, active)

    def _lose(self, pending: PendingRecord, reason: str) -> None:
        pending.settled()
        self._metrics.records_dropped.inc()
        log_event(
            logger, "record_dropped", logging.ERROR, record_id=pending.record_id, reason=reason
        )

    def _refresh(self) -> None:
        full = self.full
        if full != self._was_full:
            self._was_full = full
            log_event(
                logger,
                "spool_full" if full else "spool_has_room",
                logging.ERROR if full else logging.INFO,
                size_bytes=self.size_bytes,
                max_bytes=self._max_bytes,
                policy=self.full_policy,
            )
        self._metrics.spooling.set(1 if self.holds_records else 0)
        self._metrics.spool_records.set(self._own_records)
        self._metrics.spool_bytes.set(self.size_bytes)
        self._metrics.spool_segments.set(self.segments)
        self._metrics.spool_full.set(1 if full else 0)
