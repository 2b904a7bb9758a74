"""``LogRedactor``'s configured secrets: gone from a line wherever they appear, however many."""

from __future__ import annotations

import pytest

from proxy.log_redaction import LogRedactor
from shared.record import REDACTED

UPSTREAM_KEY = "sk-upstream-3f9c1a7e"
PROXY_KEY = "pk-alice-8d2e6b40c1"
LINES = [
    "upstream_request_completed method=POST path=/v1/{key}/x status=200 error=None",
    "ws handshake subprotocols=realtime,{key}",
    "{key}{key} at the start, twice",
    "nothing secret in this line",
]


@pytest.mark.parametrize("others", [0, 100], ids=["few keys", "many keys"])
@pytest.mark.parametrize("line", LINES)
def test_a_configured_secret_never_reaches_a_line(others: int, line: str) -> None:
    many = [f"pk-user{n:04d}-0123456789" for n in range(others)]
    redact = LogRedactor([UPSTREAM_KEY, PROXY_KEY, *many])

    for key in (UPSTREAM_KEY, PROXY_KEY, *many[-1:]):
        shown = redact(line.format(key=key))
        assert key not in shown
        assert shown == line.format(key=REDACTED)
