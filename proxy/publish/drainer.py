"""The drainer: re-publishes spooled segments, oldest first, once Redis answers.

It drains this proxy's own segments and any other whose lock it can take, deletes a
segment only after Redis accepted every record in it, and pauses the publisher for the
last one so no new record overtakes it. The protocol: docs/outages.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from proxy.metrics import Metrics
from proxy.publish.outcomes import ROUND_TRIP_ERRORS, Outcome, xadd_batch
from proxy.publish.publisher import Publisher
from proxy.publish.segments import OwnSegment, delete
from proxy.publish.spool import Spool
from shared.logs import log_event
from shared.redis_client import RedisClient
from shared.replication import ReplicaWait
from shared.spool_format import read_records, segment_paths, try_lock

logger = logging.getLogger(__name__)

HANDOVER_MAX_RECORDS = 2000
"""Few enough to re-publish in one short pause of the publisher."""


def _others(folder: Path, own: set[Path]) -> list[tuple[Path, int]]:
    found = []
    try:
        paths = segment_paths(folder)
    except OSError:
        return []
    for path in paths:
        if path in own:
            continue
        with contextlib.suppress(FileNotFoundError):
            found.append((path, path.stat().st_size))
    return found


class Drainer:
    """Background task: the spool's segments back into the stream."""

    def __init__(
        self,
        redis: RedisClient,
        stream: str,
        spool: Spool,
        publisher: Publisher,
        metrics: Metrics,
        *,
        interval_s: float,
        timeout_s: float,
        batch_size: int = 500,
        replica_wait: ReplicaWait | None = None,
    ) -> None:
        self._redis = redis
        self._replica_wait = replica_wait or ReplicaWait()
        self._stream = stream
        self._spool = spool
        self._publisher = publisher
        self._metrics = metrics
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._batch_size = batch_size
        self._progress: dict[Path, int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start draining in the background."""
        self._task = asyncio.create_task(self._run(), name="spool-drainer")

    async def stop(self) -> None:
        """Stop at once; a segment cut mid-way stays on disk and is re-sent later."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                more = await self.drain_once()
            except Exception:
                logger.exception("spool_drain_error")
                more = False
            if not more:
                await asyncio.sleep(self._interval_s)

    async def drain_once(self) -> bool:
        """One pass over the folder; True when this proxy still has records to re-publish."""
        if not self._spool.writable:
            await self._spool.check_writable()
        others = await asyncio.to_thread(_others, self._spool.folder, self._spool.own_paths())
        self._spool.note_others(len(others), sum(size for _, size in others))
        if not (others or self._spool.holds_records or self._publisher.outage):
            return False
        if not await self._redis_answers():
            return False
        own = {segment.path: segment for segment in await self._spool.seal()}
        for path in sorted([*own, *(path for path, _ in others)], key=lambda p: p.name):
            segment = own.get(path)
            drained = await (self._drain_own(segment) if segment else self._adopt(path))
            if not drained:
                return False
        if self._spool.holds_records and self._spool.records <= HANDOVER_MAX_RECORDS:
            async with self._publisher.paused():
                for segment in await self._spool.seal():
                    if not await self._drain_own(segment):
                        return False
        if not self._spool.holds_records:
            self._publisher.redis_answered()
        return self._spool.holds_records

    async def _redis_answers(self) -> bool:
        # With REDIS_MIN_REPLICAS, also enough replicas: else every pass would re-send the
        # same records, each time ambiguous.
        try:
            async with asyncio.timeout(self._timeout_s + self._replica_wait.timeout_s):
                await self._redis.ping()
                return await self._replica_wait.replicas_ready(self._redis, self._stream)
        except ROUND_TRIP_ERRORS:
            return False

    async def _drain_own(self, segment: OwnSegment) -> bool:
        if await self._republish(segment.path) is None:
            return False
        try:
            await asyncio.to_thread(delete, segment)
        except OSError as exc:  # re-sent after a restart; the ids mark the copies
            log_event(logger, "spool_delete_failed", logging.ERROR, error=str(exc))
        self._spool.segment_drained(segment)
        self._drained(segment.path, segment.records, adopted=False)
        return True

    async def _adopt(self, path: Path) -> bool:
        fd = await asyncio.to_thread(try_lock, path)
        if fd is None:
            return True  # its writer is alive, or another drainer has it
        records: int | None = None
        try:
            records = await self._republish(path)
            if records is not None:
                with contextlib.suppress(FileNotFoundError):
                    await asyncio.to_thread(os.unlink, path)
        finally:
            os.close(fd)
            if records is None:
                self._progress.pop(path, None)  # whoever locks it next starts over
        if records is None:
            return False
        self._drained(path, records, adopted=True)
        return True

    async def _republish(self, path: Path) -> int | None:
        """Every record of the segment into the stream: how many, or None when cut short."""
        records = await asyncio.to_thread(lambda: list(read_records(path)))
        done = self._progress.get(path, 0)
        while done < len(records):
            chunk = records[done : done + self._batch_size]
            accepted = await self._xadd(chunk)
            done += accepted
            self._progress[path] = done
            self._metrics.records_drained.inc(accepted)
            if accepted < len(chunk):
                return None
        self._progress.pop(path, None)
        return len(records)

    async def _xadd(self, chunk: list[bytes]) -> int:
        """How many of ``chunk``, from its start, are published (``outcomes``)."""
        landing = await xadd_batch(
            self._redis,
            self._stream,
            chunk,
            timeout_s=self._timeout_s,
            replica_wait=self._replica_wait,
        )
        accepted = landing.published_prefix
        if accepted < len(chunk):
            # Those after the prefix are sent again later under the same ids, landed or not.
            self._metrics.records_ambiguous.inc(landing.count(Outcome.AMBIGUOUS))
            log_event(logger, "spool_drain_failed", logging.WARNING, error=landing.error)
        return accepted

    def _drained(self, path: Path, records: int, *, adopted: bool) -> None:
        log_event(
            logger,
            "spool_segment_drained",
            segment=path.name,
            records=records,
            adopted=adopted,
        )
