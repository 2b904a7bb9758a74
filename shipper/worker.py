"""The shipper's loop: read a batch, write one append per file, then acknowledge.

Each round of ``Worker.run`` goes through these stages, in order:

1. start-up, after start and after every Redis outage: storage ready, then this
   consumer's own pending entries re-shipped;
2. housekeeping, every ``claim_interval_s``: claim entries that dead shippers left
   pending, forget long-dead consumers and stale intents;
3. read and check new entries (``shipper.stages.ReadAhead``: while a batch is written,
   the next one is checked and the one after it read);
4. write: one append per file, each through ``shipper.delivery`` (docs/delivery.md).
   A file in backoff never holds back the batch's other files: they are acknowledged
   as they land, and the chunk is parked (``shipper.parking``) while the loop goes on.
   A file that can never be written goes to the dead-letter stream;
5. acknowledge (``shipper.stages.Acknowledging``: at most one in flight, overlapping
   the next batch's writes).

An outage of Redis or storage ends the round; it is waited out and the next round
starts over, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from shared.logs import log_event
from shared.streams import RECORD_FIELD
from shipper.batch import Chunk, ParsedBatch, ReadSize, Rejected, parse_batches
from shipper.delivery import Delivery, backoff_s
from shipper.intents import IntentLedger
from shipper.parking import Parking
from shipper.settings import ShipperSettings
from shipper.sink import Sink, StorageError
from shipper.source import SourceUnavailable, StreamEntry, StreamSource, build_source
from shipper.stages import Acknowledging, BatchAcks, ReadAhead
from shipper.telemetry import ShipperTelemetry
from shipper.totals import Totals

logger = logging.getLogger(__name__)

_PARALLEL_APPENDS = 16
_RECORD_KEY = RECORD_FIELD.encode()


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
        self.telemetry = ShipperTelemetry(self.totals)
        # Touch entries in backoff well within the claim idle time, so nobody claims them.
        heartbeat_s = settings.shipper_claim_idle_ms / 3000
        self.delivery = Delivery(sink, ledger, settings.shipper_retry_max_s, self.totals,
                                 heartbeat_s, asyncio.Semaphore(_PARALLEL_APPENDS),
                                 self.telemetry.storage_failed)
        self.parking = Parking(max_records=settings.shipper_batch_max_records)
        self.read_size = ReadSize(settings.shipper_batch_max_records,
                                  settings.shipper_batch_max_bytes)
        self.stopping = asyncio.Event()
        self.reads = ReadAhead(source, self.read_size, settings.shipper_block_ms, self._parse,
                               self._may_read_ahead)
        self.acking = Acknowledging()
        self._sink_started = False
        self._recover_own = True
        self._next_claim_s = 0.0
        self._failures = 0

    def stop(self) -> None:
        """Stop reading; the batch in hand is still finished."""
        self.stopping.set()

    async def run(self) -> None:
        """Ship until ``stop()``; Redis and storage outages are waited out, never fatal."""
        try:
            while not self.stopping.is_set():
                await self._round()
            await self._finish()
        finally:
            await self._let_go()

    async def _round(self) -> None:
        """The stages once, in order (see the module's docstring); an outage is waited out."""
        try:
            await self._start_up()
            await self._claim_when_due()
            await self.acking.check()
            for batch in await self.reads.next(self.stopping):
                await self._ship_batch(batch)
        except SourceUnavailable as exc:
            # What was read ahead, parked or being acknowledged is re-shipped with our
            # pending entries on recovery.
            await self._let_go()
            self._recover_own = True
            self.totals.redis_errors_total += 1
            self.telemetry.redis_failed()
            await self._back_off("redis_unavailable", exc)
        except StorageError as exc:
            self.totals.storage_retries_total += 1
            self.telemetry.storage_failed(exc)
            await self._back_off("storage_retry", exc)
        else:
            self._failures = 0
            self.telemetry.round_ok()

    async def _start_up(self) -> None:
        if not self._sink_started:
            await self.sink.start()
            self._sink_started = True
        if self._recover_own:
            await self.source.ensure_group()
            await self._ship_own_pending()
            self._recover_own = False

    async def _claim_when_due(self) -> None:
        if time.monotonic() >= self._next_claim_s:
            await self._claim_and_tidy()
            self._next_claim_s = time.monotonic() + self.settings.claim_interval_s

    async def _finish(self) -> None:
        """On stop: ship what was read ahead, let parked chunks land (within the caller's
        time limit), and wait for the last acknowledgement."""
        await self._ship_read_ahead()
        await self.parking.drain()
        await self.acking.finish()

    async def _let_go(self) -> None:
        """Drop what is read ahead, parked or being acknowledged: its entries stay pending."""
        await self.reads.drop()
        await self.acking.drop()
        await self.parking.cancel_all()

    async def _back_off(self, event: str, exc: Exception) -> None:
        self._failures += 1
        delay_s = backoff_s(self._failures, self.settings.shipper_retry_max_s)
        log_event(logger, event, logging.WARNING, error=str(exc), attempt=self._failures,
                  retry_in_s=round(delay_s, 2))
        await self._pause(delay_s)

    async def _pause(self, delay_s: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=delay_s)
        except TimeoutError:
            pass

    def _may_read_ahead(self) -> bool:
        return not self.stopping.is_set() and not self.parking.records

    async def _ship_read_ahead(self) -> None:
        """On stop, ship what was already read ahead rather than leave it to a later claim
        (a read still under way is dropped: its entries stay pending)."""
        try:
            for batch in self.reads.take_checked():
                await self._ship_batch(batch)
            entries = self.reads.take_read()
            if entries:
                await self._ship(entries)
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

    async def _ship_batch(self, batch: ParsedBatch) -> None:
        await self.parking.wait_for_room(batch.entry_count, self.stopping)
        started_s = time.perf_counter()
        for rejected in batch.rejected:
            await self._dead_letter(rejected)
        chunks = batch.chunks
        acks = BatchAcks(self.source, batch.deleted_ids)
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
        await self.acking.send(acks)
        landed = [chunk for task, chunk in zip(tasks, chunks, strict=True) if task.done()]
        if landed:
            self.totals.batches_shipped_total += 1
            self.telemetry.batch_duration.observe(time.perf_counter() - started_s)
            log_event(logger, "batch_shipped", records=sum(len(c.entries) for c in landed),
                      files=len({c.stem for c in landed}),
                      ms=round((time.perf_counter() - started_s) * 1000, 1))

    async def _dead_letter(self, rejected: Rejected) -> None:
        await self.source.dead_letter(rejected.entry, rejected.reason)
        self.totals.entries_dead_lettered_total += 1
        log_event(logger, "entry_dead_lettered", logging.WARNING,
                  entry_id=rejected.entry.entry_id, reason=rejected.reason)

    async def _write_chunk(
        self, chunk: Chunk, acks: BatchAcks, stalled: asyncio.Event, fresh: bool
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
        if not outcome.failed:
            self.telemetry.storage_ok()
        for line in outcome.failed:
            entry = StreamEntry(line.entry_id, {_RECORD_KEY: line.line})
            await self.source.dead_letter(
                entry, f"permanent storage error: {outcome.failure}",
                target=outcome.target, record_id=line.record_id,
            )
            self.totals.entries_dead_lettered_total += 1
            log_event(logger, "entry_dead_lettered", logging.WARNING, entry_id=line.entry_id,
                      reason="permanent storage error", target=outcome.target)
        done = [*outcome.written, *outcome.already]
        await acks.add([line.entry_id for line in done], [line.record_id for line in done])


async def _settled(task: asyncio.Task[None], stalled: asyncio.Event) -> None:
    """Until ``task`` is done or has gone into backoff."""
    waiter = asyncio.ensure_future(stalled.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()


def build_worker(settings: ShipperSettings, sink: Sink) -> Worker:
    """A worker with its own Redis connection, as ``settings`` say."""
    source = build_source(settings, settings.shipper_consumer_name, settings.shipper_block_ms)
    ledger = IntentLedger(source.client, source.stream, source.group, source.consumer,
                          source.intents_key, source.shipped_key, source.replica_wait)
    return Worker(settings, source, sink, ledger)

