"""The last line of defence: no known secret leaves the proxy inside a record.

Secret headers and credential query parameters are replaced by name (``proxy.headers``,
``redacted_query``); ``SecretScrubber`` then replaces every occurrence of a known secret
value anywhere in the serialized record — a key pasted in a prompt, echoed in a
response body, or sent in an unexpected place.

The configured secrets (upstream key, static proxy keys) are compiled once into one
regular expression shaped as a trie, so a record is scanned once however many secrets
there are; the one or two credentials a request presented are looked for with a plain
substring search first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, AnyStr
from urllib.parse import quote, unquote_plus

from shared.record import REDACTED

MIN_SECRET_CHARS = 8
"""Shorter values are not treated as secrets: replacing them would mangle ordinary text."""

CREDENTIAL_QUERY_PARAMS = frozenset(
    {
        "access-token",
        "access_token",
        "api-key",
        "api_key",
        "apikey",
        "auth",
        "authorization",
        "client_secret",
        "id_token",
        "key",
        "openai-api-key",
        "password",
        "refresh_token",
        "sig",
        "signature",
        "subscription-key",
        "token",
        "x-api-key",
    }
)
"""Query parameters whose value is a credential (names compared lower-cased)."""

_MARKER = REDACTED.encode()
_NUMBER_BYTES = b"0123456789.eE+-"


def redacted_query(query: str) -> tuple[str, list[str]]:
    """``query`` with every credential parameter's value replaced, and those values.

    Everything else of the raw query string is kept exactly as sent.
    """
    if not query:
        return query, []
    secrets: list[str] = []
    parts = query.split("&")
    for index, part in enumerate(parts):
        name, sep, value = part.partition("=")
        if sep and value and unquote_plus(name).strip().lower() in CREDENTIAL_QUERY_PARAMS:
            secrets.append(unquote_plus(value))
            parts[index] = f"{name}={REDACTED}"
    return ("&".join(parts), secrets) if secrets else (query, [])


def _fragments(secret: str) -> set[bytes]:
    # The secret as it appears inside a JSON string, and percent-encoded (a raw query).
    as_json = json.dumps(secret, ensure_ascii=False)[1:-1].encode()
    return {as_json, quote(secret, safe="").encode(), quote(secret).encode()}


_FEW_FRAGMENTS = 16


def holds_any(data: AnyStr, parts: tuple[AnyStr, ...]) -> bool:
    """Whether ``data`` holds any of ``parts``: a loop, as ``any()`` over a generator
    costs more than the substring tests themselves."""
    for part in parts:
        if part in data:
            return True
    return False


_Trie = dict[int, "_Trie"]


def _trie_pattern(words: Iterable[bytes]) -> bytes:
    """One regex matching any of ``words`` (longest first), shaped as a trie."""
    trie: _Trie = {}
    end = -1
    for word in words:
        node = trie
        for byte in word:
            node = node.setdefault(byte, {})
        node[end] = {}

    def render(node: _Trie) -> bytes:
        branches = [
            re.escape(bytes([byte])) + render(child)
            for byte, child in sorted(node.items())
            if byte != end
        ]
        if not branches:
            return b""
        if len(branches) == 1 and end not in node:
            return branches[0]
        group = b"(?:" + b"|".join(branches) + b")"
        return group + b"?" if end in node else group

    return render(trie)


def _pattern(secrets: Iterable[str]) -> re.Pattern[bytes] | None:
    fragments = {
        fragment
        for secret in secrets
        if len(secret) >= MIN_SECRET_CHARS
        for fragment in _fragments(secret)
    }
    return re.compile(_trie_pattern(fragments)) if fragments else None


@lru_cache(maxsize=1024)
def _request_pattern(secrets: frozenset[str]) -> tuple[tuple[bytes, ...], re.Pattern[bytes]] | None:
    # The same client presents the same credential again and again.
    pattern = _pattern(secrets)
    if pattern is None:
        return None
    fragments = {fragment for secret in secrets for fragment in _fragments(secret)}
    return tuple(fragments), pattern


def _replace(pattern: re.Pattern[bytes], data: bytes) -> tuple[bytes, int, bool]:
    """``pattern.sub(REDACTED)``, the number of matches, and whether JSON may have broken.

    A fragment is a whole JSON-escaped string, so a match that starts on an escape
    boundary ends on one too. A match may break the JSON only when it starts inside an
    escape (a backslash at most 5 bytes before it) or matches outside a string (a
    number): only then does the caller parse the result to check.
    """
    pieces: list[bytes] = []
    last = count = 0
    suspicious = False
    for match in pattern.finditer(data):
        start = match.start()
        suspicious = suspicious or b"\\" in data[max(start - 5, 0) : start]
        suspicious = suspicious or not match.group().strip(_NUMBER_BYTES)
        pieces += (data[last:start], _MARKER)
        last = match.end()
        count += 1
    if not count:
        return data, 0, False
    pieces.append(data[last:])
    return b"".join(pieces), count, suspicious


def _scrub_strings(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(REDACTED, value)
    if isinstance(value, list):
        return [_scrub_strings(item, pattern) for item in value]
    if isinstance(value, dict):
        return {
            _scrub_strings(key, pattern): _scrub_strings(item, pattern)
            for key, item in value.items()
        }
    return value


class SecretScrubber:
    """Replaces the proxy's own secrets (and per-request credentials) in record JSON."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = frozenset(s for s in secrets if len(s) >= MIN_SECRET_CHARS)
        self._known = _pattern(self._secrets)
        # With a few secrets, substring tests tell faster than the pattern's scan whether
        # a record holds any (most hold none); with many, the scan alone.
        fragments = {fragment for secret in self._secrets for fragment in _fragments(secret)}
        self._few_known = tuple(fragments) if len(fragments) <= _FEW_FRAGMENTS else None

    def scrub(self, record_json: bytes, extra_secrets: Iterable[str] = ()) -> bytes:
        """``record_json`` with every secret replaced by ``REDACTED``; still valid JSON."""
        extra = frozenset(s for s in extra_secrets if len(s) >= MIN_SECRET_CHARS)
        scrubbed, suspicious = record_json, False
        if self._known is not None and (
            self._few_known is None or holds_any(scrubbed, self._few_known)
        ):
            scrubbed, _, suspicious = _replace(self._known, scrubbed)
        presented = _request_pattern(extra) if extra else None
        # A request presents one or two credentials: a plain substring search (much
        # faster than a regex scan) tells whether the record holds any of them at all.
        if presented is not None and holds_any(scrubbed, presented[0]):
            scrubbed, _, doubt = _replace(presented[1], scrubbed)
            suspicious = suspicious or doubt
        if not suspicious:
            return scrubbed
        try:
            json.loads(scrubbed)
        except ValueError:
            # A secret matched across a JSON escape: scrub the decoded strings instead.
            return self._scrub_decoded(record_json, self._secrets | extra)
        return scrubbed

    @staticmethod
    def _scrub_decoded(record_json: bytes, secrets: frozenset[str]) -> bytes:
        words = sorted(secrets, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(word) for word in words))
        cleaned = _scrub_strings(json.loads(record_json), pattern)
        return json.dumps(cleaned, ensure_ascii=False, separators=(",", ":")).encode()
