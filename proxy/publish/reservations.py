"""``SPOOL_FULL_POLICY=reject``: room in the spool for every record of an admitted call.

A call answered 2xx must never lose its record, yet its record is written after the
answer, by which time Redis may be down. So, under ``reject``, room is set aside before
a call is let in: ``RECORD_MAX_BYTES`` (a record's upper bound) while the exchange runs;
once its record is built, the record's exact size for as long as it waits in memory (the
publisher's queue, the spool's buffer). Room is taken against the spool's cap minus what
the spool holds and what is already set aside; a call that finds none is refused (503,
``proxy.publish.admission``), and every admitted record then fits, whether it is published
or spooled. Segments of other proxies sharing the folder count as the drainer last saw
them: room they take meanwhile was never set aside.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from proxy.publish.pending import PendingRecord
from proxy.publish.publisher import Publisher
from proxy.publish.spool import Spool


def _nothing() -> None:
    pass


def _line_bytes(pending: PendingRecord) -> int:
    return len(pending.payload) + 1  # as the spool counts it: one line


class Reservations:
    """The room set aside in the spool; inactive (it admits everything) under ``drop``."""

    def __init__(self, spool: Spool, publisher: Publisher, record_max_bytes: int) -> None:
        self._spool = spool
        self._publisher = publisher
        self._record_max_bytes = record_max_bytes + 1  # as a spool line, with its newline
        self.active = spool.full_policy == "reject"
        self.reserved_bytes = 0

    @property
    def refusing(self) -> bool:
        """Whether a new call would be refused now (for ``/ready``)."""
        if not self.active:
            return False
        taken = self._spool.size_bytes + self.reserved_bytes + self._record_max_bytes
        return taken > self._spool.max_bytes or self._publisher.refusing

    def admit(self) -> bool:
        """Set ``RECORD_MAX_BYTES`` aside for a new exchange; False: refuse it.

        An admitted exchange calls ``release`` when it ends, after queueing its record.
        """
        if self.refusing:
            return False
        self.reserved_bytes += self._record_max_bytes
        return True

    def release(self) -> None:
        """The exchange admitted by ``admit`` has ended."""
        self.reserved_bytes -= self._record_max_bytes

    def carry(self) -> Callable[[], None]:
        """Set ``RECORD_MAX_BYTES`` aside for an ended exchange's record, not built yet.

        The exchange's own room (``admit``) is released when it ends; its record is built a
        moment later (``deferred.py``). Call the returned function once the record's room
        is held (``hold``), or once it is known there is no record.
        """
        if not self.active:
            return _nothing
        self.reserved_bytes += self._record_max_bytes
        return partial(self._give_back, self._record_max_bytes)

    def hold(self, pending: PendingRecord) -> None:
        """Keep ``pending``'s room set aside until it is written.

        Whoever writes the record (the publisher, into Redis; the spool, into a segment)
        or counts it as lost calls ``pending.settled()``, which gives the room back.
        """
        if not self.active:
            return
        size_bytes = _line_bytes(pending)
        self.reserved_bytes += size_bytes
        pending.hold(partial(self._give_back, size_bytes))

    def _give_back(self, size_bytes: int) -> None:
        self.reserved_bytes -= size_bytes
