"""The record's work, deferred until the loop has time for it.

Building, scrubbing and queueing a record and writing its log line cost about as much as
relaying a small call. Done in the exchange's task right after the last byte is sent,
that work delays the client's next request on the same connection, which arrives
meanwhile and waits for the loop. So it waits until an exchange has sent its request
upstream and waits for the answer (``run_soon``), at the latest ``DEFER_S``: at one
connection, the previous call's record is built while the next call's upstream works.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

DEFER_S = 0.005
"""How long a finished exchange's record work waits at most, when no other exchange
sends a request upstream meanwhile: short against the stream's lag."""


class DeferredRecords:
    """Runs each queued job once: after ``run_soon``, or ``DEFER_S`` after it was queued."""

    def __init__(self, delay_s: float = DEFER_S) -> None:
        self._delay_s = delay_s
        self._jobs: list[Callable[[], None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._soon = False
        self._stopped = False

    def add(self, job: Callable[[], None]) -> None:
        """Run ``job`` soon; never raises (safe in ``finally``). Once stopped: now."""
        if self._stopped:
            _run(job)
            return
        self._jobs.append(job)
        if self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self._delay_s, self._due)
            except RuntimeError:  # no running loop: nothing would ever run it
                self.run()

    def run_soon(self) -> None:
        """An exchange is about to send its request upstream: run the queued jobs while the
        upstream works on it.

        aiohttp writes a request with a body in a task of its own (on Python 3.12 and later
        it starts eagerly), whose first step runs in the loop's next round: the jobs are
        queued a round later, so that they run once the request is on its way, not before.
        """
        if self._jobs and not self._soon:
            self._soon = True
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self.run)

    def run(self) -> None:
        """Run every queued job now."""
        self._soon = False
        jobs, self._jobs = self._jobs, []
        for job in jobs:
            _run(job)

    def _due(self) -> None:
        # The timer is left to fire when ``run_soon`` ran the jobs first: under load, one
        # timer every ``DEFER_S`` rather than one set and cancelled for each exchange.
        # A job queued since it was set waits less than ``DEFER_S``, never more.
        self._timer = None
        self.run()

    def stop(self) -> None:
        """Run what is queued; from now on ``add`` runs each job at once (shutdown)."""
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.run()


def _run(job: Callable[[], None]) -> None:
    try:
        job()
    except Exception:
        # The call was answered already: a failure here must not reach another job.
        logger.exception("record_build_failed")
