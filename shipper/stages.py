"""The stages around the worker's writes: reading ahead, and acknowledging behind.

While the worker writes one batch, ``ReadAhead`` has the next one read and checked and
the read after it under way, and ``Acknowledging`` sends the last batch's
acknowledgement. Entries are pending to this consumer from the moment Redis hands them
over, so a read or an acknowledgement that is dropped loses nothing: its entries are
re-shipped or claimed later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeGuard

from shared.logs import log_event
from shipper.batch import ParsedBatch, ReadSize
from shipper.source import SourceUnavailable, StreamEntry, StreamSource

logger = logging.getLogger(__name__)

CheckTask = asyncio.Task[list[ParsedBatch]]
ReadTask = asyncio.Task[list[StreamEntry]]
Parse = Callable[[Sequence[StreamEntry]], Awaitable[list[ParsedBatch]]]


class ReadAhead:
    """New entries, read and checked up to two reads ahead of the batch being written."""

    def __init__(
        self, source: StreamSource, read_size: ReadSize, block_ms: int, parse: Parse,
        may_read_ahead: Callable[[], bool],
    ) -> None:
        self._source = source
        self._read_size = read_size
        self._block_ms = block_ms
        self._parse = parse
        self._may_read_ahead = may_read_ahead
        self._checked: CheckTask | None = None
        """The next batches, read and being checked."""
        self._read: ReadTask | None = None
        """The read after them, started as soon as they arrived."""

    async def next(self, stopping: asyncio.Event) -> list[ParsedBatch]:
        """The next batches (none on stop); the ones after them are started before returning."""
        if self._checked is None:
            self._checked = self._start_check()
        checked = self._checked
        stop = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({checked, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not checked.done():
            self._checked = None
            await drop(checked)  # what this read was handed stays pending: never lost
            return []
        batches = checked.result()  # raises what the read or the check raised
        self._checked = None
        if batches and self._may_read_ahead():
            self._checked = self._start_check()
        return batches

    def take_checked(self) -> list[ParsedBatch]:
        """On stop: the batches already read and checked, if any."""
        checked = self._checked
        if not _succeeded(checked):
            return []
        self._checked = None
        batches: list[ParsedBatch] = checked.result()
        return batches

    def take_read(self) -> list[StreamEntry]:
        """On stop: the entries of a read that already arrived, if any."""
        read = self._read
        if not _succeeded(read):
            return []
        self._read = None
        entries: list[StreamEntry] = read.result()
        return entries

    async def drop(self) -> None:
        """Cancel or forget whatever is read ahead."""
        checked, read, self._checked, self._read = self._checked, self._read, None, None
        await drop(checked)
        await drop(read)

    def _start_check(self) -> CheckTask:
        """Check the next read: the one already under way, or a new one."""
        read, self._read = self._read or self._start_read(), None
        return asyncio.create_task(self._read_and_check(read))

    def _start_read(self) -> ReadTask:
        return asyncio.create_task(
            self._source.read(">", self._read_size.count(), self._block_ms)
        )

    async def _read_and_check(self, read: ReadTask) -> list[ParsedBatch]:
        # Checked here, in the read-ahead task, a batch's records are validated while the loop
        # would otherwise wait on the appends of the batch in hand. The read after it starts
        # first: Redis, busy placing and acknowledging, takes about as long to answer a read
        # as the appends take, so a read started only now would arrive late.
        entries = await read
        self._read_size.observe(entries)
        if entries and self._may_read_ahead():
            self._read = self._start_read()
        batches = await self._parse(entries)
        for batch in batches:
            batch.fresh = True
        return batches


class BatchAcks:
    """A batch's acknowledgements: sent together at the end, or as each file lands once
    one of the batch's files is in backoff (so it holds back nobody else)."""

    def __init__(self, source: StreamSource, entry_ids: Sequence[str]) -> None:
        self._source = source
        self._entry_ids = list(entry_ids)
        self._record_ids: list[str] = []
        self._eager = False

    async def add(self, entry_ids: Sequence[str], record_ids: Sequence[str]) -> None:
        self._entry_ids.extend(entry_ids)
        self._record_ids.extend(record_ids)
        if self._eager:
            await self.flush()

    async def go_eager(self) -> None:
        self._eager = True
        await self.flush()

    async def flush(self) -> None:
        entry_ids, self._entry_ids = self._entry_ids, []
        record_ids, self._record_ids = self._record_ids, []
        await self._source.finish(entry_ids, record_ids)


class Acknowledging:
    """At most one batch's acknowledgement in flight, overlapping the next batch's appends
    (their records are other entries; README, "Exactly once", holds in any order of the two)."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    async def send(self, acks: BatchAcks) -> None:
        """Wait for the last acknowledgement, then send ``acks``'s in the background."""
        await self.wait()
        self._task = asyncio.create_task(acks.flush())

    async def check(self) -> None:
        """Raise what a finished acknowledgement raised."""
        if self._task is not None and self._task.done():
            await self.wait()

    async def wait(self) -> None:
        """Wait for the acknowledgement in flight; raises what it raised."""
        task, self._task = self._task, None
        if task is not None:
            await task

    async def finish(self) -> None:
        """On stop: wait for the last acknowledgement; if Redis refuses it, it stays pending."""
        try:
            await self.wait()
        except SourceUnavailable as exc:
            log_event(logger, "ack_left_pending", logging.WARNING, error=str(exc))

    async def drop(self) -> None:
        """Forget an acknowledgement that failed or is cut short: its entries stay pending."""
        task, self._task = self._task, None
        await drop(task)


def _succeeded(task: asyncio.Task[Any] | None) -> TypeGuard[asyncio.Task[Any]]:
    return task is not None and task.done() and not task.cancelled() and not task.exception()


async def drop(task: asyncio.Task[Any] | None) -> None:
    """Cancel a task, or forget its result; its error, if any, is retrieved (no error)."""
    if task is None:
        return
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()
