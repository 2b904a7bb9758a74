"""Reading the client's request body from ASGI ``receive``, within ``MAX_REQUEST_BYTES``.

Small bodies are read whole (they go upstream with a ``Content-Length``); larger or
unsized ones stream upstream chunk by chunk as they arrive, never held whole. Every
chunk is also fed to the record's capture, which keeps only what the record needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.types import Receive

from proxy.capture.bodies import BodyCapture
from proxy.errors import ClientDisconnected, RequestTooLarge


class RequestBody:
    """The body of one request; ``done`` is set once the client has sent all of it."""

    def __init__(
        self,
        receive: Receive,
        capture: BodyCapture,
        *,
        max_bytes: int,
        read_whole_below_bytes: int,
    ) -> None:
        self._receive = receive
        self._capture = capture
        self._max_bytes = max_bytes
        self._read_whole_below_bytes = read_whole_below_bytes
        self._received = 0
        self.done = asyncio.Event()

    async def content(
        self, content_length: int | None, chunked: bool
    ) -> bytes | AsyncIterator[bytes] | None:
        """What goes upstream as the request's content.

        Raises ``RequestTooLarge`` at once when the declared length is over the limit.
        """
        if content_length is not None and content_length > self._max_bytes:
            raise RequestTooLarge(self._too_large_message())
        if not chunked and not content_length:
            self.done.set()
            return None
        if content_length is not None and content_length <= self._read_whole_below_bytes:
            # Most bodies come in one message: read without a generator.
            chunk, more = await self._next()
            if not more:
                return chunk
            return b"".join([chunk, *[chunk async for chunk in self._chunks()]])
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        more = True
        while more:
            chunk, more = await self._next()
            if chunk:
                yield chunk

    async def _next(self) -> tuple[bytes, bool]:
        """The next chunk, accounted for, and whether more follow (``done`` set if not)."""
        message = await self._receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("The client closed the connection while sending.")
        chunk: bytes = message.get("body", b"")
        self._received += len(chunk)
        if self._received > self._max_bytes:
            raise RequestTooLarge(self._too_large_message())
        self._capture.feed(chunk)
        more: bool = message.get("more_body", False)
        if not more:
            self.done.set()
        return chunk, more

    def _too_large_message(self) -> str:
        return f"Request body too large: the limit is {self._max_bytes} bytes."
