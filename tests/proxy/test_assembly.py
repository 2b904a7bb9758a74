"""Stream assembly: a streamed response becomes what the plain call would have returned."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import openai
import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from proxy.capture.assembly import (
    ChatCompletionAssembler,
    CompletionAssembler,
    EventListAssembler,
    ResponsesAssembler,
    assembler_for,
)
from tests.support.fake_upstream import FakeUpstream

Json = dict[str, Any]

# -- realistic streams, in the shapes of the OpenAI API reference --------------------------

CHAT_HEAD: Json = {
    "id": "chatcmpl-123",
    "object": "chat.completion.chunk",
    "created": 1694268190,
    "model": "gpt-4o-mini-2024-07-18",
    "service_tier": "default",
    "system_fingerprint": "fp_44709d6fcb",
}
USAGE: Json = {
    "prompt_tokens": 9,
    "completion_tokens": 12,
    "total_tokens": 21,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}


def chunk(*choices: Json, **extra: Any) -> Json:
    return {**CHAT_HEAD, "choices": list(choices), **extra}


def delta(index: int = 0, finish: str | None = None, logprobs: Any = None, **fields: Any) -> Json:
    return {"index": index, "delta": fields, "logprobs": logprobs, "finish_reason": finish}


def sse(*payloads: Json | str, events: list[str] | None = None, line_end: str = "\n") -> bytes:
    frames = []
    for position, payload in enumerate(payloads):
        data = payload if isinstance(payload, str) else json.dumps(payload)
        head = f"event: {events[position]}{line_end}" if events else ""
        frames.append(f"{head}data: {data}{line_end}{line_end}")
    return "".join(frames).encode()


TEXT_STREAM: list[Json | str] = [
    chunk(delta(role="assistant", content="", refusal=None)),
    chunk(delta(content="Hello")),
    chunk(delta(content="! How can I help")),
    chunk(delta(content=" you today? \u00e9\U0001f600")),
    chunk(delta(finish="stop")),
    {**CHAT_HEAD, "choices": [], "usage": USAGE},
    "[DONE]",
]
TEXT_RESULT: Json = {
    "id": "chatcmpl-123",
    "object": "chat.completion",
    "created": 1694268190,
    "model": "gpt-4o-mini-2024-07-18",
    "service_tier": "default",
    "system_fingerprint": "fp_44709d6fcb",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! How can I help you today? \u00e9\U0001f600",
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": USAGE,
}


TOOL_STREAM: list[Json | str] = [
    chunk(
        delta(
            role="assistant",
            content=None,
            tool_calls=[
                {
                    "index": 0,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ],
        )
    ),
    chunk(delta(tool_calls=[{"index": 0, "function": {"arguments": '{"location": '}}])),
    chunk(delta(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}])),
    chunk(
        delta(
            tool_calls=[
                {
                    "index": 1,
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": ""},
                }
            ]
        )
    ),
    chunk(delta(tool_calls=[{"index": 1, "function": {"arguments": '{"tz": "CET"}'}}])),
    chunk(delta(finish="tool_calls")),
    "[DONE]",
]


def logprob(token: str) -> Json:
    return {"token": token, "logprob": -0.5, "bytes": list(token.encode()), "top_logprobs": []}


SPECIAL_STREAM: list[Json | str] = [
    # n=2, interleaved: choice 0 refuses (with logprobs), choice 1 uses a legacy function_call.
    chunk(delta(0, role="assistant", content=None, refusal="")),
    chunk(delta(1, role="assistant", content=None, function_call={"name": "f", "arguments": ""})),
    chunk(delta(0, refusal="I'm sorry", logprobs={"content": None, "refusal": [logprob("I")]})),
    chunk(delta(1, function_call={"arguments": '{"x":'})),
    chunk(delta(0, refusal=", no.", logprobs={"content": None, "refusal": [logprob(", no.")]})),
    chunk(delta(1, function_call={"arguments": " 1}"})),
    chunk(delta(0, finish="stop")),
    chunk(delta(1, finish="function_call")),
    "[DONE]",
]

LEGACY_HEAD: Json = {
    "id": "cmpl-7i",
    "object": "text_completion",
    "created": 1690759702,
    "model": "gpt-3.5-turbo-instruct",
}
LEGACY_STREAM: list[Json | str] = [
    {
        **LEGACY_HEAD,
        "choices": [{"text": "This", "index": 0, "logprobs": None, "finish_reason": None}],
    },
    {
        **LEGACY_HEAD,
        "choices": [{"text": " is", "index": 1, "logprobs": None, "finish_reason": None}],
    },
    {
        **LEGACY_HEAD,
        "choices": [{"text": " a test", "index": 0, "logprobs": None, "finish_reason": None}],
    },
    {
        **LEGACY_HEAD,
        "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "length"}],
    },
    {
        **LEGACY_HEAD,
        "choices": [{"text": "", "index": 1, "logprobs": None, "finish_reason": "stop"}],
    },
    {
        **LEGACY_HEAD,
        "choices": [],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    },
    "[DONE]",
]

RESPONSE_HEAD: Json = {
    "id": "resp_67c9",
    "object": "response",
    "created_at": 1741290958,
    "model": "gpt-4.1-2025-04-14",
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "tools": [],
}
MESSAGE_ID = "msg_67c9"
FINAL_TEXT_PART: Json = {"type": "output_text", "text": "Hi there!", "annotations": []}
FINAL_MESSAGE: Json = {
    "id": MESSAGE_ID,
    "type": "message",
    "status": "completed",
    "role": "assistant",
    "content": [FINAL_TEXT_PART],
}
FINAL_CALL: Json = {
    "id": "fc_1",
    "type": "function_call",
    "status": "completed",
    "call_id": "call_1",
    "name": "get_weather",
    "arguments": '{"city": "Oslo"}',
}
FINAL_RESPONSE: Json = {
    **RESPONSE_HEAD,
    "status": "completed",
    "output": [FINAL_MESSAGE, FINAL_CALL],
    "usage": {"input_tokens": 36, "output_tokens": 87, "total_tokens": 123},
}


def text_event(kind: str, **fields: Any) -> Json:
    return {"type": kind, "item_id": MESSAGE_ID, "output_index": 0, "content_index": 0, **fields}


RESPONSE_EVENTS: list[Json] = [
    {
        "type": "response.created",
        "response": {**RESPONSE_HEAD, "status": "in_progress", "output": []},
    },
    {
        "type": "response.in_progress",
        "response": {**RESPONSE_HEAD, "status": "in_progress", "output": []},
    },
    {
        "type": "response.output_item.added",
        "output_index": 0,
        "item": {**FINAL_MESSAGE, "status": "in_progress", "content": []},
    },
    text_event("response.content_part.added", part={**FINAL_TEXT_PART, "text": ""}),
    text_event("response.output_text.delta", delta="Hi"),
    text_event("response.output_text.delta", delta=" there!"),
    text_event("response.output_text.done", text="Hi there!"),
    text_event("response.content_part.done", part=FINAL_TEXT_PART),
    {"type": "response.output_item.done", "output_index": 0, "item": FINAL_MESSAGE},
    {
        "type": "response.output_item.added",
        "output_index": 1,
        "item": {**FINAL_CALL, "status": "in_progress", "arguments": ""},
    },
    {
        "type": "response.function_call_arguments.delta",
        "item_id": "fc_1",
        "output_index": 1,
        "delta": '{"city":',
    },
    {
        "type": "response.function_call_arguments.delta",
        "item_id": "fc_1",
        "output_index": 1,
        "delta": ' "Oslo"}',
    },
    {
        "type": "response.function_call_arguments.done",
        "item_id": "fc_1",
        "output_index": 1,
        "arguments": '{"city": "Oslo"}',
    },
    {"type": "response.output_item.done", "output_index": 1, "item": FINAL_CALL},
    {"type": "response.completed", "response": FINAL_RESPONSE},
]


def response_stream(events: list[Json], line_end: str = "\n") -> bytes:
    numbered = [{**event, "sequence_number": n} for n, event in enumerate(events)]
    return sse(*numbered, events=[e["type"] for e in events], line_end=line_end)


def assemble(path: str, data: bytes, cuts: list[int] | None = None) -> Any:
    assembler = assembler_for(path)
    start = 0
    for cut in [*sorted(cuts or []), len(data)]:
        assembler.feed(data[start:cut])
        start = cut
    return assembler.result()


STREAMS = {
    "chat text": ("/v1/chat/completions", sse(*TEXT_STREAM)),
    "chat tools": ("/v1/chat/completions", sse(*TOOL_STREAM)),
    "chat n=2, refusal, function_call": ("/v1/chat/completions", sse(*SPECIAL_STREAM)),
    "legacy": ("/v1/completions", sse(*LEGACY_STREAM)),
    "responses": ("/v1/responses", response_stream(RESPONSE_EVENTS)),
}

# -- unit tests ------------------------------------------------------------------------------


def test_chat_text_stream_assembles_to_the_completion() -> None:
    assert assemble("/v1/chat/completions", sse(*TEXT_STREAM)) == TEXT_RESULT


def test_chat_tool_calls_assemble_by_index() -> None:
    result = assemble("/v1/chat/completions", sse(*TOOL_STREAM))
    (choice,) = result["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
            },
            {
                "id": "call_b",
                "type": "function",
                "function": {"name": "get_time", "arguments": '{"tz": "CET"}'},
            },
        ],
    }
    assert result["usage"] is None


def test_interleaved_choices_refusal_logprobs_and_function_call() -> None:
    first, second = assemble("/v1/chat/completions", sse(*SPECIAL_STREAM))["choices"]
    assert first["message"] == {"role": "assistant", "content": None, "refusal": "I'm sorry, no."}
    assert first["logprobs"] == {"content": None, "refusal": [logprob("I"), logprob(", no.")]}
    assert first["finish_reason"] == "stop"
    assert second["message"]["function_call"] == {"name": "f", "arguments": '{"x": 1}'}
    assert second["finish_reason"] == "function_call"


def test_legacy_completions_assemble_text_per_choice() -> None:
    result = assemble("/v1/completions", sse(*LEGACY_STREAM))
    assert result == {
        "id": "cmpl-7i",
        "object": "text_completion",
        "created": 1690759702,
        "model": "gpt-3.5-turbo-instruct",
        "system_fingerprint": None,
        "choices": [
            {"text": "This a test", "index": 0, "logprobs": None, "finish_reason": "length"},
            {"text": " is", "index": 1, "logprobs": None, "finish_reason": "stop"},
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


def test_responses_stream_gives_the_completed_response() -> None:
    assert assemble("/v1/responses", response_stream(RESPONSE_EVENTS)) == FINAL_RESPONSE


def test_responses_incomplete_and_failed_are_final_too() -> None:
    incomplete = {**FINAL_RESPONSE, "status": "incomplete"}
    events = [*RESPONSE_EVENTS[:-1], {"type": "response.incomplete", "response": incomplete}]
    assert assemble("/v1/responses", response_stream(events)) == incomplete


def test_responses_stream_cut_short_keeps_the_text_and_arguments_so_far() -> None:
    # Cut after "Hi" and after the first piece of the function call's arguments.
    events = [*RESPONSE_EVENTS[:5], *RESPONSE_EVENTS[9:11]]
    result = assemble("/v1/responses", response_stream(events))
    assert result["id"] == "resp_67c9" and result["status"] == "in_progress"
    message, call = result["output"]
    assert message["content"] == [{"type": "output_text", "text": "Hi", "annotations": []}]
    assert call["arguments"] == '{"city":' and call["name"] == "get_weather"


def test_responses_error_event_is_kept_when_the_stream_fails() -> None:
    error = {"type": "error", "code": "server_error", "message": "boom", "param": None}
    result = assemble("/v1/responses", response_stream([*RESPONSE_EVENTS[:2], error]))
    assert result["error"] == {"code": "server_error", "message": "boom"}
    assert result["output"] == []


def test_chat_stream_cut_short_keeps_what_arrived() -> None:
    data = sse(*TEXT_STREAM)
    cut = data.index(b"! How can")
    result = assemble("/v1/chat/completions", data[:cut])
    assert result["choices"][0]["message"]["content"] == "Hello"
    assert result["choices"][0]["finish_reason"] is None
    assert result["usage"] is None


def test_chat_error_event_mid_stream_is_kept() -> None:
    error = {"error": {"message": "overloaded", "type": "server_error", "code": None}}
    result = assemble("/v1/chat/completions", sse(*TEXT_STREAM[:2], error))
    assert result["error"] == error["error"]
    assert result["choices"][0]["message"]["content"] == "Hello"


@pytest.mark.parametrize("name", list(STREAMS))
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_random_byte_splits_give_the_same_result(name: str, line_end: str) -> None:
    path, data = STREAMS[name]
    data = data.replace(b"\n", line_end.encode())
    whole = assemble(path, data)
    rng = random.Random(name)
    for _ in range(50):
        cuts = rng.sample(range(1, len(data)), rng.randint(1, 60))
        assert assemble(path, data, cuts) == whole
    assert assemble(path, data, list(range(1, len(data)))) == whole


def test_result_can_be_asked_twice() -> None:
    assembler = ChatCompletionAssembler()
    assembler.feed(sse(*TEXT_STREAM))
    assert assembler.result() == assembler.result() == TEXT_RESULT


def test_unknown_endpoints_keep_every_event() -> None:
    data = sse(
        {"id": "run_1", "object": "thread.run"}, "not json", "[DONE]", events=["a", "b", "c"]
    )
    assert assemble("/v1/threads/runs", data) == {
        "events": [{"id": "run_1", "object": "thread.run"}, "not json", "[DONE]"]
    }


def test_last_event_without_blank_line_counts() -> None:
    data = sse(*TEXT_STREAM[:-2]) + b"data: " + json.dumps(TEXT_STREAM[-2]).encode()
    assert assemble("/v1/chat/completions", data)["usage"] == USAGE


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/v1/chat/completions", ChatCompletionAssembler),
        ("/v1/chat/completions/", ChatCompletionAssembler),
        ("/openai/deployments/gpt4/chat/completions", ChatCompletionAssembler),
        ("/v1/completions", CompletionAssembler),
        ("/v1/responses", ResponsesAssembler),
        ("/v1/responses/resp_123", ResponsesAssembler),
        ("/v1/responses/resp_123/input_items", EventListAssembler),
        ("/v1/threads/thread_1/runs", EventListAssembler),
        ("/v1/audio/speech", EventListAssembler),
    ],
)
def test_assembler_for_picks_by_path(path: str, kind: type) -> None:
    assert isinstance(assembler_for(path), kind)


# -- against the SDK: the assembled stream equals the plain call -----------------------------


@pytest.fixture
def client(fake_upstream: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake_upstream.base_url, api_key="sk-test", max_retries=0)


WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}


@pytest.mark.parametrize(
    "extra",
    [{}, {"tools": [WEATHER_TOOL]}, {"n": 2}],
    ids=["text", "tools", "n=2"],
)
def test_sdk_stream_assembles_to_the_plain_chat_completion(
    client: openai.OpenAI, extra: Json
) -> None:
    request: Any = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        **extra,
    }
    plain = client.chat.completions.create(**request)
    assembler = assembler_for("/v1/chat/completions")
    with client.chat.completions.with_streaming_response.create(
        **request, stream=True, stream_options={"include_usage": True}
    ) as streamed:
        for data in streamed.iter_bytes():
            assembler.feed(data)
    assembled = ChatCompletion.model_validate(assembler.result())

    assert assembled.model == plain.model and assembled.id.startswith("chatcmpl-")
    assert assembled.usage == plain.usage
    assert len(assembled.choices) == len(plain.choices) == extra.get("n", 1)
    for got, want in zip(assembled.choices, plain.choices, strict=True):
        assert got.finish_reason == want.finish_reason
        assert got.message.content == want.message.content
        got_calls = [(c.type, c.model_dump()["function"]) for c in got.message.tool_calls or []]
        want_calls = [(c.type, c.model_dump()["function"]) for c in want.message.tool_calls or []]
        assert got_calls == want_calls
        assert all(c.id.startswith("call_") for c in got.message.tool_calls or [])


def test_sdk_stream_assembles_to_the_plain_legacy_completion(client: openai.OpenAI) -> None:
    plain = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hello")
    assembler = assembler_for("/v1/completions")
    with client.completions.with_streaming_response.create(
        model="gpt-3.5-turbo-instruct",
        prompt="Say hello",
        stream=True,
        stream_options={"include_usage": True},
    ) as streamed:
        for data in streamed.iter_bytes():
            assembler.feed(data)
    assembled = Completion.model_validate(assembler.result())
    assert [c.text for c in assembled.choices] == [c.text for c in plain.choices]
    assert assembled.choices[0].finish_reason == plain.choices[0].finish_reason
    assert assembled.usage == plain.usage


def test_sdk_stream_assembles_to_the_plain_response(client: openai.OpenAI) -> None:
    plain = client.responses.create(model="gpt-4o-mini", input="Say hello")
    assembler = assembler_for("/v1/responses")
    with client.responses.with_streaming_response.create(
        model="gpt-4o-mini", input="Say hello", stream=True
    ) as streamed:
        for data in streamed.iter_bytes():
            assembler.feed(data)
    assembled = Response.model_validate(assembler.result())
    assert assembled.output_text == plain.output_text == "Hello world!"
    assert assembled.status == "completed"
    assert assembled.usage == plain.usage


def test_stream_cut_by_the_client_assembles_what_arrived(fake_upstream: FakeUpstream) -> None:
    assembler = assembler_for("/v1/chat/completions")
    body = {"model": "long-stream", "messages": [], "stream": True}
    with httpx.stream("POST", f"{fake_upstream.base_url}/chat/completions", json=body) as resp:
        for data in resp.iter_raw():
            assembler.feed(data)
            if b"token3 " in data:
                break
    fake_upstream.wait_for(lambda: fake_upstream.disconnects == 1)
    (choice,) = assembler.result()["choices"]
    assert choice["message"]["content"] == "token0 token1 token2 token3 "
    assert choice["finish_reason"] is None
