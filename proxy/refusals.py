"""What the router refuses (an unknown path or method), answered like any exchange.

FastAPI raises ``HTTPException`` 404/405 for those; the handler here turns them into
OpenAI-shaped errors that go through ``Exchange`` like every ``/v1`` call, so they carry
``X-Proxy-Record-Id`` and leave a record.
"""

from __future__ import annotations

from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from proxy.errors import BadTarget, MethodNotAllowed, NotFound, ProxyError
from proxy.forward import Exchange
from proxy.runtime import Runtime
from proxy.targets import forwarded_path


class RefusalResponse(Response):
    """A router refusal answered like any exchange: OpenAI-shaped, with a record and its id."""

    def __init__(self, refusal: ProxyError) -> None:
        super().__init__(status_code=refusal.status)
        self.refusal = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime: Runtime = scope["app"].state.runtime
        await Exchange(runtime, scope, receive, send, refusal=self.refusal).run()


async def refuse_route(request: Request, exc: Exception) -> Response:
    """Exception handler for the router's 404 and 405 (an unknown path or method)."""
    where = f"{request.method} {request.url.path}"
    if isinstance(exc, HTTPException) and exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        return RefusalResponse(
            MethodNotAllowed(f"Method not allowed ({where}).", [(b"allow", allow.encode())])
        )
    if isinstance(exc, HTTPException) and exc.status_code != 404:
        return await http_exception_handler(request, exc)
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    try:
        # A target the /v1 route could not match (a newline in it) is still a bad target.
        forwarded_path(raw_path)
    except BadTarget as refusal:
        return RefusalResponse(refusal)
    except NotFound:
        pass
    return RefusalResponse(NotFound(f"Invalid URL ({where})."))
