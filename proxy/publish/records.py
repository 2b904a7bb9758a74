"""What the publisher and the spool pass around: a finished record, ready to send."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """A finished record, serialized (and scrubbed) once, waiting to be published."""

    record_id: str
    payload: bytes
