"""``SPOOL_FULL_POLICY=reject``: let a ``/v1`` call in only if its record could be kept.

Each call, HTTP or a Realtime handshake, takes room in the spool for its record before it
runs (``reservations.py``) and gives it back when it ends. A call that finds no room is
refused: an HTTP call with 503 ``logging_unavailable``; a Realtime handshake with the
same 503 when the server can deny a handshake with a response, else with close code
1013 (try again later).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.errors import ProxyError
from proxy.headers import http_date
from proxy.publish.reservations import Reservations


class LoggingUnavailable(ProxyError):
    status = 503
    type = "server_error"
    code = "logging_unavailable"


_REFUSAL = LoggingUnavailable(
    "The proxy cannot log this call right now: its spool has no room left for the call's "
    "record should Redis fail; retry later."
)
_RETRY_AFTER_S = b"5"
_TRY_AGAIN_LATER = 1013
_DENIAL_EXTENSION = "websocket.http.response"


class SpoolAdmission:
    """Admits ``/v1`` calls while ``Reservations`` finds room for their records."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        reservations: Reservations = scope["app"].state.runtime.publishing.reservations
        if not reservations.active:
            await self.app(scope, receive, send)
            return
        if not reservations.admit():
            await refuse(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            reservations.release()


async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer 503 ``logging_unavailable`` (or close a WebSocket handshake: try later)."""
    body = _REFUSAL.body()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", _RETRY_AFTER_S),
        (b"date", http_date()),
    ]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    if (await receive())["type"] != "websocket.connect":
        return
    if _DENIAL_EXTENSION in scope.get("extensions", {}):
        start = {"type": "websocket.http.response.start", "status": 503, "headers": headers}
        await send(start)
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": _TRY_AGAIN_LATER, "reason": "retry later"})
