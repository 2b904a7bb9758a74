"""Logging off the event loop: log records are handed to a thread that writes them in batches,
so a slow stderr never stalls a response.

Handing a record over costs no wake-up: the writer sleeps ``FLUSH_INTERVAL_S`` between
batches and writes each batch with one write per handler. Waking a thread for every
record (a ``QueueListener``) cost the event loop more than the rest of a request's
bookkeeping (``bench/README.md``, "Profile").

``start()`` moves the root logger's handlers behind the hand-over; ``stop()`` writes what
is waiting and puts the handlers back, so what is logged after it (the server's last
lines) is written at once. The app's lifespan calls ``stop()`` as its last step, because
uvicorn ends a process by re-raising SIGTERM once it has shut down gracefully, which
skips ``atexit``; a process that ends otherwise stops the thread at exit.
"""

from __future__ import annotations

import atexit
import collections
import logging
import multiprocessing.util
import threading
import time

FLUSH_INTERVAL_S = 0.05
"""How long a log line may wait before it is written."""


class _Handoff(logging.Handler):
    """Appends the record as it is (``deque.append`` is thread-safe and wakes no one)."""

    def __init__(self, waiting: collections.deque[logging.LogRecord]) -> None:
        super().__init__()
        self._waiting = waiting

    def emit(self, record: logging.LogRecord) -> None:
        self._waiting.append(record)


class _Writer(threading.Thread):
    """Writes what is waiting every ``FLUSH_INTERVAL_S``, and once more when stopped."""

    def __init__(
        self, waiting: collections.deque[logging.LogRecord], handlers: list[logging.Handler]
    ) -> None:
        super().__init__(name="log-writer", daemon=True)
        self._waiting = waiting
        self._handlers = handlers
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(FLUSH_INTERVAL_S):
            self._write_waiting()
        self._write_waiting()

    def stop(self) -> None:
        self._stopping.set()
        self.join()

    def _write_waiting(self) -> None:
        batch: list[logging.LogRecord] = []
        while self._waiting:
            batch.append(self._waiting.popleft())
        if batch:
            for handler in self._handlers:
                _write(handler, [r for r in batch if r.levelno >= handler.level])


def _write(handler: logging.Handler, records: list[logging.LogRecord]) -> None:
    if not isinstance(handler, logging.StreamHandler):
        for record in records:
            handler.handle(record)
        return
    lines: list[str] = []
    for record in records:
        if not handler.filter(record):
            continue
        try:
            lines.append(handler.format(record) + handler.terminator)
        except Exception:
            handler.handleError(record)
        # Lets the event loop have the GIL back between two lines rather than after the
        # whole batch (Python hands it over only every 5 ms otherwise).
        time.sleep(0)
    if not lines:
        return
    with handler.lock or _NO_LOCK:
        try:
            handler.stream.write("".join(lines))
            handler.flush()
        except Exception:
            handler.handleError(records[-1])


_NO_LOCK = threading.Lock()
_writer: _Writer | None = None
_handlers: list[logging.Handler] = []


def start() -> None:
    """Move the root logger's handlers behind a hand-over drained by a writer thread."""
    global _writer, _handlers
    root = logging.getLogger()
    if _writer is not None or not root.handlers:
        return
    waiting: collections.deque[logging.LogRecord] = collections.deque()
    _handlers = list(root.handlers)
    _writer = _Writer(waiting, _handlers)
    root.handlers[:] = [_Handoff(waiting)]
    _writer.start()
    atexit.register(stop)
    # A uvicorn worker process ends through multiprocessing, which skips atexit.
    multiprocessing.util.Finalize(None, stop, exitpriority=0)


def stop() -> None:
    """Write what is waiting and log synchronously from now on; safe to call again."""
    global _writer
    if _writer is None:
        return
    writer, _writer = _writer, None
    logging.getLogger().handlers[:] = _handlers  # first, so that no record is lost
    writer.stop()
