"""The shipper's loop: read a batch, write one append per file, then acknowledge.

On start (and after every Redis outage) it first re-ships its own pending entries,
then reads new ones; every so often it claims entries that dead shippers left
pending, forgets long-dead consumers and stale intents. Each file's lines go
through ``shipper.delivery`` (docs/delivery.md). While a batch is written,
the next one is checked, the one after it read (at most two ahead), and the last one
acknowledged (at most one in flight), so Redis, the disk and the event loop work at
the same time. A file in backoff never holds back the batch's other files: they are
acknowledged as they land, and the chunk is parked (``shipper.parking``) while the
loop goes on. A file that can never be written goes to the dead-letter stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, TypeGuard

from shared.logs import log_event
from shared.redis_client import connect
from shared.streams import RECORD_FIELD
from shipper.batch import Chunk, ParsedBatch, ReadSize, Rejected, parse_batches
from shipper.delivery import Delivery, backoff_s
from shipper.intents import IntentLedger
from shipper.parking import Parking
from shipper.settings import ShipperSettings
from shipper.sink import Sink, StorageError
from shipper.source import SourceUnavailable, StreamEntry, StreamSource
from shipper.telemetry import ShipperTelemetry
from shipper.totals import Totals

logger = logging.getLogger(__name__)

_PARALLEL_APPENDS = 16
_RECORD_KEY = RECORD_FIELD.encode()

ReadTask = asyncio.Task[list[ParsedBatch]]
RawReadTask = asyncio.Task[list[StreamEntry]]


class _Acks:
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


class Worker:
    """One shipper process's consumer: owns the loop, not the connections."""

    def __init__(
        self, settings: ShipperSettings, source: StreamSource, sink: Sink, ledger: IntentLedger
    ) -> None:
        self.settings = settings
        self.source = source
        self.sink = sink
        self.ledger = ledger
        self.totals = Totals()
        self.telemetry = ShipperTelemetry()
        # Touch entries in backoff well within the claim idle time, so nobody claims them.
        heartbeat_s = settings.shipper_claim_idle_ms / 3000
        self.delivery = Delivery(sink, ledger, settings.shipper_retry_max_s, self.totals,
                                 heartbeat_s, asyncio.Semaphore(_PARALLEL_APPENDS),
                                 self.telemetry.storage_failed)
        self.parking = Parking(max_records=settings.shipper_batch_max_records)
        self.read_size = ReadSize(settings.shipper_batch_max_records,
                                  settings.shipper_batch_max_bytes)
        self.stopping = asyncio.Event()
        # The last batch's acknowledgement, sent while the next batch is written.
        self._acking: asyncio.Task[None] | None = None
        # The read after the one being checked, started as soon as that one arrived.
        self._next_read: RawReadTask | None = None

    def stop(self) -> None:
        """Stop reading; the batch in hand is still finished."""
        self.stopping.set()

    async def run(self) -> None:
        """Ship until ``stop()``; Redis and storage outages are waited out, never fatal."""
        settings = self.settings
        sink_ready = False
        recover_own = True
        next_claim_s = 0.0
        failures = 0
        # The next batch, read and checked while this one is written. Its entries (and those
        # of ``_next_read``) are pending to us from the moment Redis hands them over, so
        # dropping it loses nothing.
        ahead: ReadTask | None = None
        try:
            while not self.stopping.is_set():
                try:
                    if not sink_ready:
                        await self.sink.start()
                        sink_ready = True
                    if recover_own:
                        await self.source.ensure_group()
                        await self._ship_own_pending()
                        recover_own = False
                    if time.monotonic() >= next_claim_s:
                        await self._claim_and_tidy()
                        next_claim_s = time.monotonic() + settings.claim_interval_s
                    if self._acking is not None and self._acking.done():
                        await self._acked()  # raises what a finished acknowledgement raised
                    if ahead is None:
                        ahead = self._start_read()
                    batches = await self._read_new(ahead)
                    ahead = None
                    if batches and self._may_read_ahead():
                        ahead = self._start_read()
                    for batch in batches:
                        await self._ship_batch(batch)
                    failures = 0
                    self.telemetry.round_ok()
                except SourceUnavailable as exc:
                    # What was read ahead, parked or being acknowledged is re-shipped with
                    # our pending entries on recovery.
                    await _drop(ahead)
                    ahead = None
                    await self._drop_next_read()
                    await self._drop_acking()
                    await self.parking.cancel_all()
                    failures += 1
                    self.totals.redis_errors_total += 1
                    self.telemetry.redis_failed()
                    recover_own = True
                    delay_s = backoff_s(failures, settings.shipper_retry_max_s)
                    log_event(logger, "redis_unavailable", logging.WARNING, error=str(exc),
                              attempt=failures, retry_in_s=round(delay_s, 2))
                    await self._pause(delay_s)
                except StorageError as exc:
                    failures += 1
                    self.totals.storage_retries_total += 1
                    self.telemetry.storage_failed(exc)
                    delay_s = backoff_s(failures, settings.shipper_retry_max_s)
                    log_event(logger, "storage_retry", logging.WARNING, error=str(exc),
                              attempt=failures, retry_in_s=round(delay_s, 2))
                    await self._pause(delay_s)
            await self._ship_read_ahead(ahead)
            await self.parking.drain()  # within the shutdown time limit of the caller
            await self._last_acked()
        finally:
            await _drop(ahead)
            await self._drop_next_read()
            await self._drop_acking()
            await self.parking.cancel_all()

    async def _pause(self, delay_s: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=delay_s)
        except TimeoutError:
            pass

    def _may_read_ahead(self) -> bool:
        return not self.stopping.is_set() and not self.parking.records

    def _start_read(self) -> ReadTask:
        """Check the next read: the one already under way, or a new one."""
        read, self._next_read = self._next_read or self._start_raw_read(), None
        return asyncio.create_task(self._read_and_parse(read))

    def _start_raw_read(self) -> RawReadTask:
        return asyncio.create_task(
            self.source.read(">", self.read_size.count(), self.settings.shipper_block_ms)
        )

    async def _drop_next_read(self) -> None:
        next_read, self._next_read = self._next_read, None
        await _drop(next_read)

    async def _read_new(self, read: ReadTask) -> list[ParsedBatch]:
        stop = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait({read, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not read.done():
            # Whatever this read was handed stays pending: claimed later, never lost.
            await _drop(read)
            return []
        return read.result()

    async def _ship_read_ahead(self, ahead: ReadTask | None) -> None:
        """On stop, ship what was already read ahead rather than leave it to a later claim
        (a read still under way is dropped by ``run``: its entries stay pending)."""
        try:
            if _succeeded(ahead):
                for batch in ahead.result():
                    await self._ship_batch(batch)
            next_read = self._next_read
            if _succeeded(next_read):
                self._next_read = None
                await self._ship(next_read.result())
        except (SourceUnavailable, StorageError) as exc:
            log_event(logger, "read_ahead_left_pending", logging.WARNING, error=str(exc))

    async def _ship_own_pending(self) -> None:
        after = "0"
        while not self.stopping.is_set():
            entries = await self.source.read(after, self.read_size.count(), None)
            if not entries:
                return
            self.read_size.observe(entries)
            await self._ship(entries)
            after = entries[-1].entry_id

    async def _claim_and_tidy(self) -> None:
        settings = self.settings
        while not self.stopping.is_set():
            count = self.read_size.count()
            claimed = await self.source.claim_idle(settings.shipper_claim_idle_ms, count)
            if not claimed:
                break
            self.read_size.observe(claimed)
            self.totals.entries_claimed_total += len(claimed)
            log_event(logger, "entries_claimed", entries=len(claimed),
                      first_id=claimed[0].entry_id, last_id=claimed[-1].entry_id)
            await self._ship(claimed)
            if len(claimed) < count:
                break
        removed = await self.source.forget_stale_consumers(
            int(settings.shipper_stale_consumer_s * 1000)
        )
        if removed:
            log_event(logger, "stale_consumers_removed", consumers=removed)
        forgotten = await self.ledger.sweep()
        if forgotten:
            self.totals.intents_forgotten_total += forgotten
            log_event(logger, "stale_intents_forgotten", records=forgotten)

    async def _ship(self, entries: Sequence[StreamEntry]) -> None:
        for batch in await self._parse(entries):
            await self._ship_batch(batch)

    async def _parse(self, entries: Sequence[StreamEntry]) -> list[ParsedBatch]:
        return await parse_batches(entries, self.settings.shipper_batch_max_bytes,
                                   self.sink.max_append_bytes)

    async def _read_and_parse(self, read: RawReadTask) -> list[ParsedBatch]:
        # Checked here, in the read-ahead task, a batch's records are validated while the loop
        # would otherwise wait on the appends of the batch in hand. The read after it starts
        # first: Redis, busy placing and acknowledging, takes about as long to answer a read
        # as the appends take, so a read started only now would arrive late.
        entries = await read
        self.read_size.observe(entries)
        if entries and self._may_read_ahead():
            self._next_read = self._start_raw_read()
        batches = await self._parse(entries)
        for batch in batches:
            batch.fresh = True
        return batches

    async def _ship_batch(self, batch: ParsedBatch) -> None:
        await self.parking.wait_for_room(batch.entry_count, self.stopping)
        started_s = time.perf_counter()
        for rejected in batch.rejected:
            await self._dead_letter(rejected)
        chunks = batch.chunks
        acks = _Acks(self.source, batch.deleted_ids)
        stalls = [asyncio.Event() for _ in chunks]
        tasks = [asyncio.create_task(self._write_chunk(chunk, acks, stalled, batch.fresh))
                 for chunk, stalled in zip(chunks, stalls, strict=True)]
        # Wait until each chunk has landed or is in backoff; the latter run on, parked.
        await asyncio.gather(*(_settled(task, stalled) for task, stalled in zip(tasks, stalls,
                                                                               strict=True)))
        for task, chunk in zip(tasks, chunks, strict=True):
            if not task.done():
                self.parking.park(task, len(chunk.entries))
        # Every failed chunk's error is retrieved (asyncio would log the others at exit).
        errors = [error for task in tasks if task.done() and (error := task.exception())]
        if errors:
            raise errors[0]
        # At most one acknowledgement in flight: it overlaps the next batch's appends (their
        # records are other entries; docs/delivery.md holds in any order of the two).
        await self._acked()
        self._acking = asyncio.create_task(acks.flush())
        landed = [chunk for task, chunk in zip(tasks, chunks, strict=True) if task.done()]
        if landed:
            self.totals.batches_shipped_total += 1
            self.telemetry.batch_duration.observe(time.perf_counter() - started_s)
            log_event(logger, "batch_shipped", records=sum(len(c.entries) for c in landed),
                      files=len({c.stem for c in landed}),
                      ms=round((time.perf_counter() - started_s) * 1000, 1))

    async def _acked(self) -> None:
        """Wait for the last batch's acknowledgement; raises what it raised."""
        acking, self._acking = self._acking, None
        if acking is not None:
            await acking

    async def _last_acked(self) -> None:
        try:
            await self._acked()
        except SourceUnavailable as exc:
            log_event(logger, "ack_left_pending", logging.WARNING, error=str(exc))

    async def _drop_acking(self) -> None:
        """Forget an acknowledgement that failed or is cut short: its entries stay pending."""
        acking, self._acking = self._acking, None
        if acking is not None:
            acking.cancel()
            await asyncio.wait({acking})
            if not acking.cancelled():
                acking.exception()

    async def _dead_letter(self, rejected: Rejected) -> None:
        await self.source.dead_letter(rejected.entry, rejected.reason)
        self.totals.entries_dead_lettered_total += 1
        self.telemetry.dead_lettered()
        log_event(logger, "entry_dead_lettered", logging.WARNING,
                  entry_id=rejected.entry.entry_id, reason=rejected.reason)

    async def _write_chunk(
        self, chunk: Chunk, acks: _Acks, stalled: asyncio.Event, fresh: bool
    ) -> None:
        """Deliver one file's lines, then hand what is done to ``acks``."""
        lines = chunk.entries

        async def in_backoff(first: bool) -> None:
            if first:
                stalled.set()
                await acks.go_eager()
            await self.source.touch([line.entry_id for line in lines])

        outcome = await self.delivery.write(chunk.stem, lines, in_backoff, owned=fresh)
        self.totals.records_shipped_total += len(outcome.written)
        self.totals.bytes_shipped_total += outcome.written_bytes
        self.totals.records_already_landed_total += len(outcome.already)
        self.telemetry.records_shipped.inc(len(outcome.written))
        self.telemetry.bytes_shipped.inc(outcome.written_bytes)
        if not outcome.failed:
            self.telemetry.storage_ok()
        for line in outcome.failed:
            entry = StreamEntry(line.entry_id, {_RECORD_KEY: line.line})
            await self.source.dead_letter(
                entry, f"permanent storage error: {outcome.failure}",
                target=outcome.target, record_id=line.record_id,
            )
            self.totals.entries_dead_lettered_total += 1
            self.telemetry.dead_lettered()
            log_event(logger, "entry_dead_lettered", logging.WARNING, entry_id=line.entry_id,
                      reason="permanent storage error", target=outcome.target)
        done = [*outcome.written, *outcome.already]
        await acks.add([line.entry_id for line in done], [line.record_id for line in done])


async def _settled(task: asyncio.Task[None], stalled: asyncio.Event) -> None:
    """Until ``task`` is done or has gone into backoff."""
    waiter = asyncio.ensure_future(stalled.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()


def _succeeded(task: asyncio.Task[Any] | None) -> TypeGuard[asyncio.Task[Any]]:
    return task is not None and task.done() and not task.cancelled() and not task.exception()


async def _drop(read: asyncio.Task[Any] | None) -> None:
    """Cancel a read, or forget its result: its entries stay pending to us, never lost."""
    if read is None:
        return
    read.cancel()
    await asyncio.wait({read})
    if not read.cancelled():
        read.exception()  # retrieved: a read cut short or dropped is no error


def build_worker(settings: ShipperSettings, sink: Sink) -> Worker:
    """A worker with its own Redis connection, as ``settings`` say."""
    source = build_source(settings, settings.shipper_consumer_name, settings.shipper_block_ms)
    ledger = IntentLedger(source.client, source.stream, source.group, source.consumer,
                          source.intents_key, source.shipped_key)
    return Worker(settings, source, sink, ledger)


def build_source(settings: ShipperSettings, consumer: str, block_ms: int = 0) -> StreamSource:
    """A ``StreamSource`` with its own connection, every call bounded as ``settings`` say."""
    client = connect(settings.redis_url, timeout_s=settings.shipper_redis_timeout_s,
                     block_ms=block_ms, cluster=settings.redis_cluster, keepalive=True)
    return StreamSource(
        client, settings.redis_stream, consumer,
        shipped_retention_ms=int(settings.shipper_shipped_ids_retention_s * 1000),
        dead_letter_max_entries=settings.shipper_dead_letter_max_entries,
    )
