"""An append whose response is lost must land once, and never be reported as a conflict.

A TCP relay in front of Azurite forwards an Append Block request, lets Azurite
apply it, then cuts the connection instead of returning the response. aiohttp
re-sends the PUT once on a fresh connection by itself; the append-position
condition refuses that re-send, and the sink must recognise its own bytes. When
storage stays unreachable the sink reports a plain ``StorageError`` (the worker
then asks ``landed()`` before writing again).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from azure.storage.blob.aio import BlobServiceClient

from shipper.sink import AppendConflict, Placement, StorageError
from shipper.sink_azure import AzureSink
from tests.support.azurite import Azurite

pytestmark = pytest.mark.azure

STEM = "user-1_gpt-4o_20241021"


class ResponseDroppingRelay:
    """Relays TCP to Azurite; can swallow the response to the next Append Block."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.drop_next_append_response = False
        self.cut_everything_after_drop = False
        self.dropped = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> ResponseDroppingRelay:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for handler in self._handlers:
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            if self.cut_everything_after_drop and self.dropped.is_set():
                return
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
            try:
                await self._pipe(client_r, client_w, server_r, server_w)
            finally:
                server_w.transport.abort()
        finally:
            client_w.transport.abort()
            self._handlers.discard(handler)

    async def _pipe(
        self,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        server_r: asyncio.StreamReader,
        server_w: asyncio.StreamWriter,
    ) -> None:
        dropping = False

        async def upstream() -> None:
            nonlocal dropping
            while data := await client_r.read(65536):
                if self.drop_next_append_response and b"comp=appendblock" in data:
                    self.drop_next_append_response = False
                    dropping = True
                server_w.write(data)
                await server_w.drain()

        async def downstream() -> None:
            while data := await server_r.read(65536):
                if dropping:
                    client_w.transport.abort()
                    self.dropped.set()
                    return
                client_w.write(data)
                await client_w.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def relay(azurite: Azurite) -> AsyncIterator[ResponseDroppingRelay]:
    async with ResponseDroppingRelay(azurite.port) as relay:
        yield relay


@pytest.fixture
def container() -> str:
    return f"t{uuid.uuid4().hex[:24]}"


@pytest.fixture
async def sink(
    relay: ResponseDroppingRelay, azurite: Azurite, container: str
) -> AsyncIterator[AzureSink]:
    """A started sink that talks to Azurite through the relay."""
    through_relay = azurite.connection_string.replace(str(azurite.port), str(relay.port))
    sink = AzureSink(container, connection_string=through_relay)
    await sink.start()
    yield sink
    await sink.close()


async def stored(azurite: Azurite, container: str) -> bytes:
    async with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        stream = await service.get_blob_client(container, f"{STEM}.jsonl").download_blob()
        return await stream.readall()


async def write(placement: Placement) -> bool:
    return True


async def test_a_lost_response_then_a_resend_counts_as_written_once(
    sink: AzureSink, relay: ResponseDroppingRelay, azurite: Azurite, container: str
) -> None:
    await sink.append(STEM, b"first\n", write)
    relay.drop_next_append_response = True

    placement = await sink.append(STEM, b"second\n", write)

    assert relay.dropped.is_set()
    assert placement == Placement.of(f"{STEM}.jsonl", len(b"first\n"), b"second\n")
    assert await stored(azurite, container) == b"first\nsecond\n"


async def test_a_lost_response_with_storage_gone_is_a_storage_error_not_a_conflict(
    sink: AzureSink, relay: ResponseDroppingRelay, azurite: Azurite, container: str
) -> None:
    placements: list[Placement] = []

    async def record(placement: Placement) -> bool:
        placements.append(placement)
        return True

    await sink.append(STEM, b"first\n", record)
    relay.drop_next_append_response = True
    relay.cut_everything_after_drop = True

    with pytest.raises(StorageError) as raised:
        await sink.append(STEM, b"second\n", record)

    assert relay.dropped.is_set()
    assert not isinstance(raised.value, AppendConflict)
    relay.cut_everything_after_drop = False
    assert await sink.landed(placements[-1])
    assert await stored(azurite, container) == b"first\nsecond\n"
