"""The writing side of the spool's segment files: create, append durably, delete.

The format (names, framing, locking) is ``shared.spool_format``'s. Every function here
blocks on the disk, so the spool calls them in a worker thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path

from shared.durable import fsync_folder as _fsync_folder
from shared.spool_format import segment_name


@dataclass(slots=True)
class OwnSegment:
    """A segment this process created; ``fd`` holds its lock until the segment is deleted."""

    path: Path
    fd: int
    records: int = 0
    size_bytes: int = 0


def create_segment(folder: Path, writer: str) -> OwnSegment:
    """A new, empty, locked segment whose name is durable in ``folder``.

    It is created under a temporary name and renamed once locked, so no drainer can
    lock (and delete) it in between.
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = segment_name(time.time_ns(), writer)
    temporary = folder / f".{name}.new"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = folder / name
        os.rename(temporary, path)
        _fsync_folder(folder)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return OwnSegment(path, fd)


def append(segment: OwnSegment, data: bytes) -> None:
    """Write ``data`` (whole lines) at the end of the segment and make it durable.

    On failure the segment is cut back to its previous size, so the records of ``data``
    are either all durable or all absent, and nothing can be glued to a torn line.
    """
    try:
        view = memoryview(data)
        while view:
            written = os.write(segment.fd, view)
            view = view[written:]
        os.fdatasync(segment.fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(segment.fd, segment.size_bytes)
        raise


def delete(segment: OwnSegment) -> None:
    """Remove a drained segment, then give up its lock."""
    try:
        os.unlink(segment.path)
    finally:
        os.close(segment.fd)


def release(segment: OwnSegment) -> None:
    """Give up the lock and keep the file (another drainer, or the next start, takes it)."""
    os.close(segment.fd)


def probe(folder: Path, writer: str) -> None:
    """Create the folder if needed and write, fsync and remove a file in it; raises ``OSError``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".probe-{writer}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"probe\n")
        os.fsync(fd)
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
