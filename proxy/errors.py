"""Errors the proxy itself answers with, in OpenAI's shape.

Hierarchy::

    ProxyError                    status, type, code, message -> {"error": {...}}
    ├── BadTarget                 400 invalid_path (a request target that could leave the upstream)
    ├── Unauthorized              401 invalid_api_key
    ├── OriginNotAllowed          403 origin_not_allowed (a web page opening a Realtime session)
    ├── NotFound                  404 unknown_url
    ├── MethodNotAllowed          405 method_not_allowed
    ├── RequestTooLarge           413 request_too_large
    ├── InternalError             500 proxy_error (a bug in the proxy)
    ├── UpstreamUnreachable       502 upstream_unreachable
    ├── NotReady                  503 not_ready (GET /ready: nowhere to put a record)
    └── UpstreamTimeout           504 upstream_timeout

Upstream errors are never wrapped: they pass through unchanged.
"""

from __future__ import annotations

import json
from typing import ClassVar


class ProxyError(Exception):
    """A failure on the proxy's side, answered with ``status`` and an OpenAI-shaped body."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "proxy_error"
    code: ClassVar[str] = "proxy_error"

    def __init__(self, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or []
        """Extra response headers (``Allow`` for a 405)."""

    def body(self) -> bytes:
        """``{"error": {"message", "type", "code"}}`` as UTF-8 JSON."""
        payload = {"error": {"message": self.message, "type": self.type, "code": self.code}}
        return json.dumps(payload).encode()


class Unauthorized(ProxyError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class OriginNotAllowed(ProxyError):
    status = 403
    type = "invalid_request_error"
    code = "origin_not_allowed"


class RequestTooLarge(ProxyError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class InternalError(ProxyError):
    status = 500
    type = "server_error"
    code = "proxy_error"


class UpstreamUnreachable(ProxyError):
    status = 502
    type = "upstream_error"
    code = "upstream_unreachable"


class UpstreamTimeout(ProxyError):
    status = 504
    type = "upstream_error"
    code = "upstream_timeout"


class ClientDisconnected(Exception):
    """The client went away before the exchange was complete; nobody is left to answer."""


class BadTarget(ProxyError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_path"


class NotFound(ProxyError):
    status = 404
    type = "invalid_request_error"
    code = "unknown_url"


class MethodNotAllowed(ProxyError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class NotReady(ProxyError):
    status = 503
    type = "server_error"
    code = "not_ready"
