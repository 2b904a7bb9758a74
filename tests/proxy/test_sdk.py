"""The official ``openai`` SDK through the real proxy: answers, streams and errors."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.proxy.conftest import CLIENT_KEY, RunningProxy, StartProxy, read_records
from tests.support.fake_upstream import ERROR_429, ERROR_500, FakeUpstream
from tests.support.ports import free_port

MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "user", "content": "Say hello"}
]


def sdk(proxy: RunningProxy, timeout_s: float = 20.0) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=proxy.base_url, api_key=CLIENT_KEY, max_retries=0, timeout=timeout_s
    )


@pytest.mark.slow
def test_chat_completion_plain(proxy: RunningProxy, redis_url: str) -> None:
    reply = sdk(proxy).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert reply.choices[0].message.content == "Hello world!"
    [entry] = read_records(redis_url, 1)
    assert entry.record.response is not None
    assert entry.record.response.body["choices"][0]["message"]["content"] == "Hello world!"
    assert entry.record.response.streaming is False


@pytest.mark.slow
def test_chat_completion_streamed_is_assembled_in_the_record(
    proxy: RunningProxy, redis_url: str
) -> None:
    stream = sdk(proxy).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    assert text == "Hello world!"
    [entry] = read_records(redis_url, 1)
    response = entry.record.response
    assert response is not None and response.streaming is True
    assert response.body["choices"][0]["message"]["content"] == "Hello world!"
    assert response.body["choices"][0]["finish_reason"] == "stop"
    assert entry.record.error is None


@pytest.mark.slow
def test_embeddings(proxy: RunningProxy, redis_url: str) -> None:
    result = sdk(proxy).embeddings.create(model="text-embedding-3-small", input=["a", "b"])

    assert [item.index for item in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 8
    [entry] = read_records(redis_url, 1)
    assert entry.record.model == "text-embedding-3-small"


@pytest.mark.slow
def test_models_list_and_retrieve(proxy: RunningProxy, redis_url: str) -> None:
    client = sdk(proxy)
    names = [model.id for model in client.models.list()]
    one = client.models.retrieve("gpt-4o")

    assert "gpt-4o-mini" in names
    assert one.id == "gpt-4o"
    listed, retrieved = read_records(redis_url, 2)
    assert listed.record.model is None
    assert retrieved.record.model == "gpt-4o"
    assert retrieved.record.request.method == "GET"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "error", "status", "body"),
    [
        ("error-500", openai.InternalServerError, 500, ERROR_500),
        ("error-429", openai.RateLimitError, 429, ERROR_429),
    ],
)
def test_upstream_errors_pass_through_unchanged(
    proxy: RunningProxy,
    redis_url: str,
    model: str,
    error: type[openai.APIStatusError],
    status: int,
    body: dict[str, object],
) -> None:
    with pytest.raises(error) as caught:
        sdk(proxy).chat.completions.create(model=model, messages=MESSAGES)

    assert caught.value.status_code == status
    assert caught.value.body == body["error"]
    assert body["error"]["message"] in str(caught.value)  # type: ignore[index]
    [entry] = read_records(redis_url, 1)
    assert entry.record.response is not None
    assert entry.record.response.status_code == status
    assert entry.record.response.body == body
    assert entry.record.error is None


@pytest.mark.slow
def test_upstream_down_is_502_in_openai_shape(
    start_proxy: StartProxy, redis_url: str
) -> None:
    proxy = start_proxy(OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1")

    with pytest.raises(openai.APIStatusError) as caught:
        sdk(proxy).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert caught.value.status_code == 502
    assert caught.value.response.headers["x-proxy-record-id"]
    error = caught.value.response.json()["error"]
    assert set(error) == {"message", "type", "code"}
    assert error["code"] == "upstream_unreachable"
    [entry] = read_records(redis_url, 1)
    assert entry.record.id == caught.value.response.headers["x-proxy-record-id"]
    assert entry.record.error is not None
    assert entry.record.error.type == "upstream_unreachable"
    assert entry.record.response is not None and entry.record.response.status_code == 502


@pytest.mark.slow
def test_upstream_timeout_is_504_and_the_upstream_call_is_closed(
    start_proxy: StartProxy, fake_upstream: FakeUpstream, redis_url: str
) -> None:
    proxy = start_proxy(UPSTREAM_READ_TIMEOUT_S="0.5")

    response = httpx.post(
        f"{proxy.base_url}/chat/completions",
        json={"model": "slow", "messages": MESSAGES},
        timeout=10,
    )

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert response.elapsed.total_seconds() < 3
    [entry] = read_records(redis_url, 1)
    assert entry.record.error is not None and entry.record.error.type == "upstream_timeout"
    assert entry.record.model == "slow"
    assert json.loads(entry.raw)["response"]["status_code"] == 504
