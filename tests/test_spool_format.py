"""The spool's segment format: framing, torn tails, age order and locking."""

from __future__ import annotations

import os
from pathlib import Path

from shared.spool_format import read_records, segment_name, segment_paths, try_lock


def test_records_are_read_in_order_and_a_torn_tail_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / segment_name(1, "w")
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}\n{"id": "c"')
    assert list(read_records(path)) == [b'{"id": "a"}', b'{"id": "b"}']


def test_segments_sort_oldest_first(tmp_path: Path) -> None:
    for created_ns, writer in [(20, "b"), (3, "z"), (100, "a")]:
        (tmp_path / segment_name(created_ns, writer)).write_bytes(b"")
    (tmp_path / "unrelated.txt").write_bytes(b"")
    assert [p.name for p in segment_paths(tmp_path)] == [
        segment_name(3, "z"),
        segment_name(20, "b"),
        segment_name(100, "a"),
    ]
    assert segment_paths(tmp_path / "missing") == []


def test_a_held_or_deleted_segment_cannot_be_locked(tmp_path: Path) -> None:
    path = tmp_path / segment_name(1, "w")
    path.write_bytes(b"")
    held = try_lock(path)
    assert held is not None
    assert try_lock(path) is None
    os.close(held)
    again = try_lock(path)
    assert again is not None
    path.unlink()
    os.close(again)
    assert try_lock(path) is None
