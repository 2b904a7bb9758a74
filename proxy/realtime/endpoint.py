"""``GET /v1/realtime``: one Realtime WebSocket session, relayed both ways and recorded.

The sequence::

    authenticate (Authorization or the key subprotocol) -> open the upstream WebSocket
    -> accept the client with the subprotocol the upstream chose -> relay every message
    both ways, in order -> whoever closes first, the other side is closed with the same
    code and reason -> build, scrub and queue the session's one record (always), then
    close what is still open

Every message sent to either side has ``REALTIME_SEND_TIMEOUT_S``: a side that stops
reading ends the session (1011 to both), so a stuck session cannot outlive a stopping
proxy's graceful wait. The record is queued before the final closes, which may take up
to ``_CLOSE_TIMEOUT_S``: a session cut by the server's shutdown is queued while the
publisher still runs.

Before the client is accepted, a refusal (unknown key, upstream down, upstream's own
refusal) is answered as an HTTP response, as for any other call.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from proxy.auth import presented_credential
from proxy.errors import ProxyError
from proxy.headers import (
    RECORD_ID_HEADER,
    RawHeaders,
    client_response_headers,
    presented_secrets,
)
from proxy.realtime.events import Direction, SessionLog
from proxy.realtime.handshake import (
    check_origin,
    split_subprotocols,
    upstream_handshake_headers,
)
from proxy.realtime.session_record import SessionRecorder, Side
from proxy.realtime.upstream import UpstreamRefused, connect_upstream, realtime_url
from proxy.runtime import Runtime
from shared.ids import new_record_id
from shared.logs import log_event

logger = logging.getLogger(__name__)

_UNSENDABLE_CODES = {1005: 1000, 1006: 1011, 1015: 1011}
"""Codes that only describe a close and may not be sent: what goes to the other side."""
_ABNORMAL = 1006
_GOING_AWAY = 1001
_SERVER_SHUTDOWN = 1012
_SHUTDOWN_REASON = "proxy shutting down"
_INTERNAL_ERROR = 1011
_CLOSE_TIMEOUT_S = 5.0
_DENIAL_EXTENSION = "websocket.http.response"
_JSON = (b"content-type", b"application/json")


def _sendable(code: int) -> int:
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
        self._query: bytes = scope["query_string"]
        self._protocols, self._protocol_key = split_subprotocols(scope.get("subprotocols") or [])
        self._credential = presented_credential(self._headers) or self._protocol_key
        log = SessionLog(
            max_events=self._settings.record_max_events,
            max_bytes=self._settings.record_max_body_bytes,
            keep_audio=self._settings.realtime_record_audio,
        )
        self._record = SessionRecorder(
            new_record_id(), scope["path"], self._query.decode("latin-1"), self._headers, log
        )
        self._send_timeout_s = self._settings.realtime_send_timeout_s
        self._queued = False

    async def run(self) -> None:
        """Run the session, then queue its record whatever happened."""
        self._runtime.metrics.inflight_streams.inc()
        try:
            await self._session()
        except anyio.get_cancelled_exc_class():
            self._record.fail("proxy_stopped", "The proxy stopped before the session ended.")
            raise
        except Exception:
            logger.exception("proxy_internal_error")
            self._record.fail("proxy_error", "The proxy failed unexpectedly.")
        finally:
            self._runtime.metrics.inflight_streams.dec()
            # No await from here on: the record is queued even if this task is cancelled.
            self._finish()

    async def _session(self) -> None:
        if (await self._ws.receive())["type"] != "websocket.connect":
            return
        try:
            upstream = await self._open_upstream()
        except ProxyError as exc:
            self._record.fail(exc.code, exc.message)
            await self._refuse(exc.status, [_JSON], exc.body())
            return
        except UpstreamRefused as exc:
            # A redirect too: relayed as the upstream sent it, never followed.
            await self._refuse(exc.status_code, exc.headers, exc.body)
            return
        try:
            await self._relay(upstream)
        except anyio.get_cancelled_exc_class():
            self._record.fail("proxy_stopped", "The proxy stopped before the session ended.")
            raise
        finally:
            if self._record.close is None:
                self._record.closed_by("proxy", _GOING_AWAY, _SHUTDOWN_REASON, _GOING_AWAY)
            close = self._record.close
            assert close is not None
            self._finish()
            # Shielded and bounded: when the proxy stops, both sides still hear why.
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT_S):
                if close["initiated_by"] == "proxy":
                    await self._close_client(close["relayed_code"], close["reason"])
                await upstream.close(close["relayed_code"], close["reason"])

    async def _open_upstream(self) -> ClientConnection:
        authenticator = self._runtime.authenticator
        check_origin(
            self._headers, authenticator.mode == "none", self._settings.realtime_origins
        )
        caller = await authenticator.authenticate_credential(self._credential)
        self._record.user_id = caller.user_id
        return await connect_upstream(
            realtime_url(self._settings.upstream_base, self._query),
            upstream_handshake_headers(
                self._headers,
                passthrough=authenticator.passthrough,
                authorization=authenticator.upstream_authorization,
                credential=self._credential,
            ),
            self._protocols,
            self._settings,
        )

    async def _relay(self, upstream: ClientConnection) -> None:
        headers = upstream.response.headers.raw_items() if upstream.response else []
        self._record.accepted(
            [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers],
            upstream.subprotocol,
        )
        await self._ws.accept(
            subprotocol=upstream.subprotocol,
            headers=[(RECORD_ID_HEADER.encode(), self._record.record_id.encode())],
        )
        async with anyio.create_task_group() as group:
            group.start_soon(self._client_to_upstream, upstream, group.cancel_scope)
            group.start_soon(self._upstream_to_client, upstream, group.cancel_scope)

    def _note(self, direction: Direction, data: str | bytes) -> None:
        self._record.log.add(direction, data, datetime.now(UTC), self._record.elapsed_ms())

    async def _client_to_upstream(
        self, upstream: ClientConnection, scope: anyio.CancelScope
    ) -> None:
        while True:
            message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                code: int = message.get("code") or 1005
                reason: str = message.get("reason") or ""
                if code == _SERVER_SHUTDOWN:
                    # uvicorn is stopping: it told the client 1012 and reports it here.
                    self._record.closed_by("proxy", code, _SHUTDOWN_REASON, _GOING_AWAY)
                    self._record.fail("proxy_stopped", "The proxy stopped during the session.")
                    code, reason = _GOING_AWAY, _SHUTDOWN_REASON
                else:
                    self._record.closed_by("client", code, reason, _sendable(code))
                if code == _ABNORMAL:
                    self._record.fail("client_disconnected", "The client dropped the connection.")
                await upstream.close(_sendable(code), reason)
                scope.cancel()
                return
            text = message.get("text")
            data: str | bytes = text if text is not None else message.get("bytes") or b""
            try:
                with anyio.fail_after(self._send_timeout_s):
                    await upstream.send(data)
            except ConnectionClosed:
                return  # the other direction reports how the upstream closed
            except TimeoutError:
                self._stalled("upstream", scope)
                return
            self._note("client", data)

    async def _upstream_to_client(
        self, upstream: ClientConnection, scope: anyio.CancelScope
    ) -> None:
        try:
            async for data in upstream:
                with anyio.fail_after(self._send_timeout_s):
                    if isinstance(data, str):
                        await self._ws.send_text(data)
                    else:
                        await self._ws.send_bytes(data)
                self._note("server", data)
        except ConnectionClosed:
            pass  # closed abnormally: the code below says how
        except TimeoutError:
            self._stalled("client", scope)
            return
        except WebSocketDisconnect:
            if self._record.close is None:  # else: the client's close is being relayed
                self._record.closed_by("client", _ABNORMAL, "", _GOING_AWAY)
                self._record.fail("client_disconnected", "The client dropped the connection.")
                await upstream.close(_GOING_AWAY, "client went away")
            scope.cancel()
            return
        if self._record.close is None:
            code = upstream.close_code or _ABNORMAL
            reason = upstream.close_reason or ""
            self._record.closed_by("upstream", code, reason, _sendable(code))
            if code == _ABNORMAL:
                self._record.fail("upstream_disconnected", "The upstream dropped the connection.")
            await self._close_client(_sendable(code), reason)
        scope.cancel()

    def _stalled(self, side: Side, scope: anyio.CancelScope) -> None:
        reason = f"{side} stopped reading"
        self._record.closed_by("proxy", _INTERNAL_ERROR, reason, _INTERNAL_ERROR)
        self._record.fail(
            f"{side}_stalled",
            f"The {side} took no message for {self._send_timeout_s:g} s.",
        )
        scope.cancel()

    async def _close_client(self, code: int, reason: str) -> None:
        try:
            await self._ws.close(code, reason)
        except (RuntimeError, WebSocketDisconnect, OSError):
            pass  # the client is already gone

    async def _refuse(self, status: int, headers: RawHeaders, body: bytes) -> None:
        self._record.refused(status, headers, body)
        if _DENIAL_EXTENSION in self._ws.scope.get("extensions", {}):
            response = Response(body, status)
            relayed = client_response_headers(headers, self._record.record_id)
            response.raw_headers = [
                *(header for header in relayed if header[0] != b"content-length"),
                (b"content-length", str(len(body)).encode()),
            ]
            await self._ws.send_denial_response(response)
        else:
            # A server without the denial extension: the client sees a failed handshake.
            await self._ws.close(1008 if status in (401, 403) else 1011)

    def _finish(self) -> None:
        if self._queued:
            return
        self._queued = True
        try:
            self._queue_record()
        except Exception:
            logger.exception("record_build_failed")

    def _queue_record(self) -> None:
        record = self._record.build()
        presented = [
            *presented_secrets(self._headers),
            *([self._protocol_key] if self._protocol_key else []),
            *self._record.query_secrets,
        ]
        status = self._runtime.publish_record(record, "GET", presented)
        close = self._record.close
        log_event(
            logger,
            "realtime_session_completed",
            status=status,
            duration_ms=record.duration_ms,
            record_id=record.id,
            events=self._record.log.events_total,
            close_code=close["code"] if close else None,
            error=record.error.type if record.error else None,
        )
