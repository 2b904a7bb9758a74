"""Logging off the event loop: log records go through a queue to a thread that writes them,
so a slow stderr never stalls a response.

``start()`` moves the root logger's handlers behind the queue; ``stop()`` writes what is
queued and puts the handlers back, so what is logged after it (the server's last lines)
is written at once. The app's lifespan calls ``stop()`` as its last step, because uvicorn
ends a process by re-raising SIGTERM once it has shut down gracefully, which skips
``atexit``; a process that ends otherwise stops the thread at exit.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import multiprocessing.util
import queue


class _Handoff(logging.handlers.QueueHandler):
    """Hands the record over as it is: the writer's formatter reads its event fields."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


_listener: logging.handlers.QueueListener | None = None
_handlers: list[logging.Handler] = []


def start() -> None:
    """Move the root logger's handlers behind a queue drained by a writer thread."""
    global _listener, _handlers
    root = logging.getLogger()
    if _listener is not None or not root.handlers:
        return
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _handlers = list(root.handlers)
    _listener = logging.handlers.QueueListener(records, *_handlers, respect_handler_level=True)
    root.handlers[:] = [_Handoff(records)]
    _listener.start()
    atexit.register(stop)
    # A uvicorn worker process ends through multiprocessing, which skips atexit.
    multiprocessing.util.Finalize(None, stop, exitpriority=0)


def stop() -> None:
    """Write what is queued and log synchronously from now on; safe to call again."""
    global _listener
    if _listener is None:
        return
    listener, _listener = _listener, None
    logging.getLogger().handlers[:] = _handlers  # first, so that no record is lost
    listener.stop()
