"""When to start watching for a client that leaves: for each exchange still running
``WATCH_AFTER_S`` after it began, with one timer for all of them.

Most calls end sooner, and a task watching each would cost more than the rest of the
relay's bookkeeping, so an exchange is only watched once it has run that long. Rather
than a timer made by every call and cancelled by nearly every one, an exchange is an
entry in a dict while it runs, and one timer at a time waits for the oldest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

WATCH_AFTER_S = 0.05
"""How long an exchange runs before a task watches for its client leaving.

A client that leaves a call that ends anyway within this time changes nothing the
upstream does."""


class ClientWatch:
    """``add`` an exchange as it starts, ``discard`` it as it ends; ``start_watching`` is
    called for each one still there ``WATCH_AFTER_S`` after it was added."""

    def __init__(self, after_s: float = WATCH_AFTER_S) -> None:
        self._after_s = after_s
        self._running: dict[object, tuple[float, Callable[[], None]]] = {}
        """In the order added, so the oldest comes first."""
        self._timer: asyncio.TimerHandle | None = None

    def add(self, exchange: object, start_watching: Callable[[], None]) -> None:
        self._running[exchange] = (time.monotonic(), start_watching)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._after_s, self._due)

    def discard(self, exchange: object) -> None:
        self._running.pop(exchange, None)

    def _due(self) -> None:
        self._timer = None
        due = time.monotonic() - self._after_s
        running = self._running
        while running:
            exchange = next(iter(running))
            added, start_watching = running[exchange]
            if added > due:
                # The oldest left is not due yet: wait for it.
                self._timer = asyncio.get_running_loop().call_later(
                    added - due, self._due
                )
                return
            del running[exchange]
            start_watching()
