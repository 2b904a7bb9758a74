"""The local sink: durable appends under a lock, torn-line repair, the landed check, no escape."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import IO

import pytest

from shipper.sink import Placement, StorageError
from shipper.sink_local import LocalSink
from tests.shipper.conftest import names_in, read_file, write_files


async def _always(placement: Placement) -> bool:
    return True


async def test_append_returns_where_the_bytes_landed(tmp_path: Path) -> None:
    sink = LocalSink(tmp_path / "logs")
    await sink.start()
    first = await sink.append("u_m_20240101", b'{"a":1}\n', _always)
    second = await sink.append("u_m_20240101", b'{"b":2}\n{"c":3}\n', _always)
    assert first == Placement.of("u_m_20240101.jsonl", 0, b'{"a":1}\n')
    assert second == Placement.of("u_m_20240101.jsonl", 8, b'{"b":2}\n{"c":3}\n')
    assert await sink.landed(first) and await sink.landed(second)
    assert not await sink.landed(Placement.of("u_m_20240101.jsonl", 24, b'{"d":4}\n'))
    assert not await sink.landed(Placement.of("u_m_20240101.jsonl", 0, b'{"x":1}\n'))
    assert not await sink.landed(Placement.of("other_m_20240101.jsonl", 0, b'{"a":1}\n'))


async def test_prepare_saying_no_writes_nothing(tmp_path: Path) -> None:
    sink = LocalSink(tmp_path)
    seen: list[Placement] = []

    async def refuse(placement: Placement) -> bool:
        seen.append(placement)
        return False

    assert await sink.append("s_20240101", b"{}\n", refuse) is None
    assert seen == [Placement.of("s_20240101.jsonl", 0, b"{}\n")]
    assert (tmp_path / "s_20240101.jsonl").read_bytes() == b""


async def test_a_torn_last_line_is_cut_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "s_20240101.jsonl"
    path.write_bytes(b'{"ok":1}\n{"torn":')
    sink = LocalSink(tmp_path)
    placement = await sink.append("s_20240101", b'{"ok":2}\n', _always)
    assert placement is not None and placement.offset == 9
    assert [json.loads(line) for line in path.read_bytes().splitlines()] == [{"ok": 1}, {"ok": 2}]


async def test_an_unfinished_write_is_removed_whole(tmp_path: Path) -> None:
    # A crash mid-write left two complete lines of a three-line payload, and its marker.
    path = tmp_path / "s_20240101.jsonl"
    marker = tmp_path / ".s_20240101.jsonl.writing"
    write_files({path: b'{"ok":1}\n{"p":1}\n{"p":2}\n{"p', marker: b"9\n"})
    sink = LocalSink(tmp_path)
    placement = await sink.append("s_20240101", b'{"ok":2}\n', _always)
    assert placement is not None and placement.offset == 9
    assert read_file(path) == b'{"ok":1}\n{"ok":2}\n'
    assert names_in(tmp_path) == [marker, path]
    assert read_file(marker).strip() == b""  # idle after a finished write


async def test_a_marker_cut_short_removes_nothing_that_was_written(tmp_path: Path) -> None:
    # Killed while writing the marker itself: the payload write never started, and what
    # the file holds was written (and acknowledged) before.
    path = tmp_path / "s_20240101.jsonl"
    marker = tmp_path / ".s_20240101.jsonl.writing"
    for cut_marker in (b"", b"1"):
        write_files({path: b'{"ok":1}\n{"ok":2}\n', marker: cut_marker})
        await LocalSink(tmp_path).append("s_20240101", b'{"ok":3}\n', _always)
        assert read_file(path) == b'{"ok":1}\n{"ok":2}\n{"ok":3}\n'


async def test_a_file_that_is_one_torn_line_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / "s_20240101.jsonl"
    path.write_bytes(b"x" * 200_000)  # longer than one backwards read step
    sink = LocalSink(tmp_path)
    await sink.append("s_20240101", b"{}\n", _always)
    assert path.read_bytes() == b"{}\n"


async def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    sink = LocalSink(tmp_path)
    payloads = [(f'{{"n":{n},"pad":"{"x" * 50_000}"}}\n').encode() for n in range(40)]
    await asyncio.gather(*(sink.append("s_20240101", p, _always) for p in payloads))
    lines = (tmp_path / "s_20240101.jsonl").read_bytes().splitlines()
    assert sorted(json.loads(line)["n"] for line in lines) == list(range(40))


async def test_names_cannot_leave_the_folder(tmp_path: Path) -> None:
    sink = LocalSink(tmp_path / "logs")
    await sink.start()
    for stem in ("../escape", "a/b", "/etc/passwd"):
        with pytest.raises(StorageError):
            await sink.append(stem, b"{}\n", _always)
    assert names_in(tmp_path) == [tmp_path / "logs"]
    assert names_in(tmp_path / "logs") == []


async def test_an_unusable_folder_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "logs"
    blocker.write_text("a file, not a folder")
    sink = LocalSink(blocker)
    with pytest.raises(StorageError):
        await sink.start()
    with pytest.raises(StorageError):
        await sink.append("s_20240101", b"{}\n", _always)


async def test_the_marker_is_set_before_the_payload_and_cleared_before_returning(
    tmp_path: Path,
) -> None:
    sink = LocalSink(tmp_path)
    marker = tmp_path / ".s_20240101.jsonl.writing"
    seen: list[bytes] = []
    await sink.append("s_20240101", b'{"ok":1}\n', _always)
    original = sink._write_durably_and_close

    def spying(handle: IO[bytes], placement: Placement, payload: bytes) -> None:
        class Spy:
            def __getattr__(self, name: str) -> object:
                return getattr(handle, name)

            def write(self, data: bytes) -> int:
                seen.append(read_file(marker))  # what a power cut here would leave
                return handle.write(data)

        original(Spy(), placement, payload)  # type: ignore[arg-type]

    sink._write_durably_and_close = spying  # type: ignore[method-assign]
    await sink.append("s_20240101", b'{"ok":2}\n', _always)
    assert seen == [b"%020d\n" % 9]
    assert read_file(marker) == b" " * 20 + b"\n"
