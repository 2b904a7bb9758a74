"""Access control: with ``EXPLORER_TOKEN`` set, every page needs the token.

The token comes in an ``Authorization: Bearer`` or ``X-Explorer-Token`` header, or as the
session cookie that ``/login`` sets (an HMAC of the token, never the token itself).
A browser without it is sent to the login page; any other client gets 401.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from http.cookies import SimpleCookie
from urllib.parse import quote

from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "explorer_session"
OPEN_PATHS = ("/login", "/static/")


def session_value(token: str) -> str:
    """The cookie value for ``token``."""
    return hmac.new(token.encode(), b"explorer-session-v1", hashlib.sha256).hexdigest()


def token_accepted(token: str, headers: dict[str, str]) -> bool:
    """True when the request carries ``token`` (header) or its session cookie."""
    offered = headers.get("x-explorer-token", "")
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        offered = offered or credentials.strip()
    if offered and hmac.compare_digest(offered.encode(), token.encode()):
        return True
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header is no session
        return False
    session = cookie.get(COOKIE)
    return session is not None and hmac.compare_digest(session.value, session_value(token))


class TokenAuth:
    """ASGI middleware: pass a request only when it carries the token."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.token is None:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        if path.startswith(OPEN_PATHS) or token_accepted(self.token, headers):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "GET" and "text/html" in headers.get("accept", ""):
            target = path + ("?" + scope["query_string"].decode() if scope["query_string"] else "")
            location = "/login?next=" + quote(target, safe="")
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [(b"location", location.encode())],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        body = json.dumps(
            {
                "error": {
                    "message": "EXPLORER_TOKEN required",
                    "type": "unauthorized",
                    "code": "token_required",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
