"""JSONL files in a local folder (``STORAGE_TYPE=local``), through fsspec's local filesystem.

Each append holds an exclusive ``flock`` on the file from choosing the offset until
the bytes are fsynced, so ``prepare`` runs while no other process can move the end
(docs/delivery.md, also for the write marker that makes torn writes safe).
The flock is held across ``prepare``'s Redis calls, which are bounded by the client's
timeout. Within one process, appends to one file are serialised by an asyncio lock
that is forgotten as soon as nobody holds or awaits it.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from fsspec.implementations.local import LocalFileSystem

from shared.durable import fsync_folder
from shared.logs import log_event
from shared.naming import file_name
from shipper.locks import KeyedLocks
from shipper.sink import PermanentStorageError, Placement, Prepare, StorageError

logger = logging.getLogger(__name__)

_TAIL_STEP_BYTES = 64 * 1024
_LOCK_POLL_MAX_S = 0.02
_IDLE = b" " * 20 + b"\n"
"""A marker's content between writes (as wide as a 20-digit offset and its newline)."""
# The file system refuses the name itself: no retry can help. Anything else (permission
# denied, disk full, the folder missing or replaced) may be mended by an operator.
_PERMANENT_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.EINVAL, errno.EILSEQ, errno.EISDIR})


@contextmanager
def _storage_errors(action: str) -> Iterator[None]:
    """Map ``OSError`` to ``PermanentStorageError`` or ``StorageError``."""
    try:
        yield
    except OSError as exc:
        kind = PermanentStorageError if exc.errno in _PERMANENT_ERRNOS else StorageError
        raise kind(f"cannot {action}: {exc}") from exc


async def _flock(fd: int) -> None:
    """Take an exclusive flock without parking a worker thread while another process holds it."""
    wait_s = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            await asyncio.sleep(wait_s)
            wait_s = min(wait_s * 2, _LOCK_POLL_MAX_S)


class LocalSink:
    """Appends payloads to ``root/<name>.jsonl`` with flock + fsync."""

    max_append_bytes = 64 * 1024 * 1024

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._fs = LocalFileSystem()
        # One append per file at a time within this process; flock orders processes.
        self._file_locks = KeyedLocks()

    async def start(self) -> None:
        """Create the folder if missing."""
        await asyncio.to_thread(self._start)

    def _start(self) -> None:
        try:
            self._fs.makedirs(str(self.root), exist_ok=True)
            if not self.root.is_dir():
                raise NotADirectoryError(str(self.root))
        except OSError as exc:
            raise StorageError(f"cannot use log folder {self.root}: {exc}") from exc

    def path_of(self, name: str) -> Path:
        """The file ``name`` inside the root; refuses anything that would leave it."""
        if "/" in name or "\0" in name or name in ("", ".", ".."):
            raise PermanentStorageError(f"not a file name inside the log folder: {name!r}")
        path = (self.root / name).resolve()
        if path.parent != self.root:
            raise PermanentStorageError(f"file name escapes the log folder: {name!r}")
        return path

    async def append(self, stem: str, payload: bytes, prepare: Prepare) -> Placement | None:
        """Lock, repair, fix the placement, ``prepare``, write, fsync; see ``shipper.sink``."""
        name = file_name(stem)
        async with self._file_locks.hold(name):
            return await self._append_locked(name, payload, prepare)

    async def _append_locked(
        self, name: str, payload: bytes, prepare: Prepare
    ) -> Placement | None:
        with _storage_errors(f"open {name}"):
            handle, placement = await asyncio.to_thread(
                self._open_and_place, name, payload
            )
        handed_over = False
        try:
            with _storage_errors(f"append to {name}"):
                if placement is None:
                    # Another process holds the file: wait for it here, not in a parked thread.
                    await _flock(handle.fileno())
                    placement = await asyncio.to_thread(
                        self._place, handle.fileno(), name, payload
                    )
                if not await prepare(placement):
                    return None
                # From here the thread owns the file and closes it (releasing the flock)
                # itself: a cancelled caller can never let another writer in mid-write.
                handed_over = True
                await asyncio.to_thread(
                    self._write_durably_and_close, handle, placement, payload
                )
            return placement
        finally:
            if not handed_over:
                handle.close()

    def _open_and_place(self, name: str, payload: bytes) -> tuple[IO[bytes], Placement | None]:
        """Open the file and, when no other process holds its lock, lock it and place the payload.

        All in one thread hop: each hop costs the event loop about 0.1 ms of CPU.
        """
        handle = self._open(self.path_of(name))
        try:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return handle, None
            return handle, self._place(handle.fileno(), name, payload)
        except BaseException:
            handle.close()
            raise

    def _place(self, fd: int, name: str, payload: bytes) -> Placement:
        """Under the lock: repair the tail, then fix where ``payload`` will land (hashing it)."""
        return Placement.of(name, self._repair_tail(fd, name), payload)

    def _open(self, path: Path) -> IO[bytes]:
        created = not path.exists()
        self._fs.makedirs(str(self.root), exist_ok=True)
        # fsspec's opener wraps the real file: fileno() reaches the descriptor for flock/fsync.
        handle: IO[bytes] = self._fs.open(str(path), "a+b")
        if created:
            # The new name must survive a power cut before anything in it is acknowledged.
            fsync_folder(self.root)
        return handle

    def _marker(self, name: str) -> Path:
        return self.root / f".{name}.writing"

    def _repair_tail(self, fd: int, name: str) -> int:
        """Cut an unfinished write or a torn last line; return the size: the next offset."""
        marker = self._marker(name)
        if marker.exists():
            text = marker.read_text()
            size = os.fstat(fd).st_size
            # An idle marker, or one cut short by the crash (so the payload write had not
            # begun): there is nothing to remove.
            complete = text.endswith("\n") and text[:-1].isdigit()
            started = int(text) if complete else size
            if size > started:
                os.ftruncate(fd, started)
                os.fsync(fd)
                log_event(logger, "unfinished_write_removed", logging.WARNING, file=name,
                          offset=started, bytes_removed=size - started)
                self._clear(marker)
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return size
        end = size
        while end > 0:
            start = max(0, end - _TAIL_STEP_BYTES)
            newline = os.pread(fd, end - start, start).rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        os.ftruncate(fd, end)
        os.fsync(fd)
        log_event(
            logger, "torn_line_repaired", logging.WARNING, file=name, bytes_removed=size - end
        )
        return end

    def _write_durably_and_close(
        self, handle: IO[bytes], placement: Placement, payload: bytes
    ) -> None:
        """Marker set durably, payload durable, marker cleared durably: only then return."""
        try:
            marker_fd = self._announce(placement.name, placement.offset)
            try:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
                os.pwrite(marker_fd, _IDLE, 0)
                os.fdatasync(marker_fd)
            finally:
                os.close(marker_fd)
        finally:
            handle.close()

    def _announce(self, name: str, offset: int) -> int:
        """Set the file's marker to ``offset``, durably (its folder too, when it is new)."""
        path = self._marker(name)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            created = True
        except FileExistsError:
            fd = os.open(path, os.O_RDWR)
            created = False
        try:
            # Fixed width, rewritten in place: one small write within one sector, and a
            # data sync (no folder sync) per append once the marker exists.
            os.pwrite(fd, b"%020d\n" % offset, 0)
            os.fdatasync(fd)
            if created:
                fsync_folder(self.root)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _clear(self, marker: Path) -> None:
        fd = os.open(marker, os.O_RDWR)
        try:
            os.pwrite(fd, _IDLE, 0)
            os.fdatasync(fd)
        finally:
            os.close(fd)

    async def landed(self, placement: Placement) -> bool:
        """Whether exactly the payload ``placement`` describes is at its offset."""
        with _storage_errors(f"read {placement.name}"):
            return await asyncio.to_thread(self._landed, placement)

    def _landed(self, placement: Placement) -> bool:
        path = self.path_of(placement.name)
        if not path.exists():
            return False
        # No lock here: ``prepare`` already runs under this file's lock, and landed
        # bytes never change (only a torn tail, beyond any landed payload, is cut).
        with self._fs.open(str(path), "rb") as handle:
            handle.seek(placement.offset)
            data = handle.read(placement.length)
        return len(data) == placement.length and (
            hashlib.sha256(data).hexdigest() == placement.sha256
        )

    async def close(self) -> None:
        """Nothing to release: files are opened per append."""
