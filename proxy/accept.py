"""uvloop, accepting every waiting connection at once rather than one per loop iteration.

libuv (since 1.45) accepts one connection each time the event loop polls. When a worker
is saturated an iteration takes tens of milliseconds, so a burst of new connections
waits seconds to be accepted while the calls already in flight are served
(``bench/README.md``, "Latency at many connections"). ``BurstAcceptLoop`` serves a
listening socket the way asyncio's own loop does: each time it is readable, up to
``backlog`` waiting connections are accepted and handed to uvloop as connected sockets.

Only a server on a socket the caller bound (``create_server(sock=...)``, as uvicorn does
for ``proxy.serving``) is served this way; any other server is uvloop's own.

Worker processes that share one listening socket (``PROXY_WORKERS`` > 1) each accept at
most ``SHARED_BURST`` at a time (``new_shared_event_loop``): the first worker to wake would
otherwise take every waiting connection, and a burst of 16 would all go to one worker
while the other stays idle.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

import uvloop

from shared.logs import log_event

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 1.0
"""How long accepting pauses when the process is out of file descriptors (as asyncio)."""
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
SHARED_BURST = 4
"""Connections a worker accepts at a time from a socket other workers accept from too."""


class BurstAcceptLoop(uvloop.Loop):
    """uvloop, with ``create_server(sock=...)`` served by ``BurstServer``, accepting up to
    ``burst`` connections at a time (by default, the server's backlog)."""

    def __init__(self, burst: int | None = None) -> None:
        super().__init__()
        self._burst = burst

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: Any = None,
        port: Any = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        **options: Any,
    ) -> asyncio.AbstractServer:
        if sock is None or ssl is not None or options:
            return await super().create_server(
                protocol_factory, host, port, sock=sock, backlog=backlog, ssl=ssl, **options
            )
        return BurstServer(self, protocol_factory, sock, backlog, self._burst or backlog)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvicorn's ``loop`` setting takes this factory as ``proxy.accept:new_event_loop``."""
    return BurstAcceptLoop()


def new_shared_event_loop() -> asyncio.AbstractEventLoop:
    """As ``new_event_loop``, for a worker that shares its listening socket with others."""
    return BurstAcceptLoop(burst=SHARED_BURST)


class BurstServer(asyncio.AbstractServer):
    """Accepts on ``sock`` from creation until ``close()``; connections are the protocol's."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket,
        backlog: int,
        burst: int,
    ) -> None:
        self._loop = loop
        self._protocol_factory = protocol_factory
        self._sock = sock
        self._burst = burst
        self._serving = True
        self._closed = loop.create_future()
        self._connecting: set[asyncio.Task[None]] = set()
        sock.setblocking(False)
        sock.listen(backlog)
        loop.add_reader(sock.fileno(), self._accept)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self._sock,) if self._serving else ()

    def _accept(self) -> None:
        for _ in range(self._burst):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while it waited
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise
                log_event(logger, "accept_paused", logging.WARNING, error=exc.strerror,
                          retry_after_s=RETRY_AFTER_S)
                self._loop.remove_reader(self._sock.fileno())
                self._loop.call_later(RETRY_AFTER_S, self._resume)
                return
            conn.setblocking(False)
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as uvloop does
            task = self._loop.create_task(self._connect(conn))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._protocol_factory, conn)
        except Exception as exc:
            conn.close()
            log_event(logger, "accept_failed", logging.WARNING, error=repr(exc))

    def _resume(self) -> None:
        if self._serving:
            self._loop.add_reader(self._sock.fileno(), self._accept)

    def close(self) -> None:
        if not self._serving:
            return
        self._serving = False
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._closed.set_result(None)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        """Serving starts on creation."""

    async def serve_forever(self) -> None:
        await asyncio.shield(self._closed)

    async def wait_closed(self) -> None:
        """Accepted connections belong to their protocols: nothing is left to wait for."""
