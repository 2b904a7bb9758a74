"""The outermost ASGI app: ``/v1/...`` straight to the forwarder, the rest through FastAPI.

Forwarded calls are the hot path and need none of FastAPI's routing, dependency or
exception layers (``proxy.forward`` answers its own errors); the proxy's own endpoints
(``/``, ``/health``, ``/ready``, ``/metrics``), refusals (other methods, other paths),
the Realtime WebSocket and the lifespan stay with FastAPI. The middleware every request
goes through (the ``Date`` header, admission under ``SPOOL_FULL_POLICY=reject``) is
built here once, around both.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from proxy.app import FORWARDED_METHODS
from proxy.forward import ForwardEndpoint
from proxy.headers import DateHeader
from proxy.publish.admission import SpoolAdmission

_FORWARDED_PREFIX = "/v1/"


class Dispatch:
    """Wraps the FastAPI app of ``proxy.app.create_app``."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._forward = ForwardEndpoint()
        self._stack = DateHeader(SpoolAdmission(self._route))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self.app  # where the middleware and the forwarder find the runtime
        await self._stack(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"].startswith(_FORWARDED_PREFIX)
            and scope["method"] in FORWARDED_METHODS
        ):
            await self._forward(scope, receive, send)
        else:
            await self.app(scope, receive, send)
