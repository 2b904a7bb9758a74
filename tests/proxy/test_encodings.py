"""Every content encoding, with the official SDK as the client: the client gets the
upstream's bytes, the record gets them decoded; very large answers make bounded records."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.proxy.conftest import RunningProxy, read_records
from tests.proxy.test_sdk import MESSAGES, sdk
from tests.support.fake_payloads import HUGE_PIECE_CHARS, HUGE_PIECES
from tests.support.fake_upstream import FakeUpstream

HUGE_TEXT_CHARS = HUGE_PIECES * HUGE_PIECE_CHARS
ASKED: openai.types.chat.ChatCompletionStreamOptionsParam = {"include_usage": True}


@pytest.mark.parametrize("encoding", ["br", "zstd"])
def test_the_sdk_reads_br_and_zstd_and_the_record_is_decoded(
    proxy: RunningProxy, fake_upstream: FakeUpstream, redis_url: str, encoding: str
) -> None:
    fake_upstream.encodings = fake_upstream.stream_encodings = [encoding]
    client = sdk(proxy)

    plain = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    # Asking for usage itself keeps the proxy from asking the upstream for plain bytes.
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options=ASKED
    )
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    raw = httpx.get(f"{proxy.base_url}/models", headers={"accept-encoding": encoding})

    assert plain.choices[0].message.content == "Hello world!" and streamed == "Hello world!"
    assert raw.headers["content-encoding"] == encoding  # relayed as the upstream sent it
    assert all(r.headers["accept-encoding"] for r in fake_upstream.requests)
    records = [entry.record for entry in read_records(redis_url, 3)]
    bodies = [record.response.body for record in records if record.response]
    assert bodies[0]["choices"][0]["message"]["content"] == "Hello world!"
    assert bodies[1]["choices"][0]["message"]["content"] == "Hello world!"
    assert records[1].response is not None and records[1].response.streaming
    assert records[1].response.headers["content-encoding"] == encoding  # the SSE too
    assert bodies[2]["object"] == "list"
    assert records[0].response is not None
    assert records[0].response.headers["content-encoding"] == encoding


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
def test_a_very_large_answer_reaches_the_sdk_whole_and_the_record_bounded(
    proxy: RunningProxy, fake_upstream: FakeUpstream, redis_url: str, stream: bool
) -> None:
    fake_upstream.chunk_delay_s = 0
    fake_upstream.encodings = fake_upstream.stream_encodings = ["zstd"]
    client = sdk(proxy, timeout_s=60)

    if stream:
        chunks = client.chat.completions.create(
            model="huge", messages=MESSAGES, stream=True, stream_options=ASKED
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    else:
        reply = client.chat.completions.create(model="huge", messages=MESSAGES)
        text = reply.choices[0].message.content or ""

    assert len(text) == HUGE_TEXT_CHARS
    [entry] = read_records(redis_url, 1)
    assert len(entry.raw) <= 3 * 1024 * 1024
    response = entry.record.response
    assert response is not None and response.streaming is stream
    if stream:
        content = response.body["choices"][0]["message"]["content"]
        assert content["truncated"] and content["size"] == HUGE_TEXT_CHARS
        assert content["text"] == text[: len(content["text"])]
    else:
        # A 3 MB JSON body: the record keeps its first RECORD_MAX_BODY_BYTES, marked.
        assert response.body["truncated"] and response.body["size"] > HUGE_TEXT_CHARS
