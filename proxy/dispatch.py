"""The outermost ASGI app: ``/v1/...`` straight to the forwarder, the rest through FastAPI.

Forwarded calls are the hot path and need none of FastAPI's routing, dependency or
exception layers, nor any middleware: ``proxy.forward`` answers its own errors, dates
its own answers and admits its own calls under ``SPOOL_FULL_POLICY=reject``. The proxy's
own endpoints (``/``, ``/health``, ``/ready``, ``/metrics``), refusals (other methods,
other paths), the Realtime WebSocket and the lifespan stay with FastAPI, behind the same
two layers as middleware (the ``Date`` header, admission), built here once.
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
        self._rest = DateHeader(SpoolAdmission(app))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self.app  # where the middleware and the forwarder find the runtime
        if (
            scope["type"] == "http"
            and scope["path"].startswith(_FORWARDED_PREFIX)
            and scope["method"] in FORWARDED_METHODS
        ):
            await self._forward(scope, receive, send)
        else:
            await self._rest(scope, receive, send)
