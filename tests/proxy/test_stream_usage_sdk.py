"""Usage on every stream through the official SDK: the record has it, the client sees no change.

The fake upstream streams as the API does once usage is asked for: ``"usage":null`` on
every chunk (before ``obfuscation`` where there is one), then a usage-only chunk. With
``stable_replies`` two calls with the same request give the same bytes, so the proxied
stream can be compared byte for byte with the same call made directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai
import pytest

from tests.proxy.conftest import CLIENT_KEY, RunningProxy, StartProxy, read_records
from tests.support.fake_upstream import FakeUpstream

MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "user", "content": "Say hello"}
]
ASKED = {"include_usage": True}


@pytest.fixture(autouse=True)
def _stable(fake_upstream: FakeUpstream) -> None:
    fake_upstream.stable_replies = True


def _client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=CLIENT_KEY, max_retries=0, timeout=20)


def _chat_bytes(base_url: str, **options: Any) -> bytes:
    with _client(base_url).chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, **options
    ) as response:
        return b"".join(response.iter_bytes())


def _legacy_bytes(base_url: str, **options: Any) -> bytes:
    with _client(base_url).completions.with_streaming_response.create(
        model="gpt-3.5-turbo-instruct", prompt="Say hello", stream=True, **options
    ) as response:
        return b"".join(response.iter_bytes())


def _usage(stream: bytes) -> dict[str, Any]:
    """The usage of the stream's usage-only chunk."""
    events = [json.loads(line[6:]) for line in stream.splitlines() if line.startswith(b"data: {")]
    [usage] = [event["usage"] for event in events if event.get("usage")]
    return usage  # type: ignore[no-any-return]


@pytest.mark.parametrize("call", [_chat_bytes, _legacy_bytes], ids=["chat", "legacy"])
def test_a_stream_without_usage_gets_it_in_the_record_and_the_client_sees_no_change(
    proxy: RunningProxy, fake_upstream: FakeUpstream, redis_url: str,
    call: Callable[..., bytes],
) -> None:
    direct = call(fake_upstream.base_url)
    direct_with_usage = call(fake_upstream.base_url, stream_options=ASKED)
    assert b'"usage"' not in direct and b'"usage":null' in direct_with_usage

    proxied = call(proxy.base_url)

    assert proxied == direct
    sent = fake_upstream.requests[-1]
    assert sent.json()["stream_options"] == ASKED
    assert int(sent.headers["content-length"]) == len(sent.body)
    [entry] = read_records(redis_url, 1)
    assert entry.record.usage_source == "injected"
    assert entry.record.response is not None
    assert entry.record.response.body["usage"] == _usage(direct_with_usage)
    assert "stream_options" not in entry.record.request.body  # what the client sent
    assert proxy.metric("proxy_stream_usage_untouched_events_total") == 0


def test_the_sdk_reads_the_same_chunks_as_from_the_upstream_directly(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    def chunks(base_url: str) -> list[dict[str, Any]]:
        stream = _client(base_url).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        return [chunk.model_dump() for chunk in stream]

    direct = chunks(fake_upstream.base_url)
    proxied = chunks(proxy.base_url)

    assert proxied == direct
    assert all(chunk["choices"] and chunk["usage"] is None for chunk in proxied)


@pytest.mark.parametrize("call", [_chat_bytes, _legacy_bytes], ids=["chat", "legacy"])
def test_a_client_that_asks_for_usage_gets_every_byte_as_before(
    proxy: RunningProxy, fake_upstream: FakeUpstream, redis_url: str,
    call: Callable[..., bytes],
) -> None:
    direct = call(fake_upstream.base_url, stream_options=ASKED)

    proxied = call(proxy.base_url, stream_options=ASKED)

    assert proxied == direct
    assert fake_upstream.requests[-1].body == fake_upstream.requests[-2].body
    [entry] = read_records(redis_url, 1)
    assert entry.record.usage_source == "upstream"
    assert entry.record.response is not None
    assert entry.record.response.body["usage"] == _usage(direct)


def test_passthrough_sends_the_request_unchanged(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    proxy = start_proxy(STREAM_USAGE="passthrough")
    direct = _chat_bytes(fake_upstream.base_url)

    proxied = _chat_bytes(proxy.base_url)

    assert proxied == direct
    assert fake_upstream.requests[-1].body == fake_upstream.requests[-2].body
    [entry] = read_records(redis_url, 1)
    assert entry.record.response is not None and entry.record.response.body["usage"] is None
    assert "usage_source" not in json.loads(entry.raw)


def test_plain_calls_and_the_responses_api_are_left_as_they_are(
    proxy: RunningProxy, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    client = _client(proxy.base_url)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with client.responses.stream(model="gpt-4o-mini", input="Say hello") as stream:
        final = stream.get_final_response()

    assert final.usage is not None
    assert all("stream_options" not in seen.json() for seen in fake_upstream.requests)
    plain, responses = read_records(redis_url, 2)
    assert plain.record.usage_source == responses.record.usage_source == "upstream"


def test_an_upstream_that_compresses_streams_is_asked_for_plain_bytes_when_usage_is_injected(
    proxy: RunningProxy, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    fake_upstream.stream_encodings = ["gzip"]

    proxied = _chat_bytes(proxy.base_url)
    direct = _chat_bytes(fake_upstream.base_url)  # gzip: the SDK's bytes are decoded ones

    assert fake_upstream.requests[0].headers["accept-encoding"] == "identity"
    assert proxied == direct  # the same decoded stream, without the usage the proxy asked for
    assert b'"usage"' not in proxied
    [entry] = read_records(redis_url, 1)
    assert entry.record.usage_source == "injected"
