"""``SPOOL_FULL_POLICY=reject``: refuse new calls while their records could not be kept."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.errors import ProxyError
from proxy.runtime import Runtime


class LoggingUnavailable(ProxyError):
    status = 503
    type = "server_error"
    code = "logging_unavailable"


_REFUSAL = LoggingUnavailable(
    "The proxy cannot log this call right now (Redis unavailable and its spool full); "
    "retry later."
)


class SpoolAdmission:
    """Answers ``/v1`` calls 503 while the publisher reports it is refusing (see ``spool.py``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            runtime: Runtime = scope["app"].state.runtime
            if runtime.publisher.refusing:
                body = _REFUSAL.body()
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"5"),
                ]
                await send({"type": "http.response.start", "status": 503, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
