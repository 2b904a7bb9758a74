"""The last line of defence: no known secret leaves the proxy inside a record.

Secret headers are already replaced by name (``proxy.headers``); this pass replaces
every occurrence of a known secret value anywhere in the serialized record — a key
pasted in a prompt, echoed in a response body, or sent as a query parameter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from shared.record import REDACTED

MIN_SECRET_CHARS = 8
"""Shorter values are not treated as secrets: replacing them would mangle ordinary text."""


def _as_json_fragment(secret: str) -> bytes:
    # The secret as it appears inside a JSON string, without the quotes.
    return json.dumps(secret)[1:-1].encode()


class SecretScrubber:
    """Replaces the proxy's own secrets (and per-request credentials) in record JSON."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = self._fragments(secrets)

    @staticmethod
    def _fragments(secrets: Iterable[str]) -> tuple[bytes, ...]:
        unique = {s for s in secrets if len(s) >= MIN_SECRET_CHARS}
        # Longest first, so a secret containing another is replaced whole.
        return tuple(_as_json_fragment(s) for s in sorted(unique, key=len, reverse=True))

    def scrub(self, record_json: bytes, extra_secrets: Iterable[str] = ()) -> bytes:
        """``record_json`` with every secret replaced by ``REDACTED``."""
        marker = REDACTED.encode()
        for fragment in self._secrets + self._fragments(extra_secrets):
            if fragment in record_json:
                record_json = record_json.replace(fragment, marker)
        return record_json
