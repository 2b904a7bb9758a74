"""The fake upstream behaves like the OpenAI API, seen through the official SDK and raw HTTP."""

from __future__ import annotations

import gzip
import itertools
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.support.fake_upstream import FakeUpstream


@pytest.fixture
def client(fake_upstream: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake_upstream.base_url, api_key="sk-test", max_retries=0)


def test_chat_plain_and_streamed_through_the_sdk(client: openai.OpenAI) -> None:
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": "Say hello"}
    ]
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert plain.id.startswith("chatcmpl-")
    assert plain.model == "gpt-4o-mini"
    assert plain.choices[0].message.content == "Hello world!"
    assert plain.choices[0].finish_reason == "stop"
    assert plain.usage is not None and plain.usage.completion_tokens == 3

    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello world!"
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_embeddings_models_and_files_through_the_sdk(
    client: openai.OpenAI, fake_upstream: FakeUpstream
) -> None:
    embeddings = client.embeddings.create(model="text-embedding-3-small", input=["a", "b", "c"])
    assert [e.index for e in embeddings.data] == [0, 1, 2]
    assert len(embeddings.data[0].embedding) == 8
    assert "gpt-4o-mini" in [m.id for m in client.models.list()]
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    assert client.models.delete("ft:gpt-4o:org::abc").deleted is True

    upload = client.files.create(file=("data.jsonl", b"x" * 12345), purpose="batch")
    assert upload.bytes == 12345 and upload.filename == "data.jsonl"
    assert fake_upstream.requests[-1].path == "/v1/files"
    assert b"x" * 12345 in fake_upstream.requests[-1].body


def test_responses_stream_through_the_sdk(client: openai.OpenAI) -> None:
    with client.responses.stream(model="gpt-4o-mini", input="Say hello") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 3
    assert final.output_text == "Hello world!"
    assert final.usage is not None and final.usage.output_tokens == 3


def test_error_models_reach_the_sdk_as_its_exceptions(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as server_error:
        client.chat.completions.create(model="error-500", messages=[])
    assert server_error.value.message.endswith(
        "The server had an error while processing your request."
    )
    with pytest.raises(openai.RateLimitError) as rate_limited:
        client.chat.completions.create(model="error-429", messages=[])
    assert rate_limited.value.response.headers["retry-after"] == "1"
    assert rate_limited.value.code == "rate_limit_exceeded"


def test_stream_chunks_arrive_spaced_by_the_chunk_delay(fake_upstream: FakeUpstream) -> None:
    fake_upstream.chunk_delay_s = 0.15
    body = {"model": "gpt-4o-mini", "messages": [], "stream": True}
    arrivals: list[float] = []
    with httpx.stream("POST", f"{fake_upstream.base_url}/chat/completions", json=body) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        for _ in resp.iter_raw():
            arrivals.append(time.monotonic())
    # Six events (role, three pieces, finish, [DONE]): five delays between them.
    assert arrivals[-1] - arrivals[0] >= 5 * 0.15 * 0.9
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert sum(gap > 0.1 for gap in gaps) >= 3, "the events came in one burst"


def test_long_stream_counts_a_client_that_goes_away(fake_upstream: FakeUpstream) -> None:
    body = {"model": "long-stream", "messages": [], "stream": True}
    with httpx.stream("POST", f"{fake_upstream.base_url}/chat/completions", json=body) as resp:
        lines: Iterator[str] = resp.iter_lines()
        assert next(lines).startswith("data: ")
    fake_upstream.wait_for(lambda: fake_upstream.disconnects == 1)


def test_slow_model_outlasts_a_short_client_timeout(fake_upstream: FakeUpstream) -> None:
    body = {"model": "slow", "messages": []}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{fake_upstream.base_url}/chat/completions", json=body, timeout=0.3)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
def test_echo_reports_method_path_query_and_headers(
    fake_upstream: FakeUpstream, method: str
) -> None:
    resp = httpx.request(
        method,
        f"{fake_upstream.base_url}/echo/a/b",
        params={"q": "1", "r": "x y"},
        headers={"OpenAI-Organization": "org-1"},
    )
    assert resp.status_code == 200
    if method == "HEAD":
        assert resp.content == b"" and resp.headers["content-type"] == "application/json"
        return
    echoed = resp.json()
    assert echoed["method"] == method
    assert echoed["path"] == "/v1/echo/a/b"
    assert echoed["query"] == "q=1&r=x+y"
    assert echoed["headers"]["openai-organization"] == "org-1"


def test_json_is_gzipped_when_accepted_and_sse_is_not(fake_upstream: FakeUpstream) -> None:
    url = f"{fake_upstream.base_url}/chat/completions"
    with httpx.stream("POST", url, json={"model": "m", "messages": []}) as resp:
        assert resp.headers["content-encoding"] == "gzip"
        assert gzip.decompress(b"".join(resp.iter_raw())).startswith(b"{")
    with httpx.stream("POST", url, json={"model": "m", "messages": [], "stream": True}) as resp:
        assert "content-encoding" not in resp.headers
        assert b"".join(resp.iter_raw()).startswith(b"data: ")
    plain = httpx.post(url, json={"model": "m"}, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json()["object"] == "chat.completion"


def test_requests_are_recorded_with_body_and_chunked_flag(fake_upstream: FakeUpstream) -> None:
    def pieces() -> Iterator[bytes]:
        yield b'{"model": "gpt-4o-mini", '
        yield b'"input": "hello"}'

    httpx.post(
        f"{fake_upstream.base_url}/embeddings?x=1",
        content=pieces(),
        headers={"content-type": "application/json", "authorization": "Bearer sk-up"},
    )
    seen = fake_upstream.requests[-1]
    assert (seen.method, seen.path, seen.query) == ("POST", "/v1/embeddings", "x=1")
    assert seen.chunked is True
    assert seen.json() == {"model": "gpt-4o-mini", "input": "hello"}
    assert seen.headers["authorization"] == "Bearer sk-up"

    fake_upstream.reset()
    assert fake_upstream.requests == [] and fake_upstream.chunk_delay_s == 0.01
