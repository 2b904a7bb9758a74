"""Files in backoff, set aside so that the loop goes on with the others.

A chunk whose file fails transiently is parked: it retries in the background, and its
records count as records in hand (``wait_for_room``). The rule and the bound it gives:
docs/delivery.md, "Parking".
"""

from __future__ import annotations

import asyncio
import logging

from shared.logs import log_event

logger = logging.getLogger(__name__)

ChunkTask = asyncio.Task[None]


class Parking:
    """The parked chunk tasks of one worker and the records they hold."""

    def __init__(self, max_records: int) -> None:
        self.max_records = max_records
        self._tasks: dict[ChunkTask, int] = {}
        self._changed = asyncio.Event()

    @property
    def records(self) -> int:
        return sum(self._tasks.values())

    def park(self, task: ChunkTask, records: int) -> None:
        """Let ``task`` run on by itself; it acknowledges its own records when it lands."""
        self._tasks[task] = records
        task.add_done_callback(self._landed)
        log_event(logger, "chunk_parked", records=records, parked_records=self.records)

    def _landed(self, task: ChunkTask) -> None:
        self._tasks.pop(task, None)
        self._changed.set()
        if not task.cancelled() and (error := task.exception()) is not None:
            # Its entries stay pending to this consumer: re-shipped or claimed, never lost.
            log_event(logger, "parked_chunk_failed", logging.WARNING, error=repr(error))

    async def wait_for_room(self, incoming: int, stopping: asyncio.Event) -> None:
        """Return once nothing is parked, or the parked and ``incoming`` records fit in
        ``max_records``; or on stop."""
        while self._tasks and self.records + incoming > self.max_records:
            if stopping.is_set():
                return
            self._changed.clear()
            changed = asyncio.ensure_future(self._changed.wait())
            stop = asyncio.ensure_future(stopping.wait())
            await asyncio.wait({changed, stop}, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
            stop.cancel()

    async def drain(self) -> None:
        """Wait for every parked chunk (the caller bounds the wait)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    async def cancel_all(self) -> None:
        """Give up parked chunks: their entries stay pending, and are re-shipped later."""
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
