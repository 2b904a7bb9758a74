"""Running the proxy: one process, or ``PROXY_WORKERS`` processes behind one port.

With several workers, uvicorn's supervisor binds the port once and each worker process
accepts from it. Before any worker starts, prometheus-client's multiprocess mode is
switched on with an empty folder (``PROMETHEUS_MULTIPROC_DIR``, created here when not
given), so ``/metrics`` adds up every worker (``proxy.metrics``).

Logging leaves the event loop: log records go through a queue to a thread that formats
and writes them, so a slow stderr never stalls a response.
"""

from __future__ import annotations

import atexit
import functools
import logging
import logging.handlers
import multiprocessing.util
import os
import queue
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn

from proxy.app import create_app
from proxy.dispatch import Dispatch
from proxy.settings import ProxySettings
from shared.logs import setup_logging

GRACEFUL_SHUTDOWN_S = 30
"""How long uvicorn lets in-flight requests finish on SIGTERM before cutting them."""
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class _Handoff(logging.handlers.QueueHandler):
    """Hands the record over as it is: the listener's formatter reads its event fields."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def log_off_the_loop() -> None:
    """Move the root logger's handlers behind a queue drained by a listener thread."""
    root = logging.getLogger()
    handlers = [h for h in root.handlers if not isinstance(h, _Handoff)]
    if not handlers:
        return
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, *handlers, respect_handler_level=True)
    root.handlers[:] = [_Handoff(records)]
    listener.start()
    stop = functools.cache(listener.stop)  # flushes what is still queued; once
    atexit.register(stop)
    # A uvicorn worker process ends through multiprocessing, which skips atexit.
    multiprocessing.util.Finalize(None, stop, exitpriority=0)
    # uvicorn re-raises SIGTERM after its graceful shutdown, which skips atexit too: the
    # shutdown's own events (proxy_stopped and its totals) would never be written.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, functools.partial(_flush_then_die, stop))


def _flush_then_die(stop: Callable[[], None], signum: int, _: object) -> None:
    stop()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def configure_process(settings: ProxySettings) -> None:
    """What every serving process does first: logging, set up once."""
    setup_logging(settings.log_level, settings.log_format)
    log_off_the_loop()


def worker_app() -> object:
    """The app of one worker process (uvicorn calls this factory in each worker)."""
    settings = ProxySettings()
    configure_process(settings)
    return Dispatch(create_app(settings))


def _fresh_multiproc_dir(settings: ProxySettings) -> Path:
    """An empty metrics folder: the given one emptied, or a new temporary one."""
    if settings.prometheus_multiproc_dir is not None:
        folder = settings.prometheus_multiproc_dir
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):  # values of an earlier run would be added in
            stale.unlink()
        return folder
    folder = Path(tempfile.mkdtemp(prefix="proxy-metrics-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def serve(settings: ProxySettings) -> None:
    """Serve until SIGTERM/SIGINT, in one process or in ``settings.proxy_workers``.

    Logging is set up already (``python -m proxy`` does it); worker processes set up
    their own.
    """
    workers = settings.proxy_workers
    app: object
    if workers == 1:
        log_off_the_loop()
        app = Dispatch(create_app(settings))
    else:
        os.environ[MULTIPROC_ENV] = str(_fresh_multiproc_dir(settings))
        app = "proxy.serving:worker_app"  # each worker builds its own from the environment
    uvicorn.run(
        app,
        factory=workers > 1,
        workers=workers,
        host=settings.proxy_host,
        port=settings.proxy_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        # The client sees the upstream's date and server headers, not a second pair.
        server_header=False,
        date_header=False,
    )
