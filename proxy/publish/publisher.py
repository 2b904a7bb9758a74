"""Publishing records to the Redis stream, off the response path.

``submit`` never waits: it puts the record on a bounded in-memory queue that a
background task drains, several ``XADD``s per round trip. A record that cannot be
published (Redis down, queue full, shutdown) goes to the ``fallback`` — the seam where
the durable spool plugs in; until then the fallback logs and counts it as dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from proxy.metrics import Metrics
from shared.logs import log_event
from shared.streams import RECORD_FIELD

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """A finished record, serialized (and scrubbed) once, waiting to be published."""

    record_id: str
    payload: bytes


Fallback = Callable[[PendingRecord, str], Awaitable[None]]
"""Takes a record that could not be published, and the reason."""


def dropping_fallback(metrics: Metrics) -> Fallback:
    """Today's fallback: log the loss and count it (the spool replaces this)."""

    async def drop(pending: PendingRecord, reason: str) -> None:
        metrics.records_dropped.inc()
        log_event(
            logger, "record_dropped", logging.WARNING, record_id=pending.record_id, reason=reason
        )

    return drop


class Publisher:
    """Drains the queue of finished records into ``XADD stream * record <json>``."""

    def __init__(
        self,
        redis: Redis,
        stream: str,
        metrics: Metrics,
        fallback: Fallback,
        *,
        queue_size: int,
        batch_size: int,
    ) -> None:
        self._redis = redis
        self._stream = stream
        self._metrics = metrics
        self._fallback = fallback
        self._batch_size = batch_size
        self._queue: asyncio.Queue[PendingRecord] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._overflow: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start draining in the background."""
        self._task = asyncio.create_task(self._run(), name="record-publisher")

    def submit(self, pending: PendingRecord) -> None:
        """Queue a record for publishing; never blocks and never raises (safe in ``finally``)."""
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            task = asyncio.ensure_future(self._fallback(pending, "queue_full"))
            self._overflow.add(task)
            task.add_done_callback(self._overflow.discard)

    async def stop(self, timeout_s: float) -> None:
        """Publish what is queued within ``timeout_s``, then hand the rest to the fallback."""
        if self._task is None:
            return
        # 1. Let the background task drain the queue while it can.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout_s)
        # 2. Stop it, even in the middle of a round trip.
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        # 3. Whatever is still queued was not published: the fallback gets it.
        while not self._queue.empty():
            await self._fallback(self._queue.get_nowait(), "shutdown")
        if self._overflow:
            await asyncio.gather(*self._overflow, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._publish(batch)
            except Exception:
                # A failing fallback must not stop the publisher for every later record.
                logger.exception("publisher_error")
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _publish(self, batch: list[PendingRecord]) -> None:
        started = time.monotonic()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for pending in batch:
                    pipe.xadd(self._stream, {RECORD_FIELD: pending.payload})
                results = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            results = [exc] * len(batch)
        for pending, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                await self._failed(pending, result)
            else:
                self._metrics.records_published.inc()
                log_event(
                    logger,
                    "record_published",
                    logging.DEBUG,
                    record_id=pending.record_id,
                    batch_size=len(batch),
                    duration_ms=round((time.monotonic() - started) * 1000, 1),
                )

    async def _failed(self, pending: PendingRecord, exc: BaseException) -> None:
        self._metrics.publish_failures.inc()
        log_event(
            logger,
            "record_publish_failed",
            logging.WARNING,
            record_id=pending.record_id,
            error=type(exc).__name__,
        )
        await self._fallback(pending, "publish_failed")
