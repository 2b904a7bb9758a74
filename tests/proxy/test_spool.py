"""The spool alone: durable segments, group commit, the cap, a broken disk, locks."""

from __future__ import annotations

import json
import os
from pathlib import Path

from proxy.metrics import Metrics
from proxy.publish.spool import Spool
from shared.spool_format import read_records, segment_paths, try_lock
from tests.factories import make_pending

MIB = 1024 * 1024


def _spool(folder: Path, metrics: Metrics, **overrides: object) -> Spool:
    options: dict[str, object] = {"max_bytes": 64 * MIB, "full_policy": "drop"}
    options.update(overrides)
    return Spool(folder, "writer-a", metrics, **options)  # type: ignore[arg-type]


def _spooled_ids(folder: Path) -> list[str]:
    return [
        json.loads(line)["id"] for path in segment_paths(folder) for line in read_records(path)
    ]


async def test_appended_records_are_durable_lines_in_order(tmp_path: Path) -> None:
    metrics = Metrics()
    spool = _spool(tmp_path, metrics)
    spool.start()
    pending = make_pending(250)

    for start in range(0, 250, 7):  # many small appends become a few group commits
        spool.append(pending[start : start + 7])
    await spool.flush()

    assert _spooled_ids(tmp_path) == [p.record_id for p in pending]
    assert spool.records == 250 and spool.holds_records
    assert spool.size_bytes == sum(len(p.payload) + 1 for p in pending)
    assert metrics.totals()["proxy_records_spooled_total"] == 250
    assert metrics.totals()["proxy_records_dropped_total"] == 0
    await spool.close()


async def test_segments_rotate_and_stay_locked_until_closed(tmp_path: Path) -> None:
    spool = _spool(tmp_path, Metrics(), segment_max_bytes=4096)
    spool.start()
    for pending in make_pending(30, body_bytes=500):
        spool.append([pending])
        await spool.flush()
    sealed = await spool.seal()

    paths = segment_paths(tmp_path)
    assert len(paths) > 3 and {s.path for s in sealed} == set(paths)
    assert all(try_lock(path) is None for path in paths)  # a sibling cannot take them
    await spool.close()
    fd = try_lock(paths[0])  # ... until this proxy let go of them
    assert fd is not None
    os.close(fd)


async def test_records_beyond_the_cap_are_counted_as_dropped(tmp_path: Path) -> None:
    metrics = Metrics()
    pending = make_pending(10)
    cap = sum(len(p.payload) + 1 for p in pending[:6])
    spool = _spool(tmp_path, metrics, max_bytes=cap)
    spool.start()

    spool.append(pending)
    await spool.flush()

    assert _spooled_ids(tmp_path) == [p.record_id for p in pending[:6]]
    assert metrics.totals()["proxy_records_dropped_total"] == 4
    assert spool.full and not spool.can_accept
    await spool.close()


async def test_an_unwritable_folder_loses_records_loudly_then_recovers(tmp_path: Path) -> None:
    metrics = Metrics()
    folder = tmp_path / "spool"
    folder.write_text("not a folder")  # root ignores permissions; a file in the way does not
    spool = _spool(folder, metrics)
    spool.start()

    spool.append(make_pending(3))
    await spool.flush()
    assert metrics.totals()["proxy_records_dropped_total"] == 3
    assert not spool.writable and not spool.holds_records

    folder.unlink()
    later = make_pending(2)
    spool.append(later)
    await spool.flush()
    assert spool.writable
    assert _spooled_ids(folder) == [p.record_id for p in later]
    await spool.close()
