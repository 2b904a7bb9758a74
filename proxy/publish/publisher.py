"""Publishing records to the Redis stream, off the response path.

``submit`` never waits: it appends the record to a bounded in-memory list that a
background task drains, several ``XADD``s per round trip (``LINGER_S``), each bounded by
``PUBLISH_TIMEOUT_S``; records handed over in one go (``deferred.py``) wake the task once.
A record that cannot be published goes to the spool (the outage protocol:
docs/outages.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from proxy.metrics import Metrics
from proxy.publish.outcomes import Outcome, xadd_batch
from proxy.publish.pending import PendingRecord
from proxy.publish.spool import Spool
from shared.logs import log_event
from shared.redis_client import RedisClient
from shared.replication import ReplicaWait

__all__ = ["PendingRecord", "Publisher"]

logger = logging.getLogger(__name__)

LINGER_S = 0.010
"""How long a record waits for others to share its round trip to Redis. A round trip
costs the proxy about 90 us of CPU whatever it carries, and each record in it about
10 us more: at 3,000 calls a second, 10 ms puts some 30 records in one round trip
where 2 ms put 6, which cut the CPU per call by about 7% (bench/README.md, "Fifth
round"). A record waits at most 10 ms before it is sent, and nothing waits for it."""


class Publisher:
    """Drains the queue of finished records into ``XADD stream * record <json>``."""

    def __init__(
        self,
        redis: RedisClient,
        stream: str,
        metrics: Metrics,
        spool: Spool,
        *,
        queue_size: int,
        batch_size: int,
        timeout_s: float,
        replica_wait: ReplicaWait | None = None,
    ) -> None:
        self._redis = redis
        self._replica_wait = replica_wait or ReplicaWait()
        self._stream = stream
        self._metrics = metrics
        self._spool = spool
        self._batch_size = batch_size
        self._timeout_s = timeout_s
        self._queue_size = queue_size
        self._waiting: list[PendingRecord] = []
        """Handed over, not yet taken by the task: the queue."""
        self._wake = asyncio.Event()
        self._idle: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: list[PendingRecord] = []
        self._sending = False
        self._open = asyncio.Event()
        self._open.set()
        self._stopped = False
        self.outage = False
        """True from a failed publish until Redis accepts records again."""

    def start(self) -> None:
        """Start draining in the background."""
        self._task = asyncio.create_task(self._run(), name="record-publisher")

    def submit(self, pending: PendingRecord) -> None:
        """Queue a record for publishing; never blocks and never raises (safe in ``finally``)."""
        if self._stopped or len(self._waiting) >= self._queue_size:
            self._spool.append([pending])
            return
        self._waiting.append(pending)
        self._wake.set()

    @property
    def refusing(self) -> bool:
        """Under ``SPOOL_FULL_POLICY=reject``: a new call's record could not be kept now."""
        spool = self._spool
        if spool.full_policy != "reject":
            return False
        return spool.full or (not spool.writable and (self.outage or spool.holds_records))

    def redis_answered(self) -> None:
        """The drainer saw Redis answer with nothing of ours left in the spool."""
        self.outage = False

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Hold new records in the queue while the drainer hands the spool back to Redis."""
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    async def stop(self, timeout_s: float) -> None:
        """Publish what is queued within ``timeout_s``, then spool the rest."""
        if self._task is None:
            return
        # 1. Let the background task publish (or spool) the queue while it can.
        if self._waiting or self._inflight:
            self._idle = asyncio.get_running_loop().create_future()
            await asyncio.wait([self._idle], timeout=timeout_s)
        # 2. Stop it, even in the middle of a round trip.
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._stopped = True  # from now on, submit goes straight to the spool
        # 3. A batch cut mid-round-trip may have landed too: spooled anyway, like a timeout.
        if self._sending:
            self._metrics.records_ambiguous.inc(len(self._inflight))
        leftover, self._waiting = self._inflight + self._waiting, []
        self._spool.append(leftover)
        self._inflight = []

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if len(self._waiting) < self._batch_size:
                await asyncio.sleep(LINGER_S)
            batch = self._waiting[: self._batch_size]
            del self._waiting[: self._batch_size]
            if not self._waiting:
                self._wake.clear()
            # In flight from now on: ``stop`` spools it if the task is cancelled.
            self._inflight = batch
            try:
                await self._open.wait()
                if self._spool.holds_records:
                    self._spool.append(batch)  # behind the records already waiting there
                else:
                    await self._publish(batch)
            except Exception:
                # A bug here must not stop publishing for every later record.
                logger.exception("publisher_error")
                self._spool.append(batch)
            self._inflight = []
            if self._idle is not None and not self._waiting and not self._idle.done():
                self._idle.set_result(None)

    async def _publish(self, batch: list[PendingRecord]) -> None:
        started = time.monotonic()
        self._sending = True
        # Left True if cancelled mid-round-trip: ``stop`` counts that batch as ambiguous.
        landing = await xadd_batch(
            self._redis,
            self._stream,
            [pending.payload for pending in batch],
            timeout_s=self._timeout_s,
            replica_wait=self._replica_wait,
        )
        self._sending = False
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        debug = logger.isEnabledFor(logging.DEBUG)  # the level checked once per batch
        kept = []
        for pending, outcome in zip(batch, landing.outcomes, strict=True):
            if outcome is not Outcome.PUBLISHED:
                kept.append(pending)
                continue
            pending.settled()
            if debug:
                log_event(
                    logger,
                    "record_published",
                    logging.DEBUG,
                    record_id=pending.record_id,
                    batch_size=len(batch),
                    duration_ms=duration_ms,
                )
        if published := len(batch) - len(kept):
            self._metrics.records_published.inc(published)
        self.outage = bool(kept)
        if kept:
            # The ambiguous ones may have landed: their spooled copies keep their ids.
            self._metrics.publish_failures.inc(len(kept))
            self._metrics.records_ambiguous.inc(landing.count(Outcome.AMBIGUOUS))
            log_event(
                logger,
                "record_publish_failed",
                logging.WARNING,
                records=len(kept),
                ambiguous=landing.count(Outcome.AMBIGUOUS),
                error=landing.error,
                first_record_id=kept[0].record_id,
            )
            self._spool.append(kept)
