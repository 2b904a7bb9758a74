"""What the publisher and the spool pass around: a finished record, ready to send."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class PendingRecord:
    """A finished record, serialized (and scrubbed) once, waiting to be published."""

    record_id: str
    payload: bytes
    _give_back: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def hold(self, give_back: Callable[[], None]) -> None:
        """Room is set aside for this record (``reservations.py``): ``settled`` gives it back."""
        self._give_back = give_back

    def settled(self) -> None:
        """The record is in Redis or in a spool segment, or counted as lost: whoever did
        that calls this once; a second call does nothing."""
        give_back, self._give_back = self._give_back, None
        if give_back is not None:
            give_back()
