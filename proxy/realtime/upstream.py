"""The upstream side of a Realtime session: its URL, and the connection with mapped errors.

``websockets`` exceptions are turned into the proxy's own errors here and nowhere else.
No redirect is followed: a 3xx is the upstream's answer, relayed to the client as sent,
never a reason to carry the key to another path or host.
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
    return str(url.with_scheme(scheme).with_user(None))


class _NoRedirects(connect):
    """``websockets.connect`` without its redirects (it follows up to 10 by default)."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


class UpstreamRefused(Exception):
    """The upstream answered the handshake with an HTTP status instead of switching."""

    def __init__(
        self, status_code: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        super().__init__(f"The upstream refused the Realtime connection: HTTP {status_code}")
        self.status_code = status_code
        self.headers = headers
        self.body = body


async def connect_upstream(
    url: str,
    headers: Sequence[tuple[str, str]],
    subprotocols: Sequence[str],
    settings: ProxySettings,
) -> ClientConnection:
    """Open the upstream WebSocket; raises ``UpstreamRefused``, ``UpstreamTimeout`` or
    ``UpstreamUnreachable``."""
    try:
        return await _NoRedirects(
            url,
            additional_headers=list(headers),
            subprotocols=[Subprotocol(name) for name in subprotocols] or None,
            user_agent_header=None,  # the client's own User-Agent is among ``headers``
            proxy=None,  # never an environment proxy: the upstream is the configured one
            open_timeout=settings.upstream_connect_timeout_s,
            max_size=settings.realtime_max_message_bytes,
            close_timeout=settings.realtime_send_timeout_s,  # a close is a send too
        )
    except InvalidStatus as exc:
        response = exc.response
        relayed = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in response.headers.raw_items()
        ]
        raise UpstreamRefused(response.status_code, relayed, bytes(response.body or b"")) from exc
    except TimeoutError as exc:
        raise UpstreamTimeout(
            "The upstream timed out while opening the Realtime connection."
        ) from exc
    except (OSError, InvalidHandshake) as exc:
        raise UpstreamUnreachable(
            f"The upstream could not be reached for Realtime ({type(exc).__name__})."
        ) from exc
