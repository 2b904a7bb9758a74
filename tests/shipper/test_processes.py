"""Real ``python -m shipper`` processes: in parallel, killed with SIGKILL, stopped with SIGTERM."""

from __future__ import annotations

import fcntl
import json
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from shared.streams import RECORD_FIELD
from tests.factories import log_file_name, make_record
from tests.shipper.conftest import (
    STREAM,
    Publish,
    events,
    make_unusable,
    pending_count,
    shipped_ids,
    start_shipper,
    stream_length,
)
from tests.support.waiting import wait_until


def _publish_backlog(publish: Publish, count: int, body_bytes: int) -> set[str]:
    ids: set[str] = set()
    for start in range(0, count, 2000):
        records = [make_record(user_id=f"user-{i % 7}", body_bytes=body_bytes)
                   for i in range(start, min(count, start + 2000))]
        publish(records)
        ids.update(record.id for record in records)
    return ids


def _drained(client: redis.Redis) -> bool:
    return stream_length(client) == 0 and pending_count(client) == 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.slow
def test_two_shippers_in_parallel_ship_every_record_exactly_once(
    shipper_env: dict[str, str], publish: Publish, redis_client: redis.Redis,
    log_dir: Path, tmp_path: Path,
) -> None:
    expected = _publish_backlog(publish, 12_000, body_bytes=300)
    env = {**shipper_env, "SHIPPER_BATCH_MAX_RECORDS": "200"}
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    shippers = [start_shipper(env, tmp_path / "run", log) for log in logs]
    try:
        wait_until(lambda: _drained(redis_client), timeout_s=60, what="both shippers drain")
        more = _publish_backlog(publish, 2_000, body_bytes=300)  # also while both are live
        wait_until(lambda: _drained(redis_client), timeout_s=30, what="the second wave")
    finally:
        for process in shippers:
            process.send_signal(signal.SIGTERM)
        for process in shippers:
            assert process.wait(timeout=20) == 0
    ids = shipped_ids(log_dir)  # also fails on any broken line
    assert len(ids) == len(expected | more)
    assert set(ids) == expected | more
    for log in logs:  # both took part
        assert events(log, "shipper_stopped")[0]["records_shipped_total"] > 0


@pytest.mark.slow
def test_kill_9_mid_batch_then_recovery_ships_every_record_exactly_once(
    shipper_env: dict[str, str], publish: Publish, redis_client: redis.Redis,
    log_dir: Path, tmp_path: Path,
) -> None:
    expected = _publish_backlog(publish, 20_000, body_bytes=1000)
    # Batches of 500: with the default 10,000 the whole backlog shipped in three batches
    # within half a second, and the check below could miss the moment a batch was in hand.
    small_batches = {**shipper_env, "SHIPPER_BATCH_MAX_RECORDS": "500"}
    victim = start_shipper(small_batches, tmp_path / "run", tmp_path / "victim.log")

    def written_and_in_hand() -> bool:
        written = any(path.stat().st_size for path in log_dir.glob("*.jsonl"))
        return written and pending_count(redis_client) > 0

    try:
        wait_until(written_and_in_hand, timeout_s=30, what="lines on disk and a batch in hand")
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
    finally:
        _stop(victim)
    left_pending = pending_count(redis_client)  # > 0 unless it died right between batches
    assert stream_length(redis_client) > 0
    rescuer_log = tmp_path / "rescuer.log"
    # An idle time well above a batch's round trip on a loaded machine: with the fixture's
    # 1 s, the rescuer could claim back its own entries read ahead, and count them here.
    patient = {**shipper_env, "SHIPPER_CLAIM_IDLE_MS": "5000"}
    rescuer = start_shipper(patient, tmp_path / "run", rescuer_log)
    try:
        wait_until(lambda: _drained(redis_client), timeout_s=60, what="recovery")
    finally:
        rescuer.send_signal(signal.SIGTERM)
        assert rescuer.wait(timeout=20) == 0
    ids = shipped_ids(log_dir)
    assert len(ids) == len(expected)
    assert set(ids) == expected
    claimed = sum(event["entries"] for event in events(rescuer_log, "entries_claimed"))
    assert claimed == left_pending


def _signal_delivered(pid: int, signum: int) -> bool:
    """Whether the kernel has handed ``signum`` to the process (it is no longer pending)."""
    status = Path(f"/proc/{pid}/status").read_text()
    masks = [int(line.split()[1], 16) for line in status.splitlines()
             if line.startswith(("SigPnd:", "ShdPnd:"))]
    return not any(mask & (1 << (signum - 1)) for mask in masks)


@pytest.mark.slow
def test_sigterm_mid_load_exits_in_time_and_acks_only_what_is_written(
    shipper_env: dict[str, str], publish: Publish, redis_client: redis.Redis,
    log_dir: Path, tmp_path: Path,
) -> None:
    expected = _publish_backlog(publish, 20_000, body_bytes=1000)
    env = {**shipper_env, "SHIPPER_SHUTDOWN_TIMEOUT_S": "5", "SHIPPER_BATCH_MAX_RECORDS": "500"}
    log = tmp_path / "shipper.log"
    # Every batch has a line for user-6; while the test holds that file's lock, the first
    # batch cannot finish, so the shipper is surely mid-load when SIGTERM lands.
    log_dir.mkdir(parents=True, exist_ok=True)
    held = (log_dir / log_file_name("user-6", "gpt-4o-mini", datetime.now(UTC))).open("ab")
    fcntl.flock(held.fileno(), fcntl.LOCK_EX)
    shipper = start_shipper(env, tmp_path / "run", log)
    try:
        wait_until(lambda: any(p.stat().st_size for p in log_dir.iterdir()),
                 timeout_s=30, what="the other files' first lines on disk")
        started_s = time.monotonic()
        shipper.send_signal(signal.SIGTERM)
        wait_until(lambda: _signal_delivered(shipper.pid, signal.SIGTERM), what="the signal")
        held.close()  # the batch in hand may finish now, within the time limit
        assert shipper.wait(timeout=15) == 0
        assert time.monotonic() - started_s < 5 + 2
    finally:
        held.close()
        _stop(shipper)
    written = shipped_ids(log_dir)
    remaining = [json.loads(fields[RECORD_FIELD.encode()])["id"]
                 for _, fields in redis_client.xrange(STREAM)]
    assert written and remaining, "stopped mid-load"
    assert len(written) <= 3 * 500  # the batch in hand and the two read ahead, no more
    assert len(written) == len(set(written))
    assert set(written).isdisjoint(remaining)  # acknowledged == written
    assert set(written) | set(remaining) == expected  # nothing lost
    [stopped] = events(log, "shipper_stopped")
    assert stopped["records_shipped_total"] == len(written)


@pytest.mark.slow
def test_sigterm_while_storage_is_down_exits_within_the_limit_acking_nothing(
    shipper_env: dict[str, str], publish: Publish, redis_client: redis.Redis,
    log_dir: Path, tmp_path: Path,
) -> None:
    env = {**shipper_env, "SHIPPER_SHUTDOWN_TIMEOUT_S": "2"}
    log = tmp_path / "shipper.log"
    shipper = start_shipper(env, tmp_path / "run", log)
    try:
        wait_until(lambda: log_dir.is_dir(), what="the shipper to start")
        log_dir.rmdir()
        make_unusable(log_dir)  # storage fails under a batch in hand
        _publish_backlog(publish, 100, body_bytes=100)
        wait_until(lambda: len(events(log, "storage_retry")) >= 2, what="storage retries")
        started_s = time.monotonic()
        shipper.send_signal(signal.SIGTERM)
        assert shipper.wait(timeout=15) == 0
        assert time.monotonic() - started_s < 2 + 2
    finally:
        _stop(shipper)
    assert stream_length(redis_client) == 100  # nothing acknowledged
    assert pending_count(redis_client) >= 1  # the batch in hand stays pending
    assert events(log, "shipper_stopped")[0]["records_shipped_total"] == 0
    assert events(log, "shutdown_timeout")


@pytest.mark.slow
def test_records_published_twice_with_kill_9_again_and_again_land_once(
    shipper_env: dict[str, str], publish: Publish, redis_client: redis.Redis,
    log_dir: Path, tmp_path: Path,
) -> None:
    records = [make_record(user_id=f"user-{i % 5}", body_bytes=1000) for i in range(6000)]
    for start in range(0, 6000, 1000):  # each record twice, the copies far apart
        publish(records[start:start + 1000])
    for start in range(0, 6000, 1000):
        publish(records[start:start + 1000])
    env = {**shipper_env, "SHIPPER_BATCH_MAX_RECORDS": "300"}
    for round_number in range(3):  # killed at whatever step it is in
        victim = start_shipper(env, tmp_path / "run", tmp_path / f"victim-{round_number}.log")
        try:
            before = stream_length(redis_client)
            # ``before=before``: the predicate reads this round's length, not a later one.
            wait_until(lambda before=before: stream_length(redis_client) < before and
                       pending_count(redis_client) > 0, timeout_s=30, what="a batch in hand")
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
        finally:
            _stop(victim)
    rescuer = start_shipper(env, tmp_path / "run", tmp_path / "rescuer.log")
    try:
        wait_until(lambda: _drained(redis_client), timeout_s=60, what="recovery")
    finally:
        rescuer.send_signal(signal.SIGTERM)
        assert rescuer.wait(timeout=20) == 0
    ids = shipped_ids(log_dir)
    assert len(ids) == len(set(ids)) == 6000
