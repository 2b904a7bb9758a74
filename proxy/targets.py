"""Where a ``/v1/{path}`` request goes upstream, and which request targets are refused.

The upstream URL is ``{OPENAI_BASE_URL}/{path}``, built from the *decoded* segments
after ``/v1/`` and encoded again, so what the upstream sees is exactly what the proxy
checked. A target is refused (``BadTarget``, 400, nothing forwarded) when a segment is
``.`` or ``..`` (literal or percent-encoded), hides a ``/`` or ``\\`` in an encoding,
holds a control character, is empty (``//``), or still holds a percent-encoded ``.``,
``/`` or ``\\`` once decoded (``%252e``): no OpenAI path has one, and an upstream or
gateway that decodes twice would resolve it. ``UpstreamBase.check`` compares every
built URL with the base once more before it is sent: a second line of defence should
this module ever be wrong.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote_from_bytes, unquote, unquote_to_bytes

import httpx
import yarl

from proxy.errors import BadTarget, NotFound
from proxy.redaction import redacted_query

API_PREFIX = b"/v1"
# RFC 3986 "pchar" without "%": everything else in a segment is percent-encoded.
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"
_QUERY_SAFE = "".join(chr(byte) for byte in range(0x21, 0x7F))
_DOT_SEGMENTS = frozenset({b".", b".."})
_DOT_SEGMENTS_TEXT = frozenset({".", ".."})
_FORBIDDEN_BYTES = frozenset({*range(0x20), 0x7F, ord("/"), ord("\\")})
_ENCODED_AFTER_DECODING = re.compile(rb"%(2e|2f|5c)", re.IGNORECASE)
_CACHED_PATHS = 1024
_CACHED_PATH_BYTES = 256


def _segment(raw: bytes) -> bytes:
    decoded = unquote_to_bytes(raw) if b"%" in raw else raw
    if decoded in _DOT_SEGMENTS:
        raise BadTarget("The request path may not contain '.' or '..' segments.")
    if not decoded:
        raise BadTarget("The request path may not contain empty segments ('//').")
    if not _FORBIDDEN_BYTES.isdisjoint(decoded):
        raise BadTarget(
            "The request path may not contain control characters, '\\' or an encoded '/'."
        )
    if b"%" in decoded and _ENCODED_AFTER_DECODING.search(decoded):
        raise BadTarget("The request path may not contain a doubly encoded '.', '/' or '\\'.")
    return quote_from_bytes(decoded, safe=_SEGMENT_SAFE).encode("ascii")


def _ascii_query(query: bytes) -> bytes:
    # Servers may pass bytes outside printable ASCII through; they go upstream encoded.
    if all(0x20 < byte < 0x7F for byte in query):
        return query
    return quote_from_bytes(query, safe=_QUERY_SAFE).encode("ascii")


def forwarded_path(raw_path: bytes) -> bytes:
    """The path after ``/v1/``, checked and re-encoded (``b"chat/completions"``).

    ``raw_path`` is the path exactly as the client sent it, without the query. Raises
    ``NotFound`` when nothing follows ``/v1`` and ``BadTarget`` for a refused target.
    """
    segments = raw_path.split(b"/")
    # segments[0] is the empty string before the leading "/"; segments[1] decodes to "v1".
    first = unquote_to_bytes(segments[1]) if len(segments) > 1 else b""
    if first != API_PREFIX[1:] and not _FORBIDDEN_BYTES.isdisjoint(first):
        raise BadTarget("The request path may not contain an encoded '/' or '\\'.")
    if len(segments) < 3 or segments[0] or first != API_PREFIX[1:]:
        raise NotFound("Invalid URL: nothing to forward after /v1.")
    rest = segments[2:]
    trailing_slash = len(rest) > 1 and rest[-1] == b""
    if trailing_slash:
        rest = rest[:-1]
    if rest == [b""]:
        raise NotFound("Invalid URL: nothing to forward after /v1.")
    encoded = b"/".join(_segment(segment) for segment in rest)
    return encoded + b"/" if trailing_slash else encoded


class UpstreamBase:
    """``OPENAI_BASE_URL``, parsed once: builds and checks every upstream URL.

    The URLs it builds are ``yarl.URL``s, aiohttp's own, taken as encoded: what is sent
    is exactly the string that was built and checked, never quoted again.
    """

    def __init__(self, base_url: str) -> None:
        message = "OPENAI_BASE_URL must be an absolute http:// or https:// URL"
        try:
            self.url = httpx.URL(base_url).copy_with(fragment=None)
        except httpx.InvalidURL as exc:
            raise ValueError(message) from exc
        if self.url.scheme not in ("http", "https") or not self.url.host:
            raise ValueError(message)
        self._path = self.url.raw_path.split(b"?")[0].rstrip(b"/")
        self._query = self.url.query
        self._prefix = str(self.url.copy_with(raw_path=b"/"))[:-1]  # scheme://userinfo@host:port
        # Compared as aiohttp will read it: the base and the built URLs parsed alike.
        parsed = yarl.URL(str(self.url), encoded=True)
        self._origin = (parsed.scheme, parsed.raw_host, parsed.port)
        self._base_path = self._path.decode("ascii") + "/"
        self._url_without_query = lru_cache(maxsize=_CACHED_PATHS)(
            lambda raw_path: self._build(raw_path, b"")
        )

    @property
    def secrets(self) -> list[str]:
        """The base's password and credential query values: kept out of every record."""
        _, _, password = self.url.userinfo.decode("latin-1").partition(":")
        _, secrets = redacted_query(self._query.decode("latin-1"))
        return [unquote(password), *secrets] if password else secrets

    @property
    def display(self) -> str:
        """The base without userinfo, query or fragment: safe to show and log."""
        return str(self.url.copy_with(userinfo=b"", query=None, fragment=None)).rstrip("/")

    def url_for(self, raw_path: bytes, query: bytes) -> yarl.URL:
        """The upstream URL for a client's raw path and raw query string."""
        if not query and len(raw_path) <= _CACHED_PATH_BYTES:
            # Most calls repeat a few paths; parsing a URL costs more than the rest of
            # building it. Only paths without a query: a query may carry a credential.
            return self._url_without_query(raw_path)
        return self._build(raw_path, query)

    def _build(self, raw_path: bytes, query: bytes) -> yarl.URL:
        path = self._path + b"/" + forwarded_path(raw_path)
        joined = b"&".join(part for part in (self._query, _ascii_query(query)) if part)
        target = (path + b"?" + joined if joined else path).decode("ascii")
        url = yarl.URL(self._prefix + target, encoded=True)
        self.check(url)
        return url

    def check(self, url: yarl.URL) -> None:
        """Raise ``BadTarget`` unless ``url`` lies under the base (same origin, under its path)."""
        if (url.scheme, url.raw_host, url.port) != self._origin:
            raise BadTarget("The request would leave the configured upstream.")
        path = url.raw_path
        if not path.startswith(self._base_path):
            raise BadTarget("The request would leave the configured upstream's base path.")
        if any(s in _DOT_SEGMENTS_TEXT for s in path.split("/")):
            raise BadTarget("The request path may not contain '.' or '..' segments.")
