"""The shipper loop in-process against a real Redis and a real folder."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis

from shared.naming import file_name, file_stem, parse_file_name
from shared.record import Record
from shared.streams import dead_letter_stream, intents_key
from shipper.settings import ShipperSettings
from shipper.sink import Placement, Prepare
from shipper.sink_local import LocalSink
from shipper.source import SourceUnavailable
from tests.factories import make_record
from tests.shipper.conftest import (
    STREAM,
    Publish,
    everything_inside,
    make_unusable,
    make_usable,
    names_in,
    pending_count,
    read_lines,
    running_worker,
    shipped_ids,
    stream_length,
)
from tests.support.redis_server import RedisServer
from tests.support.waiting import async_wait_until


def _drained(client: redis.Redis) -> bool:
    return stream_length(client) == 0 and pending_count(client) == 0


async def test_every_field_of_every_record_round_trips(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis, log_dir: Path
) -> None:
    records = [make_record(user_id=f"user-{i % 3}", body_bytes=i * 10, extra={"n": i})
               for i in range(60)]
    publish(records)
    async with running_worker(shipper_settings):
        await async_wait_until(lambda: _drained(redis_client), what="stream drained")
    written = {line["id"]: Record.model_validate(line)
               for lines in read_lines(log_dir).values() for line in lines}
    assert written == {record.id: record for record in records}
    assert redis_client.hlen(intents_key(STREAM)) == 0


async def test_file_names_follow_the_record_date_and_stay_in_the_folder(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    before_midnight = datetime(2024, 10, 21, 23, 59, 59, 999000, tzinfo=UTC)
    hostile = ["../../etc/passwd", "a/b", "ft:gpt-4o:org::x", "..", "_", "%2F", "é"]
    records = [make_record(model=name, user_id=name, timestamp=before_midnight)
               for name in hostile]
    plus_two = timezone(timedelta(hours=2))
    records.append(make_record(model=None, user_id=None,
                               timestamp=datetime(2024, 10, 22, 1, 0, tzinfo=plus_two)))
    publish(records)  # shipped "after midnight": today, not 2024-10-21
    # Deep enough that an escape via ../.. would still land under tmp_path, where we look.
    log_dir = tmp_path / "a" / "b" / "logs"
    settings = shipper_settings.model_copy(update={"local_log_dir": log_dir})
    async with running_worker(settings):
        await async_wait_until(lambda: _drained(redis_client), what="stream drained")
    files = read_lines(log_dir)
    markers = [f".{name}.writing" for name in files]  # each file's write marker beside it
    assert sorted(p.name for p in names_in(log_dir)) == sorted([*files, *markers])
    assert everything_inside(log_dir, root=tmp_path)
    for record in records:
        name = file_name(file_stem(record.user_id, record.model, record.timestamp))
        assert [line["id"] for line in files[name]] == [record.id]
        parsed = parse_file_name(name)
        assert (parsed.user_id, parsed.model) == (record.user_id, record.model)
    assert parse_file_name(file_name(file_stem("..", "..", before_midnight))).day.day == 21
    assert "unknown_20241021.jsonl" in files  # 01:00 at UTC+2 is the 21st in UTC


class CountingSink(LocalSink):
    """A real local sink that counts appends per file."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.appends: list[str] = []

    async def append(self, stem: str, payload: bytes, prepare: Prepare) -> Placement | None:
        self.appends.append(stem)
        return await super().append(stem, payload, prepare)


async def test_one_append_per_file_per_batch(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis, log_dir: Path
) -> None:
    users = ["alice", "bob", "carol"]
    publish(make_record(user_id=users[i % 3]) for i in range(300))
    sink = CountingSink(log_dir)
    async with running_worker(shipper_settings, sink):
        await async_wait_until(lambda: _drained(redis_client), what="stream drained")
    # One read of 300 entries (< SHIPPER_BATCH_MAX_RECORDS) is one batch: 3 files, 3 appends.
    assert sorted(sink.appends) == sorted(
        file_stem(user, "gpt-4o-mini", datetime.now(UTC)) for user in users
    )
    assert len(shipped_ids(log_dir)) == 300


class HeldAppends(LocalSink):
    """Appends for real once the test releases them: the worker reads ahead meanwhile."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.appends = 0
        self.release = asyncio.Event()

    async def append(self, stem: str, payload: bytes, prepare: Prepare) -> Placement | None:
        self.appends += 1
        await self.release.wait()
        return await super().append(stem, payload, prepare)


async def test_a_stop_ships_the_batches_already_read_ahead(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis, log_dir: Path
) -> None:
    publish(make_record() for _ in range(100))
    settings = shipper_settings.model_copy(update={"shipper_batch_max_records": 10})
    sink = HeldAppends(log_dir)
    async with running_worker(settings, sink) as worker:
        await async_wait_until(lambda: sink.appends > 0, what="the first append")
        await async_wait_until(lambda: pending_count(redis_client) == 30,
                             what="both reads ahead in while the append waits")
        worker.stop()
        sink.release.set()
    # The batch in hand and the two read ahead are shipped and acknowledged: nothing
    # is left pending for another shipper to claim, nothing more was read.
    assert pending_count(redis_client) == 0
    assert len(shipped_ids(log_dir)) == 30
    assert stream_length(redis_client) == 70


class CrashAfterWrite(LocalSink):
    """Writes for real, then fails as if the process died before acknowledging."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.crashes = 0

    async def append(self, stem: str, payload: bytes, prepare: Prepare) -> Placement | None:
        await super().append(stem, payload, prepare)
        self.crashes += 1
        raise RuntimeError("crash between append and ack")


async def test_crash_between_append_and_ack_leaves_no_duplicate(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis, log_dir: Path
) -> None:
    records = [make_record(user_id=f"u{i % 4}") for i in range(200)]
    publish(records)
    crashing = CrashAfterWrite(log_dir)
    settings = shipper_settings.model_copy(update={"shipper_consumer_name": "fixed-name"})
    worker_run = running_worker(settings, crashing)
    try:
        async with worker_run:
            await async_wait_until(lambda: crashing.crashes > 0, what="the crash")
    except RuntimeError:
        pass
    assert pending_count(redis_client) > 0  # written but never acknowledged
    # Restart with the same consumer name: its own pending entries come first.
    async with running_worker(settings):
        await async_wait_until(lambda: _drained(redis_client), what="recovery")
    ids = shipped_ids(log_dir)
    assert sorted(ids) == sorted(record.id for record in records)


async def test_an_acknowledgement_lost_while_the_next_batch_is_written_is_made_good(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    log_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = shipper_settings.model_copy(update={"shipper_batch_max_records": 20})
    records = [make_record(user_id=f"u{i % 3}") for i in range(200)]
    publish(records)
    calls: list[int] = []
    async with running_worker(settings) as worker:
        finish = worker.source.finish

        async def lose_the_second(entry_ids: Sequence[str], record_ids: Sequence[str]) -> None:
            calls.append(len(entry_ids))
            if len(calls) == 2:
                raise SourceUnavailable("connection lost")
            await finish(entry_ids, record_ids)

        monkeypatch.setattr(worker.source, "finish", lose_the_second)
        await async_wait_until(lambda: _drained(redis_client), what="stream drained")
    assert calls[1] > 0 and worker.totals.redis_errors_total == 1
    # Its entries were shipped again from our pending ones: found landed, not rewritten.
    assert worker.totals.records_already_landed_total >= calls[1]
    assert sorted(shipped_ids(log_dir)) == sorted(record.id for record in records)


async def test_a_live_shipper_claims_what_a_dead_one_left_without_duplicates(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis, log_dir: Path
) -> None:
    records = [make_record(user_id=f"u{i % 2}") for i in range(100)]
    publish(records)
    crashing = CrashAfterWrite(log_dir)
    dead = shipper_settings.model_copy(update={"shipper_consumer_name": "dead-one"})
    try:
        async with running_worker(dead, crashing):
            await async_wait_until(lambda: crashing.crashes > 0, what="the crash")
    except RuntimeError:
        pass
    async with running_worker(shipper_settings) as worker:
        await async_wait_until(lambda: _drained(redis_client), what="claim and recovery")
    assert worker.totals.entries_claimed_total > 0
    assert sorted(shipped_ids(log_dir)) == sorted(record.id for record in records)


async def test_storage_unavailable_then_back_loses_and_acks_nothing_early(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis, log_dir: Path
) -> None:
    make_unusable(log_dir)
    records = [make_record(user_id=f"u{i % 3}") for i in range(50)]
    publish(records)
    async with running_worker(shipper_settings) as worker:
        await async_wait_until(lambda: worker.totals.storage_retries_total >= 3, what="retries")
        assert stream_length(redis_client) == 50  # nothing acknowledged while down
        make_usable(log_dir)
        await async_wait_until(lambda: _drained(redis_client), what="shipping after recovery")
    assert sorted(shipped_ids(log_dir)) == sorted(record.id for record in records)


async def test_poison_entries_go_to_dead_letter_and_the_rest_ships(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis, log_dir: Path
) -> None:
    good = [make_record() for _ in range(5)]
    publish([good[0], b"not json", good[1], b'{"valid": "json, not a record"}', good[2]])
    publish([{"other": "field"}, good[3], good[4]])
    async with running_worker(shipper_settings):
        await async_wait_until(lambda: _drained(redis_client), what="stream drained")
    assert sorted(shipped_ids(log_dir)) == sorted(record.id for record in good)
    dead = redis_client.xrange(dead_letter_stream(STREAM))
    assert len(dead) == 3
    reasons = {fields[b"reason"].decode() for _, fields in dead}
    assert any("invalid record" in reason for reason in reasons)
    assert any("no 'record' field" in reason for reason in reasons)
    originals = [fields.get(b"record") for _, fields in dead]
    assert b"not json" in originals and b'{"valid": "json, not a record"}' in originals
    assert all(fields[b"entry_id"] and fields[b"consumer"] for _, fields in dead)


async def test_a_record_too_large_for_one_append_is_dead_lettered(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis, log_dir: Path
) -> None:
    sink = LocalSink(log_dir)
    sink.max_append_bytes = 4096
    small, big = make_record(), make_record(body_bytes=10_000)
    publish([small, big])
    async with running_worker(shipper_settings, sink):
        await async_wait_until(lambda: _drained(redis_client), what="stream drained")
    assert shipped_ids(log_dir) == [small.id]
    [(_, fields)] = redis_client.xrange(dead_letter_stream(STREAM))
    assert b"too large" in fields[b"reason"]
    assert json.loads(fields[b"record"])["id"] == big.id


async def test_redis_outage_is_waited_out(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    log_dir: Path, redis_server: RedisServer,
) -> None:
    async with running_worker(shipper_settings) as worker:
        first = make_record()
        publish([first])
        await async_wait_until(lambda: shipped_ids(log_dir) == [first.id], what="first record")
        redis_server.stop()
        await async_wait_until(lambda: worker.totals.redis_errors_total >= 2, what="redis errors")
        redis_server.start()
        second = make_record()
        await async_wait_until(lambda: _try_publish(publish, second), what="redis back")
        await async_wait_until(lambda: len(shipped_ids(log_dir)) == 2, what="second record")
    assert sorted(shipped_ids(log_dir)) == sorted([first.id, second.id])


def _try_publish(publish: Publish, record: Record) -> bool:
    try:
        publish([record])
    except redis.ConnectionError:
        return False
    return True


def _break_folder(folder: Path, aside: Path) -> None:
    """Move a folder in use aside and put a file in its place: every append fails."""
    folder.rename(aside)
    make_unusable(folder)


def _mend_folder(folder: Path, aside: Path) -> None:
    folder.unlink()
    aside.rename(folder)


@pytest.mark.slow
async def test_storage_failing_mid_run_reads_at_most_two_batches_ahead(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    log_dir: Path, tmp_path: Path,
) -> None:
    settings = shipper_settings.model_copy(update={"shipper_batch_max_records": 10})
    records = [make_record(user_id=f"u{i % 3}") for i in range(100)]
    async with running_worker(settings) as worker:
        await async_wait_until(log_dir.is_dir, what="sink started")
        _break_folder(log_dir, tmp_path / "aside")
        publish(records)
        await async_wait_until(lambda: worker.totals.storage_retries_total >= 6, what="retries")
        # The batch in hand and the two read ahead: nothing more is read, nothing acked.
        assert stream_length(redis_client) == 100
        assert 0 < pending_count(redis_client) <= 30
        _mend_folder(log_dir, tmp_path / "aside")
        await async_wait_until(lambda: _drained(redis_client), what="shipping after recovery")
    assert sorted(shipped_ids(log_dir)) == sorted(record.id for record in records)
