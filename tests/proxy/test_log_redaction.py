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


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        (
            "GET /v1/models?model=x&api-key=sk-abc123&other=1 HTTP/1.1",
            "GET /v1/models?model=x&api-key=[REDACTED]&other=1 HTTP/1.1",
        ),
        (
            "ws /v1/realtime;access_token=abc.def,next",
            "ws /v1/realtime;access_token=[REDACTED],next",
        ),
        ("> Authorization: Bearer sk-abc123", "> Authorization: [REDACTED]"),
        (
            "headers=[('api-key', 'sk-abc123'), ('x-request-id', 'r1')]",
            "headers=[('api-key', '[REDACTED]'), ('x-request-id', 'r1')]",
        ),
        ("(b'cookie', b'session=abc; other=def')", "(b'cookie', b'[REDACTED]')"),
        (
            "subprotocols=realtime,openai-insecure-api-key.sk-abc123,openai-beta.realtime-v1",
            "subprotocols=realtime,openai-insecure-api-key.[REDACTED],openai-beta.realtime-v1",
        ),
        (
            "REDIS_URL=redis://user:hunter2@localhost:6379/0",
            "REDIS_URL=redis://user:[REDACTED]@localhost:6379/0",
        ),
        (
            "path=/v1/chat/completions status=200 duration_ms=12.5",
            "path=/v1/chat/completions status=200 duration_ms=12.5",
        ),
    ],
)
def test_a_credential_is_redacted_in_whatever_shape_a_library_prints_it(
    line: str, shown: str
) -> None:
    assert LogRedactor([UPSTREAM_KEY])(line) == shown
