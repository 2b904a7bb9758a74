"""The on-disk format of the proxy's spool, shared by its writer (the proxy) and
its readers (the proxy's drainer and ``shipper replay``).

A spool folder holds segment files named ``{created_ns:020d}-{writer}.spool`` so that
sorting by name is sorting by age. A segment is a sequence of lines, each one record
as UTF-8 JSON (exactly the value of a stream entry's ``record`` field) followed by
``\\n``; JSON never contains a raw newline, so the newline is the frame. A last line
without its newline is a torn write and is not a record.

Whoever writes or drains a segment holds an exclusive ``flock`` on it for as long as
it does so; a segment whose lock can be taken belongs to nobody (its writer finished
or died) and may be drained. The protocol around this format: docs/outages.md.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

SEGMENT_SUFFIX = ".spool"


def segment_name(created_ns: int, writer: str) -> str:
    """The file name of a new segment; ``writer`` must be unique among live writers."""
    return f"{created_ns:020d}-{writer}{SEGMENT_SUFFIX}"


def segment_paths(folder: Path) -> list[Path]:
    """Every segment in ``folder``, oldest first (none when the folder does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(SEGMENT_SUFFIX))


def read_records(path: Path) -> Iterator[bytes]:
    """The complete records of a segment, in order; a torn last line is skipped."""
    with path.open("rb") as segment:
        for line in segment:
            if line.endswith(b"\n"):
                stripped = line.rstrip(b"\n")
                if stripped:
                    yield stripped


def try_lock(path: Path) -> int | None:
    """Open ``path`` and take its exclusive lock without waiting; the fd, or None if held.

    The caller releases the lock by closing the fd (``os.close``).
    """
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    try:
        still_there = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        still_there = False
    if not still_there:  # drained and deleted by the previous holder while we waited
        os.close(fd)
        return None
    return fd
