"""The proxy's event loop accepts every waiting connection at once (``proxy.accept``)."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

from proxy.accept import SHARED_BURST, BurstAcceptLoop, new_shared_event_loop

T = TypeVar("T")

WAITING = 50


def _run(scenario: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=BurstAcceptLoop) as runner:
        return runner.run(scenario)


async def _iterations_to_accept(count: int) -> list[int]:
    """Open ``count`` connections while the loop is blocked; in which loop iteration
    each one reached its protocol, counted from when the loop runs again."""
    loop = asyncio.get_running_loop()
    iteration = 0
    made: list[int] = []

    class Counting(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            made.append(iteration)

    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    server = await loop.create_server(Counting, sock=listener, backlog=128)
    # Blocking connects: the kernel completes them while the loop cannot accept.
    clients = [socket.create_connection(listener.getsockname()) for _ in range(count)]
    try:
        while len(made) < count and iteration < 10 * count:
            await asyncio.sleep(0)  # one loop iteration
            iteration += 1
    finally:
        server.close()
        await server.wait_closed()
        for client in clients:
            client.close()
    return made


def test_a_burst_of_waiting_connections_is_accepted_in_one_go() -> None:
    # libuv alone accepts one connection per iteration: 50 waiting ones take 50.
    made = _run(_iterations_to_accept(WAITING))
    assert len(made) == WAITING
    assert max(made) <= 3, made


def test_a_closed_server_no_longer_accepts() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        listener = socket.create_server(("127.0.0.1", 0))
        address = listener.getsockname()
        server = await loop.create_server(asyncio.Protocol, sock=listener)
        assert server.is_serving() and server.sockets == (listener,)
        server.close()
        await server.wait_closed()
        assert not server.is_serving()
        assert not server.sockets
        try:
            socket.create_connection(address, timeout=1).close()
        except ConnectionRefusedError:
            return
        raise AssertionError("a closed server still accepted a connection")

    _run(scenario())


def test_a_worker_sharing_its_socket_takes_a_few_at_a_time() -> None:
    # Several workers accept from one socket: the first to wake must leave some for the
    # others, yet still accept more than libuv's one per iteration.
    with asyncio.Runner(loop_factory=new_shared_event_loop) as runner:
        made = runner.run(_iterations_to_accept(WAITING))
    assert len(made) == WAITING
    per_iteration = Counter(made)
    assert max(per_iteration.values()) == SHARED_BURST, per_iteration
