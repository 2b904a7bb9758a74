"""Running the proxy: one process, or ``PROXY_WORKERS`` processes behind one port.

With several workers, uvicorn's supervisor binds the port once and each worker process
accepts from it. Before any worker starts, prometheus-client's multiprocess mode is
switched on with an empty folder (``PROMETHEUS_MULTIPROC_DIR``, created here when not
given), so ``/metrics`` adds up every worker (``proxy.metrics``).

Every serving process runs uvloop with the proxy's own accept (``proxy.accept``), on a
socket bound before the server starts; logging leaves its event loop
(``proxy.log_thread``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import uvicorn

from proxy import log_thread
from proxy.app import create_app
from proxy.dispatch import Dispatch
from proxy.log_redaction import setup_redacted_logging
from proxy.metrics import read_process_id_once
from proxy.settings import ProxySettings

STARTUP_FAILURE = 3
"""The exit status when the server could not start (as ``uvicorn.run``)."""
GRACEFUL_SHUTDOWN_S = 30
"""How long uvicorn lets in-flight requests finish on SIGTERM before cutting them."""
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def configure_process(settings: ProxySettings) -> None:
    """What every serving process does first: logging, set up once."""
    setup_redacted_logging(settings)
    log_thread.start()


def worker_app() -> object:
    """The app of one worker process (uvicorn calls this factory in each worker)."""
    settings = ProxySettings()
    configure_process(settings)
    read_process_id_once()
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
        log_thread.start()
        app = Dispatch(create_app(settings))
    else:
        os.environ[MULTIPROC_ENV] = str(_fresh_multiproc_dir(settings))
        app = "proxy.serving:worker_app"  # each worker builds its own from the environment
    options: dict[str, Any] = {
        "factory": workers > 1,
        "workers": workers,
        "host": settings.proxy_host,
        "port": settings.proxy_port,
        # Accepts every waiting connection at once, not one per iteration; several workers
        # on one socket a few each, so that a burst is shared (``proxy.accept``).
        "loop": f"proxy.accept:{'new_shared_event_loop' if workers > 1 else 'new_event_loop'}",
        "log_config": None,
        "access_log": False,
        # Nothing reads the client's address; X-Forwarded-* headers pass upstream as sent.
        "proxy_headers": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        # The client sees the upstream's date and server headers, not a second pair.
        "server_header": False,
        "date_header": False,
    }
    if workers > 1:
        uvicorn.run(app, **options)  # binds the socket and hands it to each worker
        return
    # One process binds its socket first too, so that its server is created on a socket
    # (``create_server(sock=...)``), the case ``proxy.accept`` serves.
    config = uvicorn.Config(app, **options)
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[config.bind_socket()])
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)
