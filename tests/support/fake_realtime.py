"""A fake OpenAI Realtime upstream: a real WebSocket server (``websockets``) on a free port.

It speaks the Realtime event protocol far enough to test the proxy's relay: it sends
``session.created`` on connect, answers ``session.update`` and ``input_audio_buffer.commit``,
and answers ``response.create`` with ``response.created``, audio deltas (``AUDIO_CHUNKS``),
a transcript delta and ``response.done`` with ``USAGE``. It refuses a handshake without
``Authorization: Bearer ...`` with 401, and the model ``close-after-response`` makes it
close the session itself (code ``SERVER_CLOSE_CODE``) after the first ``response.done``;
with the model ``stop-reading`` it reads nothing after ``session.created``.
While ``redirect_to`` is set, every handshake is answered ``302 Location: {redirect_to}``.
The path of every handshake is kept in ``handshakes``; every session and every client
event it received, in ``sessions``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from tests.support.ports import free_port, wait_for_port

AUDIO_CHUNKS = [bytes(range(i, i + 48)) * 20 for i in range(3)]
"""The raw audio of the three ``response.output_audio.delta`` events (960 bytes each)."""
USAGE = {
    "total_tokens": 30,
    "input_tokens": 20,
    "output_tokens": 10,
    "input_token_details": {"text_tokens": 8, "audio_tokens": 12, "cached_tokens": 0},
    "output_token_details": {"text_tokens": 3, "audio_tokens": 7},
}
SERVER_CLOSE_CODE = 4000
SERVER_CLOSE_REASON = "session expired"
REFUSAL = {
    "error": {
        "message": "Missing bearer authentication in header",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
}


@dataclass
class SeenSession:
    """One connection as the fake upstream saw it."""

    path: str
    headers: dict[str, str]  # lower-cased names
    offered_subprotocols: list[str]
    subprotocol: str | None = None
    received: list[Any] = field(default_factory=list)  # parsed client events, in order
    close_code: int | None = None
    close_reason: str | None = None
    closed: threading.Event = field(default_factory=threading.Event)

    def wait_closed(self, timeout_s: float = 5.0) -> tuple[int | None, str | None]:
        """The close code and reason, once the connection has closed (the server's thread)."""
        assert self.closed.wait(timeout_s), "the upstream connection did not close"
        return self.close_code, self.close_reason

    @property
    def model(self) -> str | None:
        models = parse_qs(urlsplit(self.path).query).get("model")
        return models[0] if models else None


class FakeRealtime:
    """The server, run on its own event loop in a thread; use as a context manager."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sessions: list[SeenSession] = []
        self.refused: list[SeenSession] = []
        self.handshakes: list[str] = []
        self.redirect_to: str | None = None
        self._ids = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """What the proxy takes as ``OPENAI_BASE_URL`` (it switches to ``ws://`` itself)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeRealtime:
        self._thread.start()
        wait_for_port(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def _serve_forever(self) -> None:
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with serve(
            self._handle,
            "127.0.0.1",
            self.port,
            process_request=self._check_request,
            select_subprotocol=self._select,
            close_timeout=1,  # a connection that reads nothing must not hold up the stop
        ):
            await self._stop.wait()

    def _seen(self, request: Request) -> SeenSession:
        headers = {name.lower(): value for name, value in request.headers.raw_items()}
        offered = [
            name.strip()
            for name in request.headers.get_all("Sec-WebSocket-Protocol")
            for name in name.split(",")
        ]
        return SeenSession(request.path, headers, offered)

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        seen = self._seen(request)
        self.handshakes.append(request.path)
        if self.redirect_to is not None:
            headers = Headers([("Location", self.redirect_to), ("X-Redirected-By", "fake")])
            return Response(HTTPStatus.FOUND, "Found", headers, b"")
        if not seen.headers.get("authorization", "").startswith("Bearer "):
            self.refused.append(seen)
            body = json.dumps(REFUSAL).encode()
            headers = Headers([("Content-Type", "application/json")])
            return Response(HTTPStatus.UNAUTHORIZED, "Unauthorized", headers, body)
        return None

    @staticmethod
    def _select(
        connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        return Subprotocol("realtime") if "realtime" in offered else None

    def _event_id(self) -> str:
        return f"event_{next(self._ids)}"

    async def _send(self, connection: ServerConnection, event: dict[str, Any]) -> None:
        await connection.send(json.dumps({"event_id": self._event_id(), **event}))

    async def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        seen = self._seen(connection.request)
        seen.subprotocol = connection.subprotocol
        self.sessions.append(seen)
        session = {"id": "sess_fake", "object": "realtime.session", "model": seen.model}
        await self._send(connection, {"type": "session.created", "session": session})
        try:
            if seen.model == "stop-reading":
                # Incoming messages pile up until the sender's writes block.
                await connection.wait_closed()
            else:
                async for message in connection:
                    event = json.loads(message)
                    seen.received.append(event)
                    await self._answer(connection, seen, event)
        except ConnectionClosed:
            pass
        seen.close_code = connection.close_code
        seen.close_reason = connection.close_reason
        seen.closed.set()

    async def _answer(
        self, connection: ServerConnection, seen: SeenSession, event: dict[str, Any]
    ) -> None:
        kind = event.get("type")
        if kind == "session.update":
            session = {"id": "sess_fake", "model": seen.model, **event.get("session", {})}
            await self._send(connection, {"type": "session.updated", "session": session})
        elif kind == "input_audio_buffer.commit":
            await self._send(connection, {"type": "input_audio_buffer.committed"})
        elif kind == "response.create":
            await self._respond(connection)
            if seen.model == "close-after-response":
                await connection.close(SERVER_CLOSE_CODE, SERVER_CLOSE_REASON)

    async def _respond(self, connection: ServerConnection) -> None:
        response = {"id": "resp_1", "object": "realtime.response", "status": "in_progress"}
        await self._send(connection, {"type": "response.created", "response": response})
        for chunk in AUDIO_CHUNKS:
            delta = base64.b64encode(chunk).decode()
            await self._send(
                connection,
                {"type": "response.output_audio.delta", "response_id": "resp_1", "delta": delta},
            )
        await self._send(
            connection,
            {"type": "response.output_audio_transcript.delta", "response_id": "resp_1",
             "delta": "Hello there"},
        )
        done = {**response, "status": "completed", "usage": USAGE}
        await self._send(connection, {"type": "response.done", "response": done})
