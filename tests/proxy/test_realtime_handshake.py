"""What crosses the proxy in a Realtime handshake, in-process."""

from __future__ import annotations

import pytest

from proxy.errors import OriginNotAllowed
from proxy.realtime.handshake import (
    check_origin,
    recorded_handshake_headers,
    split_subprotocols,
    upstream_handshake_headers,
)
from proxy.realtime.upstream import realtime_url
from proxy.targets import UpstreamBase

OFFERED = ["realtime", "openai-insecure-api-key.pk-secret-1", "openai-beta.realtime-v1"]
HANDSHAKE = [
    (b"host", b"proxy:8000"),
    (b"upgrade", b"websocket"),
    (b"connection", b"Upgrade"),
    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"sec-websocket-version", b"13"),
    (b"sec-websocket-protocol", ", ".join(OFFERED).encode()),
    (b"origin", b"https://app.example"),
    (b"openai-beta", b"realtime=v1"),
    (b"user-agent", b"browser"),
]


def test_a_key_offered_as_subprotocol_is_taken_out_and_never_recorded() -> None:
    assert split_subprotocols(OFFERED) == (
        ["realtime", "openai-beta.realtime-v1"],
        "pk-secret-1",
    )
    recorded = recorded_handshake_headers(HANDSHAKE)["sec-websocket-protocol"]
    assert "pk-secret-1" not in recorded and "realtime" in recorded


@pytest.mark.parametrize("passthrough", [False, True])
def test_upstream_gets_one_authorization_and_no_handshake_mechanics(passthrough: bool) -> None:
    headers = upstream_handshake_headers(
        HANDSHAKE,
        passthrough=passthrough,
        authorization="Bearer sk-upstream",
        credential="pk-secret-1",
    )
    names = [name for name, _ in headers]
    assert sorted(names) == ["authorization", "openai-beta", "user-agent"]
    expected = "Bearer pk-secret-1" if passthrough else "Bearer sk-upstream"
    assert dict(headers)["authorization"] == expected


def test_pages_need_an_allowed_origin_only_when_no_key_is_asked() -> None:
    with pytest.raises(OriginNotAllowed):
        check_origin(HANDSHAKE, True, frozenset())
    check_origin(HANDSHAKE, True, frozenset({"https://app.example"}))
    check_origin(HANDSHAKE, True, frozenset({"*"}))
    check_origin(HANDSHAKE, False, frozenset())  # keys or passthrough: the key decides
    check_origin([(b"user-agent", b"python")], True, frozenset())  # not a browser


@pytest.mark.parametrize(
    ("base", "query", "url"),
    [
        (
            "https://user:pw@api.example.com/v1?api-version=2",
            b"model=m",
            "wss://api.example.com/v1/realtime?api-version=2&model=m",
        ),
        ("http://127.0.0.1:9/v1/", b"", "ws://127.0.0.1:9/v1/realtime"),
    ],
)
def test_the_upstream_url_is_the_bases_with_a_websocket_scheme(
    base: str, query: bytes, url: str
) -> None:
    assert realtime_url(UpstreamBase(base), query) == url
