"""The record each exchange publishes to the Redis stream, and what happens when it cannot."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import openai
import pytest

from shared.record import REDACTED, SCHEMA_VERSION
from tests.proxy.conftest import (
    CLIENT_KEY,
    UPSTREAM_KEY,
    RunningProxy,
    StartProxy,
    read_records,
    record_for,
)
from tests.support.fake_upstream import FakeUpstream
from tests.support.redis_server import RedisServer

PROMPT = f"Say hello. By the way my key is {CLIENT_KEY} and theirs {UPSTREAM_KEY}"


@pytest.mark.slow
def test_the_record_has_every_field_right_and_no_secret(
    proxy: RunningProxy, redis_url: str
) -> None:
    before = datetime.now(UTC)
    client = openai.OpenAI(base_url=proxy.base_url, api_key=CLIENT_KEY, max_retries=0)

    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": PROMPT}],
        extra_headers={"openai-organization": "org-1", "cookie": "session=abc123456789"},
        extra_query={"trace": "yes"},
    )
    reply = raw.parse()

    [entry] = read_records(redis_url, 1)
    record = entry.record
    assert record.schema_version == SCHEMA_VERSION
    assert record.id == raw.headers["x-proxy-record-id"]
    assert before - timedelta(seconds=1) <= record.timestamp <= datetime.now(UTC)
    assert record.timestamp.utcoffset() == timedelta(0)
    assert record.user_id is None
    assert record.model == "gpt-4o-mini"
    assert record.duration_ms is not None and 0 < record.duration_ms < 10_000
    request = record.request
    assert (request.method, request.path, request.query) == (
        "POST", "/v1/chat/completions", "trace=yes"
    )
    assert request.headers["authorization"] == REDACTED
    assert request.headers["cookie"] == REDACTED
    assert request.headers["openai-organization"] == "org-1"
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["messages"][0]["content"].startswith("Say hello.")
    assert record.response is not None
    assert record.response.status_code == 200
    assert record.response.streaming is False
    assert record.response.headers["content-type"] == "application/json"
    assert record.response.body == reply.model_dump(exclude_unset=True)
    assert record.error is None
    # No secret anywhere in the raw stream entry, even where the client pasted one.
    assert UPSTREAM_KEY.encode() not in entry.raw
    assert CLIENT_KEY.encode() not in entry.raw


@pytest.mark.slow
def test_every_response_carries_the_record_id(
    proxy: RunningProxy, redis_url: str
) -> None:
    ids = {
        httpx.get(f"{proxy.base_url}/models").headers["x-proxy-record-id"],
        httpx.get(f"{proxy.base_url}/no/such/route").headers["x-proxy-record-id"],
    }

    assert len(ids) == 2
    assert {entry.record.id for entry in read_records(redis_url, 2)} == ids


@pytest.mark.slow
def test_redis_down_the_call_still_succeeds_and_the_record_is_spooled(
    proxy: RunningProxy, redis_server: RedisServer
) -> None:
    redis_server.stop()
    client = openai.OpenAI(base_url=proxy.base_url, api_key=CLIENT_KEY, max_retries=0)

    started = time.monotonic()
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )

    assert reply.choices[0].message.content == "Hello world!"
    assert time.monotonic() - started < 2  # never waits on Redis
    proxy.wait_for_metric("proxy_records_spooled_total", 1)
    assert proxy.metric("proxy_record_publish_failures_total") == 1
    assert proxy.metric("proxy_records_dropped_total") == 0
    assert proxy.metric("proxy_records_published_total") == 0
    health = httpx.get(f"{proxy.url}/health").json()
    assert health["redis"]["reachable"] is False and health["spooling"] is True
    proxy.wait_for_log("record_publish_failed")
    assert UPSTREAM_KEY not in proxy.log() and CLIENT_KEY not in proxy.log()


@pytest.fixture
def keyed_proxy(start_proxy: StartProxy) -> RunningProxy:
    keys = "pk-alice-0123456789=alice,pk-bob-98765=bob"
    return start_proxy(AUTH_MODE="keys", PROXY_API_KEYS=keys)


@pytest.mark.slow
def test_keys_mode_names_the_user_and_injects_the_upstream_key(
    keyed_proxy: RunningProxy, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    client = openai.OpenAI(
        base_url=keyed_proxy.base_url, api_key="pk-alice-0123456789", max_retries=0
    )
    client.models.list()
    httpx.get(f"{keyed_proxy.base_url}/models", headers={"api-key": "pk-bob-98765"})

    first, second = read_records(redis_url, 2)
    assert (first.record.user_id, second.record.user_id) == ("alice", "bob")
    for seen in fake_upstream.requests:
        assert seen.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
        assert "api-key" not in seen.headers
    for entry in (first, second):
        assert b"pk-alice-0123456789" not in entry.raw and b"pk-bob-98765" not in entry.raw


@pytest.mark.slow
@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer pk-wrong-000000000"}])
def test_keys_mode_refuses_a_missing_or_unknown_key(
    keyed_proxy: RunningProxy,
    fake_upstream: FakeUpstream,
    redis_url: str,
    headers: dict[str, str],
) -> None:
    response = httpx.get(f"{keyed_proxy.base_url}/models", headers=headers)

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key" and set(error) == {"message", "type", "code"}
    assert fake_upstream.requests == []
    entry = record_for(redis_url, response.headers["x-proxy-record-id"])
    assert entry.record.user_id is None
    assert entry.record.response is not None and entry.record.response.status_code == 401
    assert b"pk-wrong-000000000" not in entry.raw


@pytest.mark.slow
def test_keys_mode_through_the_sdk_raises_authentication_error(
    keyed_proxy: RunningProxy,
) -> None:
    client = openai.OpenAI(base_url=keyed_proxy.base_url, api_key="pk-nope-1234", max_retries=0)

    with pytest.raises(openai.AuthenticationError):
        client.models.list()
