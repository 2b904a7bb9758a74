"""``python -m shipper replay --spool DIR``: a dead proxy's spool shipped straight to storage,
once per record id, with real redis-server, local disk and Azurite."""

from __future__ import annotations

import asyncio
import fcntl
import subprocess
import sys
from pathlib import Path

import redis

from shared.record import Record
from shared.spool_format import segment_name
from shipper.replay import Replay, ReplaySummary
from shipper.settings import ShipperSettings
from shipper.source import build_source
from shipper.storage import make_sink
from tests.factories import make_record
from tests.shipper.conftest import (
    Publish,
    pending_count,
    running_worker,
    shipped_ids,
    stream_length,
)
from tests.shipper.test_azure_shipping import shipped_ids as blob_ids
from tests.support.waiting import async_wait_until


def write_segments(spool: Path, segments: list[list[Record | bytes]]) -> list[Path]:
    """Segments as a proxy leaves them: one record per line; bytes are written as they are."""
    spool.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, records in enumerate(segments):
        path = spool / segment_name(1_000 + number, "proxy-a")
        path.write_bytes(b"".join(
            item if isinstance(item, bytes) else item.to_json() + b"\n" for item in records
        ))
        paths.append(path)
    return paths


async def replay(settings: ShipperSettings, spool: Path, delete: bool = False) -> ReplaySummary:
    sink = make_sink(settings)
    source = build_source(settings, "replay")
    try:
        await sink.start()
        return await Replay(settings, source, sink).run(spool, delete, progress=False)
    finally:
        await sink.close()
        await source.close()


def _drained(client: redis.Redis) -> bool:
    return stream_length(client) == 0 and pending_count(client) == 0


async def test_replay_ships_once_also_when_a_record_reached_redis_and_when_run_twice(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    log_dir: Path, tmp_path: Path,
) -> None:
    records = [make_record(user_id=f"u{n % 3}") for n in range(40)]
    spool = tmp_path / "spool"
    write_segments(spool, [records[:20], [*records[20:], b"not json\n", b'{"id": "torn']])
    async with running_worker(shipper_settings):
        publish(records[:5])  # these reached Redis before the host died, and landed
        await async_wait_until(lambda: _drained(redis_client), what="the first five shipped")
    first = await replay(shipper_settings, spool)
    assert (first.records_read, first.records_shipped, first.records_already_present,
            first.records_corrupt) == (41, 35, 5, 1)
    publish(records[30:35])  # a spooled record re-published later by a restarted proxy
    async with running_worker(shipper_settings) as worker:
        await async_wait_until(lambda: _drained(redis_client), what="the re-published")
    assert worker.totals.records_already_landed_total == 5
    again = await replay(shipper_settings, spool)
    assert (again.records_shipped, again.records_already_present) == (0, 40)
    ids = shipped_ids(log_dir)
    assert sorted(ids) == sorted(r.id for r in records)


async def test_replay_while_a_shipper_ships_the_same_records_lands_each_once(
    shipper_settings: ShipperSettings, publish: Publish, redis_client: redis.Redis,
    log_dir: Path, tmp_path: Path,
) -> None:
    records = [make_record(user_id=f"u{n % 2}") for n in range(600)]
    spool = tmp_path / "spool"
    write_segments(spool, [records[n:n + 100] for n in range(0, 600, 100)])
    settings = shipper_settings.model_copy(update={"shipper_batch_max_records": 50})
    publish(records)
    async with running_worker(settings):
        summary = await replay(shipper_settings, spool)
        await async_wait_until(lambda: _drained(redis_client), what="the stream drained")
    assert summary.records_shipped + summary.records_already_present == 600
    ids = shipped_ids(log_dir)
    assert len(ids) == 600 and set(ids) == {r.id for r in records}


async def test_a_segment_a_live_proxy_holds_is_skipped_and_delete_keeps_what_is_not_done(
    shipper_settings: ShipperSettings, log_dir: Path, tmp_path: Path,
) -> None:
    records = [make_record() for _ in range(9)]
    spool = tmp_path / "spool"
    held, clean, corrupt = write_segments(
        spool, [records[:3], records[3:6], [*records[6:], b"{broken\n"]]
    )
    with held.open("rb") as draining:
        fcntl.flock(draining.fileno(), fcntl.LOCK_EX)  # a proxy draining it right now
        summary = await replay(shipper_settings, spool, delete=True)
    assert (summary.segments_total, summary.segments_busy, summary.segments_deleted) == (3, 1, 1)
    assert held.exists() and not clean.exists() and corrupt.exists()
    assert sorted(shipped_ids(log_dir)) == sorted(r.id for r in records[3:])


async def test_replay_to_azure(
    azure_settings: ShipperSettings, azurite_connection_string: str, container: str,
    tmp_path: Path,
) -> None:
    records = [make_record(user_id=f"u{n % 2}") for n in range(30)]
    spool = tmp_path / "spool"
    write_segments(spool, [records[:15], records[10:]])  # five records in both segments
    summary = await replay(azure_settings, spool)
    assert (summary.records_shipped, summary.records_already_present) == (30, 5)
    ids = await asyncio.to_thread(blob_ids, azurite_connection_string, container)
    assert sorted(ids) == sorted(r.id for r in records)


def test_the_command_prints_a_summary_and_a_progress_bar(
    shipper_env: dict[str, str], log_dir: Path, tmp_path: Path,
) -> None:
    records = [make_record() for _ in range(25)]
    spool = tmp_path / "spool"
    write_segments(spool, [records])
    command = [sys.executable, "-m", "shipper", "replay", "--spool", str(spool), "--delete"]
    (tmp_path / "run").mkdir()
    done = subprocess.run(command, env=shipper_env, cwd=tmp_path / "run", capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "records shipped" in done.stdout and "25" in done.stdout
    assert "replay" in done.stderr and "100%" in done.stderr  # tqdm's bar
    assert sorted(shipped_ids(log_dir)) == sorted(r.id for r in records)
    assert list(spool.iterdir()) == []
    missing = subprocess.run([*command[:-2], str(tmp_path / "nowhere")], env=shipper_env,
                             cwd=tmp_path / "run", capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no spool folder" in missing.stderr


