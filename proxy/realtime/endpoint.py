"""``GET /v1/realtime``: one Realtime WebSocket session, relayed both ways and recorded.

The sequence::

    authenticate (Authorization or the key subprotocol) -> open the upstream WebSocket
    -> accept the client with the subprotocol the upstream chose -> relay every message
    both ways, in order -> whoever closes first, the other side is closed with the same
    code and reason -> build, scrub and queue the session's one record (always)

Before the client is accepted, a refusal (unknown key, upstream down, upstream's own
refusal) is answered as an HTTP response, as for any other call.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any, Literal

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from proxy.auth import presented_credential
from proxy.errors import ProxyError
from proxy.headers import RECORD_ID_HEADER, recorded_headers
from proxy.model_name import model_of
from proxy.publisher import PendingRecord
from proxy.realtime.events import SessionLog
from proxy.realtime.handshake import (
    recorded_handshake_headers,
    split_subprotocols,
    upstream_handshake_headers,
)
from proxy.realtime.upstream import UpstreamRefused, connect_upstream, realtime_url
from proxy.runtime import Runtime
from shared.ids import new_record_id
from shared.logs import log_event
from shared.record import ExchangeError, Record, RequestPart, ResponsePart

logger = logging.getLogger(__name__)

Side = Literal["client", "upstream", "proxy"]

_UNSENDABLE_CODES = {1005: 1000, 1006: 1011, 1015: 1011}
"""Codes that only describe a close and may not be sent: what goes to the other side."""
_GOING_AWAY = 1001
_CLOSE_TIMEOUT_S = 5.0
_DENIAL_EXTENSION = "websocket.http.response"


def _sendable(code: int | None) -> int:
    if code is None:
        return 1000
    return _UNSENDABLE_CODES.get(code, code)


class RealtimeEndpoint:
    """The ASGI app behind the ``/v1/realtime`` WebSocket route."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime: Runtime = scope["app"].state.runtime
        await RealtimeSession(runtime, WebSocket(scope, receive, send)).run()


class RealtimeSession:
    """One client connection, its upstream connection, and the session's record."""

    def __init__(self, runtime: Runtime, websocket: WebSocket) -> None:
        self._runtime = runtime
        self._settings = runtime.settings
        self._ws = websocket
        scope = websocket.scope
        self._headers: list[tuple[bytes, bytes]] = scope["headers"]
        self._path: str = scope["path"]
        self._query: str = scope["query_string"].decode("latin-1")
        self._record_id = new_record_id()
        self._arrived_at = datetime.now(UTC)
        self._started = time.monotonic()
        self._protocols, protocol_key = split_subprotocols(scope.get("subprotocols") or [])
        self._credential = presented_credential(self._headers) or protocol_key
        self._log = SessionLog(
            max_events=self._settings.realtime_record_max_events,
            max_bytes=self._settings.record_max_body_bytes,
            keep_audio=self._settings.realtime_record_audio,
        )
        self._user_id: str | None = None
        self._status: int | None = None
        self._response_headers: dict[str, str] = {}
        self._refusal_body: Any = None
        self._subprotocol: str | None = None
        self._close: dict[str, Any] | None = None
        self._error: ExchangeError | None = None

    async def run(self) -> None:
        """Run the session, then queue its record whatever happened."""
        self._runtime.metrics.inflight_streams.inc()
        try:
            await self._session()
        except anyio.get_cancelled_exc_class():
            self._fail("proxy_stopped", "The proxy stopped before the session ended.")
            raise
        except Exception:
            logger.exception("proxy_internal_error")
            self._fail("proxy_error", "The proxy failed unexpectedly.")
        finally:
            self._runtime.metrics.inflight_streams.dec()
            # No await from here on: the record is queued even if this task is cancelled.
            self._finish()

    async def _session(self) -> None:
        if (await self._ws.receive())["type"] != "websocket.connect":
            return
        authenticator = self._runtime.authenticator
        try:
            caller = await authenticator.authenticate_credential(self._credential)
            self._user_id = caller.user_id
            upstream = await connect_upstream(
                realtime_url(self._settings.upstream_base_url, self._query),
                upstream_handshake_headers(
                    self._headers,
                    passthrough=authenticator.passthrough,
                    authorization=authenticator.upstream_authorization,
                    credential=self._credential,
                ),
                self._protocols,
                self._settings,
            )
        except ProxyError as exc:
            self._fail(exc.code, exc.message)
            await self._refuse(exc.status, exc.body(), "application/json")
            return
        except UpstreamRefused as exc:
            content_type = next(
                (value for name, value in exc.headers if name.lower() == "content-type"),
                "application/json",
            )
            await self._refuse(exc.status_code, exc.body, content_type)
            return
        try:
            await self._accepted(upstream)
        finally:
            # Shielded and bounded: when the proxy stops, both sides still hear why.
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT_S):
                if self._close is None:
                    self._closed_by("proxy", _GOING_AWAY, "proxy shutting down", _GOING_AWAY)
                    await self._close_client(_GOING_AWAY, "proxy shutting down")
                await upstream.close(_GOING_AWAY, "proxy shutting down")

    async def _accepted(self, upstream: ClientConnection) -> None:
        self._status = 101
        if upstream.response is not None:
            self._response_headers = recorded_headers(
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in upstream.response.headers.raw_items()
            )
        self._subprotocol = upstream.subprotocol
        await self._ws.accept(
            subprotocol=upstream.subprotocol,
            headers=[(RECORD_ID_HEADER.encode(), self._record_id.encode())],
        )
        async with anyio.create_task_group() as group:
            group.start_soon(self._client_to_upstream, upstream, group.cancel_scope)
            group.start_soon(self._upstream_to_client, upstream, group.cancel_scope)

    def _elapsed_ms(self) -> float:
        return (time.monotonic() - self._started) * 1000

    async def _client_to_upstream(
        self, upstream: ClientConnection, scope: anyio.CancelScope
    ) -> None:
        while True:
            message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                code: int = message.get("code") or 1005
                reason: str = message.get("reason") or ""
                self._closed_by("client", code, reason, _sendable(code))
                if code == 1006:
                    self._fail("client_disconnected", "The client dropped the connection.")
                await upstream.close(_sendable(code), reason)
                scope.cancel()
                return
            data: str | bytes = (
                message["text"] if message.get("text") is not None else message.get("bytes", b"")
            )
            try:
                await upstream.send(data)
            except ConnectionClosed:
                return  # the other direction reports how the upstream closed
            self._log.add("client", data, datetime.now(UTC), self._elapsed_ms())

    async def _upstream_to_client(
        self, upstream: ClientConnection, scope: anyio.CancelScope
    ) -> None:
        try:
            async for data in upstream:
                if isinstance(data, str):
                    await self._ws.send_text(data)
                else:
                    await self._ws.send_bytes(data)
                self._log.add("server", data, datetime.now(UTC), self._elapsed_ms())
        except ConnectionClosed:
            pass  # closed abnormally: the code below says how
        except WebSocketDisconnect:
            self._closed_by("client", 1006, "", _GOING_AWAY)
            self._fail("client_disconnected", "The client dropped the connection.")
            await upstream.close(_GOING_AWAY, "client went away")
            scope.cancel()
            return
        if self._close is None:
            code = upstream.close_code or 1006
            reason = upstream.close_reason or ""
            self._closed_by("upstream", code, reason, _sendable(code))
            if code == 1006:
                self._fail("upstream_disconnected", "The upstream dropped the connection.")
            await self._close_client(_sendable(code), reason)
        scope.cancel()

    async def _close_client(self, code: int, reason: str) -> None:
        try:
            await self._ws.close(code, reason)
        except (RuntimeError, WebSocketDisconnect, OSError):
            pass  # the client is already gone

    def _closed_by(self, side: Side, code: int, reason: str, relayed_code: int) -> None:
        if self._close is None:
            self._close = {
                "initiated_by": side,
                "code": code,
                "reason": reason,
                "relayed_code": relayed_code,
            }

    async def _refuse(self, status: int, body: bytes, content_type: str) -> None:
        self._status = status
        self._response_headers = {"content-type": content_type}
        try:
            self._refusal_body = json.loads(body)
        except ValueError:
            self._refusal_body = body.decode("utf-8", "replace")[:1024]
        if _DENIAL_EXTENSION in self._ws.scope.get("extensions", {}):
            response = Response(
                body,
                status,
                headers={RECORD_ID_HEADER: self._record_id},
                media_type=content_type,
            )
            await self._ws.send_denial_response(response)
        else:
            await self._ws.close(1008 if status in (401, 403) else 1011)

    def _fail(self, error_type: str, message: str) -> None:
        if self._error is None:
            self._error = ExchangeError(type=error_type, message=message)

    def _finish(self) -> None:
        try:
            self._queue_record()
        except Exception:
            logger.exception("record_build_failed")

    def _build(self) -> Record:
        response: ResponsePart | None = None
        if self._status == 101:
            body = {
                "object": "realtime.session",
                "subprotocol": self._subprotocol,
                "close": self._close,
                **self._log.summary(),
                "events": self._log.events(),
            }
            response = ResponsePart(
                status_code=101, headers=self._response_headers, body=body, streaming=True
            )
        elif self._status is not None:
            response = ResponsePart(
                status_code=self._status,
                headers=self._response_headers,
                body=self._refusal_body,
            )
        return Record(
            id=self._record_id,
            timestamp=self._arrived_at,
            user_id=self._user_id,
            model=model_of(self._path, self._query, None) or self._log.model,
            duration_ms=round(self._elapsed_ms(), 1),
            request=RequestPart(
                method="GET",
                path=self._path,
                query=self._query,
                headers=recorded_handshake_headers(self._headers),
            ),
            response=response,
            error=self._error,
        )

    def _queue_record(self) -> None:
        record = self._build()
        # Scrubbed even when refused: a wrong key may still be someone's key.
        payload = self._runtime.scrubber.scrub(
            record.to_json(), [self._credential] if self._credential else []
        )
        self._runtime.publisher.submit(PendingRecord(record.id, payload))
        status = record.response.status_code if record.response else None
        self._runtime.metrics.requests.labels("GET", str(status or 499)).inc()
        log_event(
            logger,
            "realtime_session_completed",
            status=status,
            duration_ms=record.duration_ms,
            record_id=record.id,
            events=self._log.events_total,
            close_code=self._close["code"] if self._close else None,
            error=record.error.type if record.error else None,
        )
