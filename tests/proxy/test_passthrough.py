"""``AUTH_MODE=passthrough`` through the official SDK: each client key gets a stable id."""

from __future__ import annotations

import re

import openai
import pytest

from proxy.auth import passthrough_user_id
from tests.proxy.conftest import RunningProxy, StartProxy, record_for
from tests.support.fake_upstream import FakeUpstream

KEY_ONE = "sk-proj-client-one-9f2c4e7a1b3d5f60"
KEY_TWO = "sk-proj-client-two-0a1b2c3d4e5f6789"
SECRET = "operator-secret-for-ids"
MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "user", "content": "Say hello"}
]


def call(proxy: RunningProxy, key: str) -> str:
    """One chat completion with ``key``; the id of its record."""
    client = openai.OpenAI(base_url=proxy.base_url, api_key=key, max_retries=0, timeout=20)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.parse().choices[0].message.content == "Hello world!"
    return raw.headers["x-proxy-record-id"]


@pytest.mark.slow
def test_each_key_has_one_stable_id_on_every_replica(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    first, second = (start_proxy(AUTH_MODE="passthrough") for _ in range(2))
    calls = [(first, KEY_ONE), (second, KEY_ONE), (first, KEY_ONE), (second, KEY_TWO)]
    record_ids = [call(proxy, key) for proxy, key in calls]

    # The client's own key went upstream each time.
    sent = [request.headers["authorization"] for request in fake_upstream.requests]
    assert sent == [f"Bearer {key}" for _, key in calls]

    entries = [record_for(redis_url, record_id) for record_id in record_ids]
    ids = [entry.record.user_id for entry in entries]
    assert ids[0] == ids[1] == ids[2] == passthrough_user_id(KEY_ONE)
    assert ids[3] == passthrough_user_id(KEY_TWO) != ids[0]
    for user_id, entry, (_, key) in zip(ids, entries, calls, strict=True):
        assert user_id is not None and re.fullmatch(r"pt-[0-9a-f]{32}", user_id)
        assert key not in entry.raw.decode()
        assert not any(key[i : i + 6] in user_id for i in range(len(key) - 5))


@pytest.mark.slow
def test_an_operator_secret_gives_other_ids(start_proxy: StartProxy, redis_url: str) -> None:
    proxy = start_proxy(AUTH_MODE="passthrough", PASSTHROUGH_USER_ID_SECRET=SECRET)
    record = record_for(redis_url, call(proxy, KEY_ONE)).record

    assert record.user_id == passthrough_user_id(KEY_ONE, SECRET.encode())
    assert record.user_id != passthrough_user_id(KEY_ONE)

