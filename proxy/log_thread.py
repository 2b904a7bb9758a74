"""Logging off the event loop: each line is formatted where it is logged and handed to a
thread that writes the lines in batches, so a slow stderr never stalls a response.

Handing a line over wakes the writer at most once per ``FLUSH_INTERVAL_S`` (the first
line after a quiet spell is written at once), and each batch is written with one write
per handler. The writer only joins and writes: while it holds the GIL the event loop
waits, so it does as little as it can. Waking a thread for every record (a
``QueueListener``) or formatting in the writer cost the event loop more than formatting
the line itself (``bench/README.md``, "Profile").

An event logged with ``shared.logs.log_event`` comes as its parts, not as a record, when
the hand-over is the root's only handler (that module says when).

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
from typing import Any, cast

from shared.logs import EventFormatter, EventSink, LogEvent

FLUSH_INTERVAL_S = 0.05
"""How long a log line may wait before it is written."""

_Item = tuple[logging.Handler, "str | logging.LogRecord"]
"""A stream handler's formatted line, or a record for any other handler to handle."""


class _Handoff(EventSink):
    """Formats the record for each handler and queues it (``deque.append`` is thread-safe),
    waking the writer at most once per ``FLUSH_INTERVAL_S``.

    An event comes without a record (``shared.logs.log_event``) when every handler is a
    stream handler without filters whose formatter is an ``EventFormatter``.
    """

    def __init__(
        self,
        handlers: list[logging.Handler],
        waiting: collections.deque[_Item],
        wake: threading.Event,
    ) -> None:
        super().__init__()
        self._handlers = handlers
        self._waiting = waiting
        self._wake = wake
        self._next_wake = 0.0
        self._formatters = _event_formatters(handlers)

    def emit(self, record: logging.LogRecord) -> None:
        for handler in self._handlers:
            if record.levelno < handler.level:
                continue
            if not isinstance(handler, logging.StreamHandler):
                self._waiting.append((handler, record))
                continue
            if not handler.filter(record):
                continue
            try:
                line = handler.format(record) + handler.terminator
            except Exception:
                handler.handleError(record)
                continue
            self._waiting.append((handler, line))
        self._queued()

    def write_event(self, level: int, name: str, event: str, fields: dict[str, Any]) -> bool:
        if self._formatters is None:
            return False
        parts = LogEvent(time.time(), logging.getLevelName(level), name, event, fields)
        lines: list[_Item] = []
        try:
            for handler, formatter in self._formatters:
                if level >= handler.level:
                    line = formatter.event_line(parts)
                    lines.append((handler, line + handler.terminator))
        except Exception:
            return False  # logged as a record, whose failure is reported as ``emit`` does
        self._waiting.extend(lines)
        self._queued()
        return True

    def _queued(self) -> None:
        now = time.monotonic()
        if now >= self._next_wake:
            self._next_wake = now + FLUSH_INTERVAL_S
            self._wake.set()


def _event_formatters(
    handlers: list[logging.Handler],
) -> tuple[tuple[logging.StreamHandler[Any], EventFormatter], ...] | None:
    """Each handler with its formatter, when each would format a record as the formatter
    formats its event; else None."""
    pairs = []
    for handler in handlers:
        formatter = handler.formatter
        if (
            not isinstance(handler, logging.StreamHandler)
            or type(handler).format is not logging.Handler.format
            or handler.filters
            or not isinstance(formatter, EventFormatter)
        ):
            return None
        pairs.append((handler, formatter))
    return tuple(pairs)


class _Writer(threading.Thread):
    """Writes what is waiting when woken or every ``FLUSH_INTERVAL_S``, and once more at stop."""

    def __init__(
        self,
        waiting: collections.deque[_Item],
        handlers: list[logging.Handler],
        wake: threading.Event,
    ) -> None:
        super().__init__(name="log-writer", daemon=True)
        self._waiting = waiting
        self._handlers = handlers
        self._wake = wake
        self._stopping = False

    def run(self) -> None:
        while not self._stopping:
            self._wake.wait(FLUSH_INTERVAL_S)
            self._wake.clear()  # before draining: a line appended after it is drained too
            self._write_waiting()
        self._write_waiting()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self.join()

    def _write_waiting(self) -> None:
        popleft = self._waiting.popleft
        batch = [popleft() for _ in range(len(self._waiting))]
        for handler in self._handlers:
            items = [item for owner, item in batch if owner is handler]
            if items:
                _write(handler, items)


def _write(handler: logging.Handler, items: list[str | logging.LogRecord]) -> None:
    if not isinstance(handler, logging.StreamHandler):
        for record in items:
            if isinstance(record, logging.LogRecord):
                handler.handle(record)
        return
    lines = cast(list[str], items)  # a stream handler's items are its lines (``_Handoff``)
    with handler.lock or _NO_LOCK:
        try:
            handler.stream.write("".join(lines))
            handler.flush()
        except Exception:
            handler.handleError(logging.makeLogRecord({"msg": "a batch of log lines"}))


_NO_LOCK = threading.Lock()
_writer: _Writer | None = None
_handlers: list[logging.Handler] = []


def start() -> None:
    """Move the root logger's handlers behind a hand-over drained by a writer thread."""
    global _writer, _handlers
    root = logging.getLogger()
    if _writer is not None or not root.handlers:
        return
    waiting: collections.deque[_Item] = collections.deque()
    _handlers = list(root.handlers)
    wake = threading.Event()
    _writer = _Writer(waiting, _handlers, wake)
    root.handlers[:] = [_Handoff(_handlers, waiting, wake)]
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
