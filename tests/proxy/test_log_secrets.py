"""No credential reaches the proxy's log, at INFO or DEBUG, whoever writes the line.

uvicorn writes a WebSocket handshake's request line (query included); at DEBUG,
``websockets`` writes every handshake header and other libraries their own. The test
uses each secret where a client or the configuration puts it, then reads the whole log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.proxy.conftest import CLIENT_KEY, UPSTREAM_KEY, RunningProxy, StartProxy
from tests.support.fake_realtime import FakeRealtime

pytestmark = pytest.mark.slow  # each test starts several servers (docs/testing.md)

WRONG_KEY = "sk-wrong-GUESSED-0b9e44c1d2"
QUERY_KEY = "sk-azure-QUERYKEY-83c2f10a6b"
PASSTHROUGH_SECRET = "passthrough-SECRET-1c7d93e0"
SECRETS = [UPSTREAM_KEY, CLIENT_KEY, WRONG_KEY, QUERY_KEY, PASSTHROUGH_SECRET]


@pytest.fixture
def fake_realtime() -> Iterator[FakeRealtime]:
    with FakeRealtime() as server:
        yield server


def _settings(level: str) -> dict[str, str]:
    return {
        "LOG_LEVEL": level,
        "AUTH_MODE": "keys",
        "PROXY_API_KEYS": f"{CLIENT_KEY}=alice",
        "PASSTHROUGH_USER_ID_SECRET": PASSTHROUGH_SECRET,
    }


def _http_calls(proxy: RunningProxy) -> None:
    client = openai.OpenAI(base_url=proxy.base_url, api_key=CLIENT_KEY, max_retries=0)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "hi"}
    ]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="error-500", messages=messages)
    wrong = openai.OpenAI(base_url=proxy.base_url, api_key=WRONG_KEY, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    answer = httpx.get(
        f"{proxy.base_url}/models",
        params={"api-key": QUERY_KEY},
        headers={"api-key": CLIENT_KEY},
    )
    assert answer.status_code == 200


async def _realtime_sessions(proxy: RunningProxy) -> None:
    base = f"{proxy.url.replace('http://', 'ws://')}/v1/realtime?model=gpt-realtime"
    async with connect(
        f"{base}&api-key={QUERY_KEY}",
        subprotocols=["realtime", f"openai-insecure-api-key.{CLIENT_KEY}"],  # type: ignore[list-item]
        proxy=None,
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
    refusals = [
        # A valid static key in the query is not a credential: refused, and not logged.
        (f"{base}&api-key={CLIENT_KEY}", ["realtime"]),
        (base, ["realtime", f"openai-insecure-api-key.{WRONG_KEY}"]),
    ]
    for url, protocols in refusals:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, subprotocols=protocols, proxy=None):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 401


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_no_secret_reaches_the_log(
    start_proxy: StartProxy, fake_realtime: FakeRealtime, level: str
) -> None:
    http_proxy = start_proxy(**_settings(level))
    realtime_proxy = start_proxy(OPENAI_BASE_URL=fake_realtime.base_url, **_settings(level))

    _http_calls(http_proxy)
    await _realtime_sessions(realtime_proxy)
    http_proxy.stop()
    realtime_proxy.stop()

    logs = {"http": http_proxy.log(), "realtime": realtime_proxy.log()}
    # The lines that used to carry the keys are there, redacted.
    assert "WebSocket /v1/realtime?model=gpt-realtime&api-key=[REDACTED]" in logs["realtime"]
    if level == "DEBUG":
        assert "> authorization: [redacted]" in logs["realtime"].lower()
    for name, log in logs.items():
        for secret in SECRETS:
            assert secret not in log, f"{secret} in the {name} proxy's log"
