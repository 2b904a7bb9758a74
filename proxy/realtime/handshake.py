"""What crosses the proxy in a Realtime handshake, and how the handshake is recorded.

Browser SDKs cannot set ``Authorization`` on a WebSocket, so they offer the key as a
subprotocol, ``openai-insecure-api-key.<key>``. The proxy takes the client's key from
there (or from ``Authorization``) and never passes it on: the upstream gets the other
subprotocols, the client's headers minus credentials and handshake mechanics, and the
upstream key (in passthrough mode: the client's key, as ``Authorization``).
"""

from __future__ import annotations

from collections.abc import Sequence

from proxy.errors import OriginNotAllowed
from proxy.headers import RawHeaders, header_value, recorded_headers, upstream_request_headers
from shared.record import REDACTED

INSECURE_KEY_PROTOCOL = "openai-insecure-api-key."
"""The subprotocol prefix the browser SDKs carry the key in."""

_HANDSHAKE_HEADERS = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
        "origin",
        "cookie",
    }
)


def check_origin(headers: RawHeaders, open_to_anyone: bool, allowed: frozenset[str]) -> None:
    """Refuse a web page's session when the proxy asks no key (``AUTH_MODE=none``).

    Browsers send ``Origin`` and let any page open a WebSocket to any host, the
    operator's own ``localhost`` included; without a key to check, ``allowed``
    (``REALTIME_ALLOWED_ORIGINS``) decides. Clients outside a browser send no ``Origin``.
    """
    origin = header_value(headers, "origin")
    if not open_to_anyone or origin is None or "*" in allowed:
        return
    if origin.strip().rstrip("/") not in allowed:
        raise OriginNotAllowed(
            "This origin may not open Realtime sessions: the proxy runs without keys "
            "(AUTH_MODE=none). Add it to REALTIME_ALLOWED_ORIGINS, or use proxy keys."
        )


def split_subprotocols(offered: Sequence[str]) -> tuple[list[str], str | None]:
    """The subprotocols to offer upstream, and the key found among ``offered`` (if any)."""
    forwarded: list[str] = []
    key: str | None = None
    for name in offered:
        if name.startswith(INSECURE_KEY_PROTOCOL):
            key = name[len(INSECURE_KEY_PROTOCOL) :] or key
        else:
            forwarded.append(name)
    return forwarded, key


def upstream_handshake_headers(
    headers: RawHeaders,
    *,
    passthrough: bool,
    authorization: str | None,
    credential: str | None,
) -> list[tuple[str, str]]:
    """The client's handshake headers as they go upstream (``websockets`` adds its own)."""
    forwarded = [
        (name, value)
        for name, value in upstream_request_headers(
            headers, passthrough=passthrough, authorization=authorization
        )
        if name not in _HANDSHAKE_HEADERS
    ]
    if passthrough and credential and not any(name == "authorization" for name, _ in forwarded):
        forwarded.append(("authorization", f"Bearer {credential}"))
    return forwarded


def recorded_handshake_headers(headers: RawHeaders) -> dict[str, str]:
    """``recorded_headers``, with a key offered as a subprotocol replaced by the marker."""
    recorded = recorded_headers(headers)
    offered = header_value(headers, "sec-websocket-protocol")
    if offered is not None:
        names = [name.strip() for name in offered.split(",")]
        recorded["sec-websocket-protocol"] = ", ".join(
            f"{INSECURE_KEY_PROTOCOL}{REDACTED}" if name.startswith(INSECURE_KEY_PROTOCOL) else name
            for name in names
        )
    return recorded
