"""What every storage sink does, and the errors it raises.

A sink plays its part in the exactly-once protocol (docs/delivery.md): ``append``
fixes the placement under the file's lock (local) or an append-position condition
(Azure), hands it to ``prepare`` before writing, and ``landed`` reads a placement back.
Errors are mapped here: ``AppendConflict`` (another writer moved the end first: try
again), ``PermanentStorageError`` (this write can never succeed: dead-letter it) and
``StorageError`` for everything else (back off and retry without limit).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol


class StorageError(Exception):
    """Storage could not be reached or refused the operation; retry later."""


class PermanentStorageError(StorageError):
    """This write can never succeed as asked (invalid name, wrong blob type, ...); do not retry."""


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
        return json.dumps([self.name, self.offset, self.length, self.sha256], separators=(",", ":"))

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
        said not to write (nothing was written then). Raises ``AppendConflict``,
        ``PermanentStorageError`` or ``StorageError``.
        """

    async def landed(self, placement: Placement) -> bool:
        """Whether exactly the payload ``placement`` describes is stored at its offset."""

    async def close(self) -> None:
        """Release clients and file handles."""
