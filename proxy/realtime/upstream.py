"""The upstream side of a Realtime session: its URL, and the connection with mapped errors.

``websockets`` exceptions are turned into the proxy's own errors here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from proxy.errors import UpstreamTimeout, UpstreamUnreachable
from proxy.settings import ProxySettings
from proxy.targets import UpstreamBase

_PATH = b"/v1/realtime"


def realtime_url(upstream: UpstreamBase, query: bytes) -> str:
    """``{OPENAI_BASE_URL}/realtime?{query}``, checked like every upstream URL, as ``ws(s)://``.

    Userinfo is left out: ``websockets`` would send it as a second ``Authorization``.
    """
    url = upstream.url_for(_PATH, query)
    scheme = "wss" if url.scheme == "https" else "ws"
    return str(url.copy_with(scheme=scheme, userinfo=b""))


class UpstreamRefused(Exception):
    """The upstream answered the handshake with an HTTP status instead of switching."""

    def __init__(self, status_code: int, headers: list[tuple[str, str]], body: bytes) -> None:
        super().__init__(f"The upstream refused the Realtime connection: HTTP {status_code}")
        self.status_code = status_code
        self.headers = headers
        self.body = body

    @property
    def content_type(self) -> str:
        found = (value for name, value in self.headers if name.lower() == "content-type")
        return next(found, "application/json")


async def connect_upstream(
    url: str,
    headers: Sequence[tuple[str, str]],
    subprotocols: Sequence[str],
    settings: ProxySettings,
) -> ClientConnection:
    """Open the upstream WebSocket; raises ``UpstreamRefused``, ``UpstreamTimeout`` or
    ``UpstreamUnreachable``."""
    try:
        return await connect(
            url,
            additional_headers=list(headers),
            subprotocols=[Subprotocol(name) for name in subprotocols] or None,
            user_agent_header=None,  # the client's own User-Agent is among ``headers``
            proxy=None,  # never an environment proxy: the upstream is the configured one
            open_timeout=settings.upstream_connect_timeout_s,
            max_size=settings.realtime_max_message_bytes,
        )
    except InvalidStatus as exc:
        response = exc.response
        raise UpstreamRefused(
            response.status_code, list(response.headers.raw_items()), bytes(response.body or b"")
        ) from exc
    except TimeoutError as exc:
        raise UpstreamTimeout(
            "The upstream timed out while opening the Realtime connection."
        ) from exc
    except (OSError, InvalidHandshake) as exc:
        raise UpstreamUnreachable(
            f"The upstream could not be reached for Realtime ({type(exc).__name__})."
        ) from exc
