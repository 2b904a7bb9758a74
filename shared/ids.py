"""Record ids: UUIDv7, so ids sort by creation time and are unique across replicas."""

from __future__ import annotations

import os
import threading
import time

_POOL_IDS = 256
_RANDOM_BYTES = 10


class _RandomPool:
    """Random bytes from ``os.urandom``, read 256 ids' worth at a time: one system call
    per id cost several microseconds on a busy machine. A forked child starts empty, so
    two processes never share bytes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = b""
        self._offset = 0

    def take(self) -> bytes:
        with self._lock:
            if self._offset >= len(self._bytes):
                self._bytes, self._offset = os.urandom(_POOL_IDS * _RANDOM_BYTES), 0
            start = self._offset
            self._offset = start + _RANDOM_BYTES
            return self._bytes[start : self._offset]

    def clear(self) -> None:
        self._lock = threading.Lock()  # a lock held in the parent at fork stays held
        self._bytes, self._offset = b"", 0


_pool = _RandomPool()
os.register_at_fork(after_in_child=_pool.clear)


def new_record_id() -> str:
    """A new UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then 74 random bits."""
    value = bytearray((time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF).to_bytes(6, "big"))
    value += _pool.take()
    value[6] = 0x70 | (value[6] & 0x0F)  # version 7, then the first 4 random bits
    value[8] = 0x80 | (value[8] & 0x3F)  # variant 0b10, then 6 random bits
    digits = value.hex()  # as str(uuid.UUID(bytes=...)), without building the object
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
