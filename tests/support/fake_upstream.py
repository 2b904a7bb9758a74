"""A fake OpenAI-compatible upstream, served by a real uvicorn on a free port.

It answers with the shapes the real API uses (JSON, SSE, errors, compression) so the
proxy can be tested end to end with the official ``openai`` SDK as the client.
The model name triggers special behaviour: ``error-500``, ``error-429``, ``slow``
(answers after 5 s), ``long-stream`` (50 chunks; counts client disconnects) and
``huge`` (3 MB of text). ``encodings`` lists the content encodings it uses for JSON, in
order of preference, when the client accepts them (default: gzip, as the real API);
``stream_encodings`` the same for event streams (default: none, as the real API).
``stable_replies`` gives chat and legacy completions ids and times that depend only on the
request (apart from its ``stream_options``), so two calls can be compared byte for byte.
``/v1/status/{code}`` answers with that status and no body; ``/v1/redirect/{code}?to=URL``
answers that status with ``Location: URL``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.support.compression import StreamCompressor, compressor_for
from tests.support.fake_payloads import (
    ChatReply,
    Json,
    LegacyReply,
    ResponsesReply,
    count_tokens,
    new_id,
)
from tests.support.waiting import wait_until

DEFAULT_CHUNK_DELAY_S = 0.01
SLOW_RESPONSE_S = 5.0
DEFAULT_ENCODINGS = ("gzip",)
SERVER_HEADER = "fake-openai/1.0"
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

ERROR_500 = {
    "error": {
        "message": "The server had an error while processing your request.",
        "type": "server_error",
        "param": None,
        "code": None,
    }
}
ERROR_429 = {
    "error": {
        "message": "Rate limit reached for requests",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}


@dataclass
class SeenRequest:
    """One request as the fake upstream received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    chunked: bool  # True when the body arrived with transfer-encoding: chunked

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def _headers(scope: Scope) -> dict[str, str]:
    """Lower-cased names; repeated headers joined with ", " as HTTP allows."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


class _EventStream(Response):
    """SSE body sent event by event, ``delay_s`` apart, stopping when the client goes away."""

    def __init__(
        self,
        events: Sequence[bytes],
        delay_s: float,
        on_disconnect: Callable[[], None],
        encoding: str | None = None,
    ):
        super().__init__(media_type="text/event-stream")
        self.events = events
        self.delay_s = delay_s
        self.on_disconnect = on_disconnect
        self.encoding = encoding

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # uvicorn (ASGI spec 2.3) drops sends after a disconnect silently, so watch receive().
        gone = asyncio.Event()
        watcher = asyncio.create_task(_wait_for_disconnect(receive, gone))
        compressor: StreamCompressor | None = None
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-request-id", new_id("req_").encode()),
        ]
        if self.encoding is not None:
            compressor = compressor_for(self.encoding)
            headers.append((b"content-encoding", self.encoding.encode()))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            for position, event in enumerate(self.events):
                if position and self.delay_s:
                    await _wait(gone, self.delay_s)
                if gone.is_set():
                    self.on_disconnect()
                    return
                body = compressor.chunk(event) if compressor is not None else event
                await send({"type": "http.response.body", "body": body, "more_body": True})
            tail = compressor.end() if compressor is not None else b""
            await send({"type": "http.response.body", "body": tail, "more_body": False})
        finally:
            watcher.cancel()


async def _wait_for_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


async def _wait(gone: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if the client disconnects meanwhile."""
    try:
        await asyncio.wait_for(gone.wait(), timeout=seconds)
    except TimeoutError:
        pass


class _Recorder:
    """ASGI wrapper: reads the whole body, records the request, then replays the body."""

    def __init__(self, app: ASGIApp, seen: list[SeenRequest]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        pieces: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            pieces.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(pieces)
        headers = _headers(scope)
        self.seen.append(
            SeenRequest(
                method=scope["method"],
                path=scope["path"],
                query=scope["query_string"].decode("latin-1"),
                headers=headers,
                body=body,
                chunked="chunked" in headers.get("transfer-encoding", "").lower(),
            )
        )
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class FakeUpstream:
    """The fake API on ``127.0.0.1:{port}``; a context manager (uvicorn runs in a thread)."""

    def __init__(self) -> None:
        self.requests: list[SeenRequest] = []
        self.chunk_delay_s = DEFAULT_CHUNK_DELAY_S
        self.encodings: list[str] = list(DEFAULT_ENCODINGS)
        self.stream_encodings: list[str] = []
        self.stable_replies = False
        self.disconnects = 0
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        config = uvicorn.Config(
            _Recorder(self._app(), self.requests),
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            server_header=False,
            headers=[("server", SERVER_HEADER)],
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def reset(self) -> None:
        """Forget the requests and counters and restore the default chunk delay."""
        self.requests.clear()
        self.chunk_delay_s = DEFAULT_CHUNK_DELAY_S
        self.encodings = list(DEFAULT_ENCODINGS)
        self.stream_encodings = []
        self.stable_replies = False
        self.disconnects = 0

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 5) -> None:
        """Poll ``predicate`` until it holds; ``AssertionError`` after ``timeout_s``."""
        wait_until(predicate, timeout_s, interval_s=0.01)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        self.wait_for(lambda: self._server.started, timeout_s=15)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._socket.close()

    def __enter__(self) -> FakeUpstream:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the application ---------------------------------------------------------------

    def _app(self) -> Starlette:
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/completions", self._completions, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/models/{model_id:path}", self._model, methods=["GET", "DELETE"]),
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/v1/files", self._files, methods=["POST"]),
                Route("/v1/echo/{rest:path}", self._echo, methods=ALL_METHODS),
                Route("/v1/status/{code:int}", self._status, methods=["GET", "HEAD"]),
                Route("/v1/redirect/{code:int}", self._redirect, methods=ALL_METHODS),
            ]
        )
        app.state.upstream = self
        return app

    def _count_disconnect(self) -> None:
        self.disconnects += 1

    def _stream(self, request: Request, events: Sequence[bytes]) -> Response:
        encoding = _chosen_encoding(request, self.stream_encodings)
        return _EventStream(events, self.chunk_delay_s, self._count_disconnect, encoding)

    async def _gate(self, request: Request, body: Json) -> Response | None:
        """The model-name triggers: an error response, or a delay before the answer."""
        model = body.get("model")
        if model == "error-500":
            return _json(request, ERROR_500, status_code=500)
        if model == "error-429":
            return _json(request, ERROR_429, status_code=429, headers={"retry-after": "1"})
        if model == "slow":
            gone = asyncio.Event()
            watcher = asyncio.create_task(_wait_for_disconnect(request.receive, gone))
            await _wait(gone, SLOW_RESPONSE_S)
            watcher.cancel()
        return None

    async def _chat(self, request: Request) -> Response:
        body: Json = await request.json()
        if (early := await self._gate(request, body)) is not None:
            return early
        chat = ChatReply(body, self.stable_replies)
        if body.get("stream"):
            return self._stream(request, chat.events())
        return _json(request, chat.completion())

    async def _completions(self, request: Request) -> Response:
        body: Json = await request.json()
        if (early := await self._gate(request, body)) is not None:
            return early
        legacy = LegacyReply(body, self.stable_replies)
        if body.get("stream"):
            return self._stream(request, legacy.events())
        return _json(request, legacy.completion())

    async def _responses(self, request: Request) -> Response:
        body: Json = await request.json()
        if (early := await self._gate(request, body)) is not None:
            return early
        responses = ResponsesReply(body)
        if body.get("stream"):
            return self._stream(request, responses.events())
        return _json(request, responses.final())

    async def _embeddings(self, request: Request) -> Response:
        body: Json = await request.json()
        if (early := await self._gate(request, body)) is not None:
            return early
        raw = body.get("input", "")
        inputs = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else raw
        data = []
        for index in range(len(inputs)):
            vector = [round(0.001 * (index + 1) * (k + 1), 6) for k in range(8)]
            encoded: Any = vector
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = max(1, count_tokens(inputs))
        payload = {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return _json(request, payload)

    async def _models(self, request: Request) -> Response:
        names = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
        return _json(request, {"object": "list", "data": [_model_object(n) for n in names]})

    async def _model(self, request: Request) -> Response:
        model_id = request.path_params["model_id"]
        if request.method == "DELETE":
            return _json(request, {"id": model_id, "object": "model", "deleted": True})
        return _json(request, _model_object(model_id))

    async def _files(self, request: Request) -> Response:
        async with request.form(max_part_size=1 << 30) as form:
            upload = form.get("file")
            size, filename = 0, None
            if isinstance(upload, UploadFile):
                size, filename = len(await upload.read()), upload.filename
            purpose = form.get("purpose")
        payload = {
            "id": new_id("file-"),
            "object": "file",
            "bytes": size,
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose if isinstance(purpose, str) else None,
            "status": "processed",
            "expires_at": None,
        }
        return _json(request, payload)

    async def _status(self, request: Request) -> Response:
        headers = {"etag": '"v1"', "x-request-id": new_id("req_")}
        return Response(None, request.path_params["code"], headers)

    async def _redirect(self, request: Request) -> Response:
        location = request.query_params["to"]
        return Response(None, request.path_params["code"], {"location": location})

    async def _echo(self, request: Request) -> Response:
        payload = {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": _headers(request.scope),
        }
        return _json(request, payload)


def _model_object(model_id: str) -> Json:
    return {"id": model_id, "object": "model", "created": 1_700_000_000, "owned_by": "system"}


def _json(
    request: Request,
    payload: Any,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """JSON, compressed when the client accepts one of the upstream's encodings."""
    content = json.dumps(payload).encode()
    out = {"x-request-id": new_id("req_"), **(headers or {})}
    upstream: FakeUpstream | None = request.app.state.upstream
    encoding = _chosen_encoding(request, upstream.encodings if upstream else DEFAULT_ENCODINGS)
    if encoding is not None:
        compressor = compressor_for(encoding)
        content = compressor.chunk(content) + compressor.end()
        out["content-encoding"] = encoding
        out["vary"] = "Accept-Encoding"
    return Response(content, status_code, out, media_type="application/json")


def _chosen_encoding(request: Request, encodings: Sequence[str]) -> str | None:
    accepted = {
        token.split(";")[0].strip().lower()
        for token in request.headers.get("accept-encoding", "").split(",")
    }
    return next((encoding for encoding in encodings if encoding in accepted), None)
