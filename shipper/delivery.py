"""Write one file's lines exactly once: the sink and the intent ledger together.

The protocol is docs/delivery.md. ``Delivery.write`` is used by the worker (lines
owned by stream entries) and by ``shipper replay`` (lines from a spool, no entry).
Transient storage errors are retried here without limit; the caller learns what was
written, what had landed before, what another shipper owns now, and what can never be
written.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from shared.logs import log_event
from shared.naming import file_name
from shipper.batch import Entry, payload
from shipper.intents import IntentLedger
from shipper.sink import AppendConflict, PermanentStorageError, Placement, Sink, StorageError
from shipper.totals import Totals

logger = logging.getLogger(__name__)

_FIRST_RETRY_S = 0.1
_FIRST_CONFLICT_S = 0.005
_CONFLICT_MAX_S = 0.5


def backoff_s(attempt: int, cap_s: float, first_s: float = _FIRST_RETRY_S) -> float:
    """Exponential delay for the ``attempt``-th retry (1-based), capped, half of it jittered."""
    ceiling = min(cap_s, first_s * 2 ** min(attempt - 1, 30))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))


@dataclass(slots=True)
class Outcome:
    """What became of a chunk's lines."""

    written: list[Entry] = field(default_factory=list)
    already: list[Entry] = field(default_factory=list)
    """Landed before (an earlier attempt, another shipper, a duplicate entry): not written."""
    claimed_elsewhere: list[Entry] = field(default_factory=list)
    """Claimed by another shipper meanwhile: theirs to write and acknowledge."""
    failed: list[Entry] = field(default_factory=list)
    failure: str = ""
    target: str = ""
    written_bytes: int = 0


OnWait = Callable[[bool], Awaitable[None]]
"""Awaited while a chunk is in backoff: with True on its first failure, then with False
at least every ``heartbeat_s``."""


class Delivery:
    """Appends chunks through ``sink`` under the intent protocol of ``ledger``."""

    def __init__(
        self, sink: Sink, ledger: IntentLedger, retry_max_s: float, totals: Totals | None = None,
        heartbeat_s: float = 10.0, appends: asyncio.Semaphore | None = None,
        on_storage_error: Callable[[StorageError], None] | None = None,
    ) -> None:
        self.sink = sink
        self.ledger = ledger
        self.retry_max_s = retry_max_s
        self.totals = totals or Totals()
        self.heartbeat_s = heartbeat_s
        # Bounds appends in flight, not chunks: a chunk in backoff holds no slot.
        self._appends: AbstractAsyncContextManager[Any] = appends or nullcontext()
        self._on_storage_error = on_storage_error

    async def write(
        self, stem: str, lines: Sequence[Entry], on_wait: OnWait | None = None,
        owned: bool = False,
    ) -> Outcome:
        """Append the ``lines`` (their ``entry_id``: the owning stream entry, or a replay's
        tag) to ``stem``'s file; each record id at most once, ever.

        ``owned``: the entries were just read as new, so the first attempt skips checking
        that this consumer still owns them (an economy only: no record lands twice either
        way, docs/delivery.md); every later attempt checks.

        Lines repeating a record id of the chunk follow the first one's fate (as already
        landed when it was written).
        """
        outcome = Outcome()
        firsts: dict[str, Entry] = {}
        twins: dict[str, list[Entry]] = {}
        for line in lines:
            if line.record_id in firsts:
                twins.setdefault(line.record_id, []).append(line)
            else:
                firsts[line.record_id] = line
        pending = list(firsts.values())
        failures = conflicts = 0
        while pending:
            attempt = _Attempt(self, pending, check_owners=not owned)
            owned = False
            try:
                async with self._appends:
                    placement = await self.sink.append(
                        stem, payload(pending), attempt.prepare
                    )
            except AppendConflict:
                conflicts += 1
                self.totals.append_conflicts_total += 1
                await asyncio.sleep(backoff_s(conflicts, _CONFLICT_MAX_S, _FIRST_CONFLICT_S))
                continue
            except PermanentStorageError as exc:
                outcome.failed.extend(pending)
                outcome.failure = str(exc)
                outcome.target = attempt.target or file_name(stem)
                log_event(logger, "write_failed_permanently", logging.ERROR, file_stem=stem,
                          error=str(exc), records=len(pending))
                break
            except StorageError as exc:
                failures += 1
                self.totals.storage_retries_total += 1
                if self._on_storage_error is not None:
                    self._on_storage_error(exc)
                delay_s = backoff_s(failures, self.retry_max_s)
                log_event(logger, "storage_retry", logging.WARNING, file_stem=stem,
                          error=str(exc), attempt=failures, retry_in_s=round(delay_s, 2))
                await self._wait(delay_s, on_wait, first=failures == 1)
                continue
            if placement is not None:
                outcome.written.extend(pending)
                outcome.written_bytes += placement.length
                break
            outcome.already.extend(attempt.already)
            outcome.claimed_elsewhere.extend(attempt.claimed_elsewhere)
            gone = {line.record_id for line in (*attempt.already, *attempt.claimed_elsewhere)}
            pending = [line for line in pending if line.record_id not in gone]
        _add_twins(outcome, twins)
        return outcome

    async def _wait(self, delay_s: float, on_wait: OnWait | None, first: bool) -> None:
        while True:
            if on_wait is not None:
                await on_wait(first)
            first = False
            step_s = min(delay_s, self.heartbeat_s)
            await asyncio.sleep(step_s)
            delay_s -= step_s
            if delay_s <= 0:
                return


def _add_twins(outcome: Outcome, twins: dict[str, list[Entry]]) -> None:
    """A twin (a copy of a line's record in the same chunk) shares its first line's fate;
    it counts as already landed when the first one was written."""

    def twins_of(firsts: list[Entry]) -> list[Entry]:
        return [twin for line in firsts for twin in twins.get(line.record_id, ())]

    landed = twins_of([*outcome.written, *outcome.already])
    outcome.claimed_elsewhere.extend(twins_of(outcome.claimed_elsewhere))
    outcome.failed.extend(twins_of(outcome.failed))
    outcome.already.extend(landed)


class _Attempt:
    """One ``append`` of a chunk: its ``prepare`` callback and what that callback found."""

    def __init__(self, delivery: Delivery, lines: list[Entry], check_owners: bool) -> None:
        self._delivery = delivery
        self._lines = lines
        self._check_owners = check_owners
        self._record_ids = [line.record_id for line in lines]
        self._owners = [line.entry_id for line in lines]
        self.already: list[Entry] = []
        self.claimed_elsewhere: list[Entry] = []
        self.target = ""

    async def prepare(self, placement: Placement) -> bool:
        """Under the file's lock or condition: check every earlier placement, then record ours."""
        self.target = placement.name
        ledger, sink = self._delivery.ledger, self._delivery.sink
        verdict = await ledger.place(placement, self._record_ids, self._owners, False,
                                    self._check_owners)
        if verdict.recorded:
            return True
        landed: set[str] = set(verdict.shipped_ids)
        checked: dict[Placement, bool] = {}
        for record_id, placements in verdict.earlier.items():
            for earlier in placements:
                if earlier not in checked:
                    checked[earlier] = await sink.landed(earlier)
                if checked[earlier]:
                    landed.add(record_id)
                    break
        if not landed and not verdict.lost_owners:
            verdict = await ledger.place(placement, self._record_ids, self._owners, True,
                                        self._check_owners)
            if verdict.recorded:
                return True
            landed |= verdict.shipped_ids
        for line in self._lines:
            if line.entry_id in verdict.lost_owners:
                self.claimed_elsewhere.append(line)
            elif line.record_id in landed:
                self.already.append(line)
        if self.claimed_elsewhere:
            log_event(logger, "entries_claimed_by_other_shipper",
                      entries=len(self.claimed_elsewhere))
        return False
