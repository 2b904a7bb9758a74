"""The shipper's loop: read a batch, write one append per file, then acknowledge.

On start (and after every Redis outage) it first re-ships its own pending entries,
then reads new ones; every so often it claims entries that dead shippers left
pending and forgets long-dead consumers. Writes follow the intent protocol of
``shipper.intents``, so a record is never written twice, and nothing is
acknowledged before the sink returned (durable). While a batch is written, the
next one is read (at most one ahead), so Redis and the disk work at the same time.
Storage failures are retried with capped, jittered backoff without limit, on the
same batch, reading nothing beyond that one batch ahead.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from shared.logs import log_event
from shipper.batch import Chunk, Entry, ParsedBatch, Rejected, parse_batches
from shipper.intents import IntentLedger
from shipper.settings import ShipperSettings
from shipper.sink import AppendConflict, Placement, Sink, StorageError
from shipper.source import SourceUnavailable, StreamEntry, StreamSource, connect
from shipper.telemetry import ShipperTelemetry

logger = logging.getLogger(__name__)

_FIRST_RETRY_S = 0.1
_PARALLEL_APPENDS = 16

ReadTask = asyncio.Task[list[ParsedBatch]]


def backoff_s(attempt: int, cap_s: float) -> float:
    """Exponential delay for the ``attempt``-th retry (1-based), capped, half of it jittered."""
    ceiling = min(cap_s, _FIRST_RETRY_S * 2 ** min(attempt - 1, 30))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))


@dataclass
class Totals:
    """Counters logged with ``shipper_stopped``."""

    records_shipped_total: int = 0
    bytes_shipped_total: int = 0
    batches_shipped_total: int = 0
    records_already_landed_total: int = 0
    entries_claimed_total: int = 0
    entries_dead_lettered_total: int = 0
    storage_retries_total: int = 0
    redis_errors_total: int = 0


@dataclass
class _ChunkOutcome:
    done_ids: list[str] = field(default_factory=list)
    written_records: int = 0
    written_bytes: int = 0


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
        self.stopping = asyncio.Event()
        self._appends = asyncio.Semaphore(_PARALLEL_APPENDS)

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
        # The next batch, read while this one is written: at most one ahead. Its entries are
        # pending to us from the moment Redis hands them over, so dropping it loses nothing.
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
                    if ahead is None:
                        ahead = self._start_read()
                    batches = await self._read_new(ahead)
                    ahead = None
                    if batches and not self.stopping.is_set():
                        ahead = self._start_read()
                    for batch in batches:
                        await self._ship_batch(batch)
                    failures = 0
                    self.telemetry.round_ok()
                except SourceUnavailable as exc:
                    # What was read ahead is re-read with our pending entries on recovery.
                    await _drop(ahead)
                    ahead = None
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
        finally:
            await _drop(ahead)

    async def _pause(self, delay_s: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=delay_s)
        except TimeoutError:
            pass

    def _start_read(self) -> ReadTask:
        return asyncio.create_task(self._read_and_parse())

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
        """On stop, ship a batch already read ahead rather than leave it to a later claim."""
        if ahead is None or not ahead.done() or ahead.cancelled() or ahead.exception():
            return
        try:
            for batch in ahead.result():
                await self._ship_batch(batch)
        except (SourceUnavailable, StorageError) as exc:
            log_event(logger, "read_ahead_left_pending", logging.WARNING, error=str(exc))

    async def _ship_own_pending(self) -> None:
        after = "0"
        while not self.stopping.is_set():
            entries = await self.source.read(after, self.settings.shipper_batch_max_records, None)
            if not entries:
                return
            await self._ship(entries, may_have_intent=True)
            after = entries[-1].entry_id

    async def _claim_and_tidy(self) -> None:
        settings = self.settings
        while not self.stopping.is_set():
            claimed = await self.source.claim_idle(
                settings.shipper_claim_idle_ms, settings.shipper_batch_max_records
            )
            if not claimed:
                break
            self.totals.entries_claimed_total += len(claimed)
            log_event(logger, "entries_claimed", entries=len(claimed),
                      first_id=claimed[0].entry_id, last_id=claimed[-1].entry_id)
            await self._ship(claimed, may_have_intent=True)
            if len(claimed) < settings.shipper_batch_max_records:
                break
        removed = await self.source.forget_stale_consumers(
            int(settings.shipper_stale_consumer_s * 1000)
        )
        if removed:
            log_event(logger, "stale_consumers_removed", consumers=removed)

    async def _ship(self, entries: Sequence[StreamEntry], may_have_intent: bool) -> None:
        for batch in self._parse(entries, may_have_intent):
            await self._ship_batch(batch)

    def _parse(self, entries: Sequence[StreamEntry], may_have_intent: bool) -> list[ParsedBatch]:
        return parse_batches(entries, may_have_intent, self.settings.shipper_batch_max_bytes,
                             self.sink.max_append_bytes)

    async def _read_and_parse(self) -> list[ParsedBatch]:
        # Parsed here, in the read-ahead task, a batch's records are validated while the loop
        # would otherwise wait on the appends of the batch in hand.
        settings = self.settings
        entries = await self.source.read(
            ">", settings.shipper_batch_max_records, settings.shipper_block_ms
        )
        return self._parse(entries, may_have_intent=False)

    async def _ship_batch(self, batch: ParsedBatch) -> None:
        started_s = time.perf_counter()
        for rejected in batch.rejected:
            await self._dead_letter(rejected)
        chunks = batch.chunks
        outcomes = await asyncio.gather(
            *(self._write_chunk(chunk) for chunk in chunks), return_exceptions=True
        )
        # Every append ran to its end before any error surfaces (no half-written chunk).
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        done_ids = list(batch.deleted_ids)
        for outcome in outcomes:
            assert isinstance(outcome, _ChunkOutcome)
            done_ids.extend(outcome.done_ids)
        await self.source.finish(done_ids)
        records = sum(o.written_records for o in outcomes if isinstance(o, _ChunkOutcome))
        size = sum(o.written_bytes for o in outcomes if isinstance(o, _ChunkOutcome))
        if not records:
            return
        self.totals.records_shipped_total += records
        self.totals.bytes_shipped_total += size
        self.totals.batches_shipped_total += 1
        self.telemetry.batch_shipped(records, size, time.perf_counter() - started_s)
        log_event(logger, "batch_shipped", records=records, files=len({c.stem for c in chunks}),
                  bytes=size, ms=round((time.perf_counter() - started_s) * 1000, 1))

    async def _dead_letter(self, rejected: Rejected) -> None:
        await self.source.dead_letter(rejected.entry, rejected.reason)
        self.totals.entries_dead_lettered_total += 1
        self.telemetry.dead_lettered()
        log_event(logger, "entry_dead_lettered", logging.WARNING,
                  entry_id=rejected.entry.entry_id, reason=rejected.reason)

    async def _write_chunk(self, chunk: Chunk) -> _ChunkOutcome:
        """Append the chunk's lines exactly once; retries storage errors without limit."""
        outcome = _ChunkOutcome()
        pending = list(chunk.entries)
        failures = 0
        async with self._appends:
            while pending:
                attempt = _Attempt(self, pending)
                try:
                    placement = await self.sink.append(
                        chunk.stem, b"".join(entry.line for entry in pending), attempt.prepare
                    )
                except AppendConflict:
                    continue
                except StorageError as exc:
                    failures += 1
                    self.totals.storage_retries_total += 1
                    self.telemetry.storage_failed(exc)
                    delay_s = backoff_s(failures, self.settings.shipper_retry_max_s)
                    log_event(logger, "storage_retry", logging.WARNING, file_stem=chunk.stem,
                              error=str(exc), attempt=failures, retry_in_s=round(delay_s, 2))
                    await asyncio.sleep(delay_s)
                    continue
                if placement is not None:
                    outcome.done_ids.extend(entry.entry_id for entry in pending)
                    outcome.written_records += len(pending)
                    outcome.written_bytes += placement.length
                    break
                outcome.done_ids.extend(attempt.landed_ids)
                self.totals.records_already_landed_total += len(attempt.landed_ids)
                gone = attempt.landed_ids | attempt.lost_ids
                pending = [entry for entry in pending if entry.entry_id not in gone]
        return outcome


class _Attempt:
    """One ``append`` of a chunk: its ``prepare`` callback and what that callback found."""

    def __init__(self, worker: Worker, entries: list[Entry]) -> None:
        self._worker = worker
        self._entries = entries
        self.landed_ids: set[str] = set()
        self.lost_ids: set[str] = set()

    async def prepare(self, placement: Placement) -> bool:
        """Steps 1-3 of the intent protocol (``shipper.intents``)."""
        ledger, sink = self._worker.ledger, self._worker.sink
        maybe = [entry.entry_id for entry in self._entries if entry.may_have_intent]
        if maybe:
            earlier = await ledger.recorded(maybe)
            for old in set(earlier.values()):
                if await sink.landed(old):
                    self.landed_ids.update(i for i, where in earlier.items() if where == old)
            if self.landed_ids:
                return False
        lost = await ledger.record([entry.entry_id for entry in self._entries], placement)
        if lost:
            self.lost_ids.update(lost)
            log_event(logger, "entries_lost_to_other_shipper", entries=len(lost))
            return False
        for entry in self._entries:
            entry.may_have_intent = True
        return True


async def _drop(read: ReadTask | None) -> None:
    """Cancel a read, or forget its result: its entries stay pending to us, never lost."""
    if read is None:
        return
    read.cancel()
    await asyncio.wait({read})
    if not read.cancelled():
        read.exception()  # retrieved: a read cut short or dropped is no error


def build_worker(settings: ShipperSettings, sink: Sink) -> Worker:
    """A worker with its own Redis connection, as ``settings`` say."""
    source = StreamSource(
        connect(settings.redis_url), settings.redis_stream, settings.shipper_consumer_name
    )
    ledger = IntentLedger(
        source.client, source.stream, source.group, source.consumer, source.intents_key
    )
    return Worker(settings, source, sink, ledger)


def totals_fields(totals: Totals) -> dict[str, int]:
    """The counters as log fields."""
    return asdict(totals)
