"""What every storage sink does, and the errors it raises.

The exactly-once protocol (README, "Exactly once") needs three things of a sink:

1. ``append`` chooses *where* a payload will land (file name after rollover, byte
   offset = current end of that file) and calls ``prepare(placement)`` **before**
   writing. The worker uses that call to check and record its intent in Redis.
   Local files hold an exclusive ``flock`` from choosing the offset until the bytes
   are fsynced, so ``prepare`` runs while no other shipper can move the end;
   Azure appends carry an append-position condition equal to the offset, so a write
   lands only at the offset that was recorded.
2. ``landed(placement)`` tells whether the bytes at a placement are exactly the
   payload it describes (same length and sha256), i.e. an earlier attempt landed.
3. Errors are mapped here: ``AppendConflict`` when another writer moved the end of
   the file first (the worker simply tries again), ``StorageError`` for anything
   else (the worker backs off and retries without limit).

Storage failures never drop a record: nothing is acknowledged until ``append``
returned a placement.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol


class StorageError(Exception):
    """Storage could not be reached or refused the operation; retry later."""


class AppendConflict(StorageError):
    """The end of the file moved between choosing the offset and writing; retry at once."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a payload of whole JSONL lines is, or will be, appended."""

    name: str
    """File name relative to the storage root, e.g. ``u_gpt-4_20241021.1.jsonl``."""
    offset: int
    length: int
    sha256: str

    @classmethod
    def of(cls, name: str, offset: int, payload: bytes) -> Placement:
        return cls(name, offset, len(payload), hashlib.sha256(payload).hexdigest())

    def encode(self) -> str:
        return json.dumps([self.name, self.offset, self.length, self.sha256])

    @classmethod
    def decode(cls, raw: str | bytes) -> Placement:
        name, offset, length, sha256 = json.loads(raw)
        return cls(str(name), int(offset), int(length), str(sha256))


Prepare = Callable[[Placement], Awaitable[bool]]
"""Called by ``Sink.append`` once the placement is fixed; ``False`` means: do not write."""


class Sink(Protocol):
    """A place JSONL files are appended to: a local folder or an Azure container."""

    max_append_bytes: int
    """The largest payload one ``append`` accepts (Azure's block limit, for instance)."""

    async def start(self) -> None:
        """Create the folder or container if missing; raise ``StorageError`` if unreachable."""

    async def append(self, stem: str, payload: bytes, prepare: Prepare) -> Placement | None:
        """Append ``payload`` (whole lines, each ending in ``\\n``) to the current file of ``stem``.

        Returns the placement once the bytes are durable, or ``None`` when ``prepare``
        said not to write (nothing was written then). Raises ``AppendConflict`` or
        ``StorageError``.
        """

    async def landed(self, placement: Placement) -> bool:
        """Whether exactly the payload ``placement`` describes is stored at its offset."""

    async def close(self) -> None:
        """Release clients and file handles."""
