"""What the publisher and the spool pass around: a finished record, ready to send."""

from __future__ import annotations

from dataclasses import dataclass


# weakref_slot: a record's room in the spool is given back when it is freed (reservations.py).
@dataclass(frozen=True, slots=True, weakref_slot=True)
class PendingRecord:
    """A finished record, serialized (and scrubbed) once, waiting to be published."""

    record_id: str
    payload: bytes
