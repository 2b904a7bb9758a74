"""Which headers cross the proxy in each direction, and how they appear in the record.

Hop-by-hop headers (RFC 9110 section 7.6.1, plus any named in ``Connection``) belong to one
connection and never cross. ``host`` and ``content-length`` are recomputed for the
upstream connection. The client's credentials are replaced by the upstream key unless
the proxy runs in passthrough mode. Everything else passes through both ways.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from email.utils import formatdate

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.record import REDACTED

RawHeaders = Iterable[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
CREDENTIAL_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "openai-api-key"})
SECRET_HEADERS = CREDENTIAL_HEADERS | {"cookie", "set-cookie", "proxy-authorization"}
RECORD_ID_HEADER = "x-proxy-record-id"
_RECORD_ID_HEADER_BYTES = RECORD_ID_HEADER.encode()
_HOP_BY_HOP_BYTES = frozenset(name.encode() for name in HOP_BY_HOP) | {_RECORD_ID_HEADER_BYTES}


class DecodedHeaders:
    """Raw headers decoded once, names lower-cased: an exchange reads its request's (and
    its response's) headers several times, for the upstream, the record and its secrets."""

    __slots__ = ("_first", "items")

    def __init__(self, headers: RawHeaders) -> None:
        self.items = [
            (name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in headers
        ]
        self._first: dict[str, str] | None = None

    def get(self, name: str) -> str | None:
        """The first value of header ``name`` (lower-case), or ``None``."""
        first = self._first
        if first is None:
            first = self._first = {}
            for key, value in self.items:
                first.setdefault(key, value)
        return first.get(name)


Headers = RawHeaders | DecodedHeaders
"""What every function below reads: raw headers, or the same decoded once."""


def _decoded(headers: Headers) -> list[tuple[str, str]]:
    if isinstance(headers, DecodedHeaders):
        return headers.items
    return [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in headers]


def _connection_named(headers: list[tuple[str, str]]) -> frozenset[str]:
    """The headers that ``Connection`` names: hop-by-hop too."""
    named = [
        token.strip().lower()
        for name, value in headers
        if name == "connection"
        for token in value.split(",")
    ]
    return frozenset(named)


# "expect": the proxy's server already answered the client's 100-continue.
_NOT_UPSTREAM = HOP_BY_HOP | {"host", "content-length", "expect", RECORD_ID_HEADER}
_NOT_UPSTREAM_NOR_CREDENTIALS = _NOT_UPSTREAM | CREDENTIAL_HEADERS


def upstream_request_headers(
    headers: Headers, *, passthrough: bool, authorization: str | None
) -> list[tuple[str, str]]:
    """The client's headers as they go upstream.

    With ``passthrough`` the client's own credentials go upstream as sent; otherwise
    they are dropped and ``authorization`` (the upstream key), when set, is injected.
    """
    decoded = _decoded(headers)
    dropped = _NOT_UPSTREAM if passthrough else _NOT_UPSTREAM_NOR_CREDENTIALS
    if named := _connection_named(decoded):
        dropped = dropped | named
    forwarded = [(name, value) for name, value in decoded if name not in dropped]
    if not passthrough and authorization is not None:
        forwarded.append(("authorization", authorization))
    return forwarded


def client_response_headers(headers: RawHeaders, record_id: str) -> list[tuple[bytes, bytes]]:
    """The upstream's raw response headers as they go to the client, plus the record id.

    ``content-encoding`` and ``content-length`` stay: the body is relayed as raw bytes.
    Names go lower-cased, values as they came.
    """
    lowered = [(name.lower(), value) for name, value in headers]
    dropped = _HOP_BY_HOP_BYTES
    for name, value in lowered:
        if name == b"connection":
            dropped = dropped | {token.strip().lower() for token in value.split(b",")}
    relayed = [(name, value) for name, value in lowered if name not in dropped]
    relayed.append((_RECORD_ID_HEADER_BYTES, record_id.encode()))
    return relayed


def recorded_headers(headers: Headers) -> dict[str, str]:
    """Headers for the record: names lower-cased, secret values replaced by ``REDACTED``.

    A repeated header keeps all its values, joined by ``", "``.
    """
    recorded: dict[str, str] = {}
    for name, value in _decoded(headers):
        shown = REDACTED if name in SECRET_HEADERS else value
        recorded[name] = f"{recorded[name]}, {shown}" if name in recorded else shown
    return recorded


def presented_secrets(headers: Headers) -> list[str]:
    """Every credential a request presented, to scrub from its record wherever it appears.

    Each value of ``authorization``, ``api-key``, ``x-api-key`` and ``openai-api-key``,
    and the token alone when the value is ``<scheme> <token>`` (``Bearer sk-...``).
    """
    secrets: list[str] = []
    for name, value in _decoded(headers):
        if name in CREDENTIAL_HEADERS and value.strip():
            secrets.append(value.strip())
            _, _, token = value.strip().partition(" ")
            if token.strip():
                secrets.append(token.strip())
    return secrets


def header_value(headers: Headers, wanted: str) -> str | None:
    """The first value of header ``wanted`` (lower-case name), or ``None``."""
    if isinstance(headers, DecodedHeaders):
        return headers.get(wanted)
    key = wanted.encode("latin-1")
    for name, value in headers:
        if name.lower() == key:
            return value.decode("latin-1")
    return None


class _HttpDate:
    """The ``date`` header's value now, formatted once a second."""

    def __init__(self) -> None:
        self._second = 0
        self._value = b""

    def __call__(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second, self._value = second, formatdate(second, usegmt=True).encode()
        return self._value


http_date = _HttpDate()


def dated(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with a ``date`` appended, unless they hold one."""
    if not any(name.lower() == b"date" for name, _ in headers):
        headers.append((b"date", http_date()))
    return headers


class DateHeader:
    """ASGI middleware: the proxy's own answers get a ``date``; relayed ones keep the upstream's.

    uvicorn runs with ``date_header=False`` so that a relayed answer carries exactly one
    ``date`` (and one ``server``), the upstream's. (``/v1`` calls skip this layer: the
    forwarder dates its answers itself.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = dated(list(message.get("headers", [])))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_dated)
