"""Each record id lands once: claim races, duplicate XADDs, crashes at every step, torn
writes, poison files, partitions, against a real redis-server and a real folder."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import redis

from shared.naming import file_name, file_stem
from shared.record import Record
from shared.streams import dead_letter_cut_key, dead_letter_stream, intents_key
from shipper.batch import Entry, parse_entry
from shipper.delivery import Delivery
from shipper.intents import IntentLedger
from shipper.settings import ShipperSettings
from shipper.sink import PermanentStorageError, Placement, Prepare, StorageError
from shipper.sink_local import LocalSink
from shipper.source import StreamEntry, StreamSource, build_source
from tests.factories import make_record
from tests.shipper.conftest import (
    STREAM,
    Publish,
    names_in,
    pending_count,
    read_file,
    running_worker,
    shipped_ids,
    stream_length,
)
from tests.support.redis_server import RedisServer
from tests.support.waiting import async_wait_until


def _drained(client: redis.Redis) -> bool:
    return stream_length(client) == 0 and pending_count(client) == 0


def _delivery(settings: ShipperSettings, consumer: str, sink: LocalSink
              ) -> tuple[StreamSource, Delivery]:
    source = build_source(settings, consumer)
    ledger = IntentLedger(source.client, source.stream, source.group, consumer,
                          source.intents_key, source.shipped_key)
    return source, Delivery(sink, ledger, retry_max_s=0.2)


def _lines(entries: list[StreamEntry]) -> list[Entry]:
    lines = []
    for stream_entry in entries:
        entry = parse_entry(stream_entry, 1 << 20)
        assert isinstance(entry, Entry)
        lines.append(entry)
    return lines


class GatedSink(LocalSink):
    """A real local sink that can stop an append at a chosen step until the test opens it."""

    def __init__(self, root: Path, step: str) -> None:
        super().__init__(root)
        self.step = step
        self.reached = asyncio.Event()
        self.gate = asyncio.Event()

    async def append(self, stem: str, payload: bytes, prepare: Prepare) -> Placement | None:
        async def gated(placement: Placement) -> bool:
            go = await prepare(placement)
            if go and self.step == "placed":  # the intent is recorded, the flock held
                self.reached.set()
                await self.gate.wait()
            return go

        placement = await super().append(stem, payload, gated)
        if self.step == "written":  # durable, not yet acknowledged
            self.reached.set()
            await self.gate.wait()
        return placement


class EnteredSink(LocalSink):
    """A real local sink that tells the test when an append has begun."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.entered = asyncio.Event()

    async def append(self, stem: str, payload: bytes, prepare: Prepare) -> Placement | None:
        self.entered.set()
        return await super().append(stem, payload, prepare)


@pytest.mark.parametrize("step", ["placed", "written"])
async def test_a_claim_while_the_first_owner_is_slow_lands_each_record_once(
    step: str, shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    log_dir: Path,
) -> None:
    records = [make_record(user_id="u") for _ in range(5)]
    publish(records)
    sink_a, sink_b = GatedSink(log_dir, step), EnteredSink(log_dir)
    source_a, delivery_a = _delivery(shipper_settings, "a", sink_a)
    source_b, delivery_b = _delivery(shipper_settings, "b", sink_b)
    await source_a.ensure_group()
    entries = await source_a.read(">", 100, None)
    stem = file_stem("u", "gpt-4o-mini", records[0].timestamp)
    write_a = asyncio.create_task(delivery_a.write(stem, _lines(entries)))
    await sink_a.reached.wait()
    claimed = await source_b.claim_idle(0, 100)
    assert len(claimed) == 5
    write_b = asyncio.create_task(delivery_b.write(stem, _lines(claimed)))
    # B runs as far as it can while A is stuck: to the file A holds, or (A's bytes are
    # durable) to the end.
    if step == "placed":
        await sink_b.entered.wait()
    else:
        await asyncio.wait_for(asyncio.shield(write_b), timeout=10)
    sink_a.gate.set()
    outcome_a, outcome_b = await write_a, await write_b
    # A recorded its intent while it owned the entries; B found A's bytes, wrote nothing.
    assert len(outcome_a.written) == 5 and len(outcome_b.already) == 5
    assert sorted(shipped_ids(log_dir)) == sorted(r.id for r in records)
    for source in (source_a, source_b):
        await source.close()


async def test_the_same_record_published_twice_lands_once(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    log_dir: Path,
) -> None:
    records = [make_record(user_id=f"u{n % 3}") for n in range(30)]
    publish([*records, records[0], records[1]])  # a retried XADD, in the same batch
    async with running_worker(shipper_settings) as worker:
        await async_wait_until(lambda: _drained(redis_client), what="first wave")
        publish(records[5:10])  # again, after they landed (a spool re-publishing)
        await async_wait_until(lambda: _drained(redis_client), what="second wave")
    assert sorted(shipped_ids(log_dir)) == sorted(r.id for r in records)
    assert worker.totals.records_already_landed_total == 7
    assert redis_client.hlen(intents_key(STREAM)) == 0


class CrashAt(LocalSink):
    """Dies (as far as this process's shipping goes) at one step of an append."""

    def __init__(self, root: Path, step: str) -> None:
        super().__init__(root)
        self.step = step
        self.crashed = False

    async def append(self, stem: str, payload: bytes, prepare: Prepare) -> Placement | None:
        async def crashing(placement: Placement) -> bool:
            go = await prepare(placement)
            if go and self.step == "placed":
                self.crashed = True
                raise RuntimeError("killed after the intent, before the write")
            return go

        placement = await super().append(stem, payload, crashing)
        if self.step == "written":
            self.crashed = True
            raise RuntimeError("killed after the write, before the ack")
        return placement


@pytest.mark.parametrize("step", ["placed", "written"])
async def test_a_duplicate_with_a_crash_at_each_step_lands_once(
    step: str, shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    log_dir: Path,
) -> None:
    records = [make_record(user_id="u") for _ in range(10)]
    publish([*records, records[3]])
    settings = shipper_settings.model_copy(update={"shipper_consumer_name": "fixed"})
    crashing = CrashAt(log_dir, step)
    with pytest.raises(RuntimeError):
        async with running_worker(settings, crashing):
            await async_wait_until(lambda: crashing.crashed, what="the crash")
    publish([records[3], records[7]])  # and again while the first copies are pending
    async with running_worker(settings):  # restarted: its own pending entries first
        await async_wait_until(lambda: _drained(redis_client), what="recovery")
    assert sorted(shipped_ids(log_dir)) == sorted(r.id for r in records)


class TornWrite(LocalSink):
    """Crashes mid-write: the marker and half the payload on disk, or a marker cut short."""

    def __init__(self, root: Path, with_marker: bool) -> None:
        super().__init__(root)
        self.with_marker = with_marker
        self.crashed = False

    def _write_durably_and_close(
        self, handle: IO[bytes], placement: Placement, payload: bytes
    ) -> None:
        marker = self.root / f".{placement.name}.writing"
        try:
            if self.with_marker:
                marker.write_text(f"{placement.offset}\n")
                handle.write(payload[: len(payload) // 2])  # complete lines and a torn one
                handle.flush()
            else:
                marker.write_text(str(placement.offset)[:1])  # died writing the marker
        finally:
            handle.close()
            self.crashed = True
        raise RuntimeError("killed mid-write")


@pytest.mark.parametrize("with_marker", [True, False])
async def test_a_torn_write_then_a_restart_lands_each_record_once(
    with_marker: bool, shipper_settings: ShipperSettings, publish: Publish,
    redis_client: redis.Redis, log_dir: Path,
) -> None:
    settings = shipper_settings.model_copy(update={"shipper_consumer_name": "fixed"})
    first = [make_record(user_id="u") for _ in range(20)]
    publish(first)
    async with running_worker(settings):  # some acknowledged lines before the crash
        await async_wait_until(lambda: _drained(redis_client), what="the first lines")
    second = [make_record(user_id="u", body_bytes=3000) for _ in range(20)]
    publish(second)
    torn = TornWrite(log_dir, with_marker)
    with pytest.raises(RuntimeError):
        async with running_worker(settings, torn):
            await async_wait_until(lambda: torn.crashed, what="the torn write")
    async with running_worker(settings):
        await async_wait_until(lambda: _drained(redis_client), what="recovery")
    assert sorted(shipped_ids(log_dir)) == sorted(r.id for r in first + second)
    markers = [path for path in names_in(log_dir) if path.name.endswith(".writing")]
    assert all(not read_file(path).strip() for path in markers)  # none left in progress


class LongNames(LocalSink):
    """Gives one user's records a name longer than the file system allows."""

    async def append(self, stem: str, payload: bytes, prepare: Prepare) -> Placement | None:
        if stem.startswith("poison_"):
            stem = "p" * 300 + stem
        return await super().append(stem, payload, prepare)


async def test_a_file_that_can_never_be_written_is_dead_lettered_and_the_rest_ships(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    log_dir: Path,
) -> None:
    good = [make_record(user_id=f"u{n % 3}") for n in range(30)]
    bad = [make_record(user_id="poison") for _ in range(3)]
    publish([*good[:15], *bad, *good[15:]])
    async with running_worker(shipper_settings, LongNames(log_dir)) as worker:
        await async_wait_until(lambda: _drained(redis_client), what="drained")
    assert sorted(shipped_ids(log_dir)) == sorted(r.id for r in good)
    dead = redis_client.xrange(dead_letter_stream(STREAM))
    assert len(dead) == 3 and worker.totals.entries_dead_lettered_total == 3
    for _, fields in dead:
        assert b"File name too long" in fields[b"reason"]
        assert fields[b"target"].endswith(b".jsonl")
    with pytest.raises(PermanentStorageError):
        await LocalSink(log_dir).append("x" * 300, b"{}\n", _yes)


async def _yes(placement: Placement) -> bool:
    return True


async def test_the_dead_letter_stream_is_capped_and_counts_what_it_cut(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
) -> None:
    settings = shipper_settings.model_copy(update={"shipper_dead_letter_max_entries": 5})
    publish([b"not json"] * 12)
    async with running_worker(settings):
        await async_wait_until(lambda: _drained(redis_client), what="drained")
    assert redis_client.xlen(dead_letter_stream(STREAM)) == 5
    assert int(redis_client.get(dead_letter_cut_key(STREAM)) or 0) == 7


@pytest.fixture
def paused_redis(redis_server: RedisServer) -> Iterator[int]:
    """The test Redis's pid, to SIGSTOP; resumed at the end whatever happens."""
    pid = redis_server.pid
    assert pid is not None
    yield pid
    os.kill(pid, signal.SIGCONT)


class PausesRedis(LocalSink):
    """SIGSTOPs Redis the first time ``prepare`` is about to run, with the flock held."""

    def __init__(self, root: Path, redis_pid: int) -> None:
        super().__init__(root)
        self.redis_pid = redis_pid
        self.paused = threading.Event()

    async def append(self, stem: str, payload: bytes, prepare: Prepare) -> Placement | None:
        async def pausing(placement: Placement) -> bool:
            if not self.paused.is_set():
                os.kill(self.redis_pid, signal.SIGSTOP)
                self.paused.set()
            return await prepare(placement)

        return await super().append(stem, payload, pausing)


def _seconds_until_flock_is_free(path: Path, limit_s: float) -> float:
    started = time.monotonic()
    with path.open("ab") as handle:
        while time.monotonic() - started < limit_s:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                return time.monotonic() - started
            except BlockingIOError:
                time.sleep(0.01)
    return limit_s


async def test_a_hung_redis_makes_the_shipper_let_go_of_the_file_in_bounded_time(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    log_dir: Path, paused_redis: int,
) -> None:
    settings = shipper_settings.model_copy(update={"shipper_redis_timeout_s": 0.5})
    records = [make_record(user_id="u") for _ in range(20)]
    publish(records)
    sink = PausesRedis(log_dir, paused_redis)
    path = log_dir / file_name(file_stem("u", "gpt-4o-mini", records[0].timestamp))
    async with running_worker(settings, sink) as worker:
        await async_wait_until(sink.paused.is_set, what="redis paused mid-append")
        held_s = await asyncio.to_thread(_seconds_until_flock_is_free, path, 5.0)
        assert held_s < 2.0, f"the flock was held {held_s:.1f} s with Redis hung"
        await async_wait_until(lambda: worker.totals.redis_errors_total >= 1, what="timeout seen")
        os.kill(paused_redis, signal.SIGCONT)
        await async_wait_until(lambda: _drained(redis_client), what="shipping after resume")
    assert sorted(shipped_ids(log_dir)) == sorted(r.id for r in records)


async def test_a_redis_that_drops_connections_loses_and_duplicates_nothing(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    log_dir: Path, redis_url: str,
) -> None:
    settings = shipper_settings.model_copy(update={"shipper_batch_max_records": 100})
    records = [make_record(user_id=f"u{n % 4}") for n in range(3000)]
    stop = threading.Event()

    def kill_clients() -> None:
        killer = redis.Redis.from_url(redis_url)
        while not stop.is_set():
            killer.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            time.sleep(0.03)
        killer.close()

    killer = threading.Thread(target=kill_clients)
    async with running_worker(settings) as worker:
        killer.start()
        try:
            for start in range(0, 3000, 500):
                await asyncio.to_thread(_publish_retrying, publish, records[start:start + 500])
            await async_wait_until(lambda: worker.totals.redis_errors_total >= 3, what="drops")
        finally:
            stop.set()
            await asyncio.to_thread(killer.join)
        await async_wait_until(lambda: _drained(redis_client), timeout_s=60, what="drained")
    ids = shipped_ids(log_dir)
    assert len(ids) == len(set(ids)) == 3000


def _publish_retrying(publish: Publish, records: list[Record]) -> None:
    for _ in range(50):
        try:
            publish(records)
            return
        except redis.ConnectionError:
            time.sleep(0.01)
    raise AssertionError("could not publish")


class OneFileDown(LocalSink):
    """One user's file fails transiently (as a full disk would) until ``mend`` is set."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.mend = asyncio.Event()

    async def append(self, stem: str, payload: bytes, prepare: Prepare) -> Placement | None:
        if stem.startswith("stuck_") and not self.mend.is_set():
            raise StorageError("No space left on device (simulated)")
        return await super().append(stem, payload, prepare)


@pytest.mark.slow
async def test_a_file_in_backoff_holds_back_neither_its_batch_nor_later_ones(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    log_dir: Path,
) -> None:
    stuck = [make_record(user_id="stuck") for _ in range(4)]
    others = [make_record(user_id=f"u{n % 3}") for n in range(30)]
    later = [make_record(user_id=f"u{n % 3}") for n in range(30)]
    publish([*others[:15], *stuck, *others[15:]])  # one batch
    sink = OneFileDown(log_dir)
    async with running_worker(shipper_settings, sink) as worker:
        await async_wait_until(lambda: stream_length(redis_client) == 4, what="others acked")
        assert worker.totals.storage_retries_total >= 1 and worker.parking.records == 4
        publish(later)  # the loop goes on while the stuck file is parked
        await async_wait_until(lambda: stream_length(redis_client) == 4, what="later ones")
        # Its entries stay alive while it retries: a second shipper claims none of them.
        other = shipper_settings.model_copy(update={"shipper_consumer_name": "other"})
        async with running_worker(other) as second:
            await asyncio.sleep(2.5 * shipper_settings.shipper_claim_idle_ms / 1000)
        assert second.totals.entries_claimed_total == 0
        sink.mend.set()
        await async_wait_until(lambda: _drained(redis_client), what="the stuck file shipped")
    assert sorted(shipped_ids(log_dir)) == sorted(r.id for r in stuck + others + later)
