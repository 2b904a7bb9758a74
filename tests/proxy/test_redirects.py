"""No upstream redirect is ever followed: the client gets the 3xx as the upstream sent it.

A followed redirect would carry the upstream key (or, in passthrough, the client's own
key) to whatever path or host the ``Location`` names. A canary on another port stands for
that host: it must never be contacted.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import httpx
import pytest

from tests.proxy.conftest import CLIENT_KEY, StartProxy, record_for
from tests.support.canary import Canary
from tests.support.fake_realtime import FakeRealtime
from tests.support.fake_upstream import FakeUpstream


@pytest.fixture
def canary() -> Iterator[Canary]:
    with Canary() as server:
        yield server


@pytest.fixture
def fake_realtime() -> Iterator[FakeRealtime]:
    with FakeRealtime() as server:
        yield server


def _handshake_headers() -> dict[str, str]:
    """A WebSocket upgrade request, sent by a client that follows no redirect either."""
    return {
        "connection": "Upgrade",
        "upgrade": "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": base64.b64encode(os.urandom(16)).decode(),
        "api-key": CLIENT_KEY,
    }


def test_an_http_redirect_is_relayed_not_followed(
    start_proxy: StartProxy,
    fake_upstream: FakeUpstream,
    canary: Canary,
    redis_url: str,
) -> None:
    proxy = start_proxy()
    elsewhere = [f"http://127.0.0.1:{canary.port}/v1/models", "/v1/echo/secret-admin"]
    calls = [(code, to) for code in (301, 302, 303, 307, 308) for to in elsewhere]

    answers = [
        httpx.post(f"{proxy.base_url}/redirect/{code}", params={"to": to}, json={"a": 1})
        for code, to in calls
    ]

    for (code, to), answer in zip(calls, answers, strict=True):
        assert answer.status_code == code
        assert answer.headers["location"] == to
        entry = record_for(redis_url, answer.headers["x-proxy-record-id"])
        assert entry.record.response is not None
        assert entry.record.response.status_code == code
        assert entry.record.response.headers["location"] == to
    assert [r.path for r in fake_upstream.requests] == [f"/v1/redirect/{c}" for c, _ in calls]
    assert canary.contacts == 0


@pytest.mark.parametrize("auth_mode", ["none", "passthrough"])
def test_a_realtime_redirect_is_relayed_not_followed(
    start_proxy: StartProxy,
    fake_realtime: FakeRealtime,
    canary: Canary,
    redis_url: str,
    auth_mode: str,
) -> None:
    proxy = start_proxy(OPENAI_BASE_URL=fake_realtime.base_url, AUTH_MODE=auth_mode)
    url = f"{proxy.url}/v1/realtime?model=gpt-realtime"
    elsewhere = [f"http://127.0.0.1:{canary.port}/v1/realtime", "/elsewhere/secret-admin"]

    for to in elsewhere:
        fake_realtime.redirect_to = to
        answer = httpx.get(url, headers=_handshake_headers())

        assert answer.status_code == 302
        assert answer.headers["location"] == to
        assert answer.headers["x-redirected-by"] == "fake"
        entry = record_for(redis_url, answer.headers["x-proxy-record-id"])
        assert entry.record.response is not None
        assert entry.record.response.status_code == 302
        assert entry.record.response.headers["location"] == to
    # One handshake each, at the proxied path: neither redirect was followed.
    assert fake_realtime.handshakes == ["/v1/realtime?model=gpt-realtime"] * 2
    assert canary.contacts == 0
