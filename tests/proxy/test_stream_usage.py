"""Asking for usage, and giving the client the stream it would have had without asking."""

from __future__ import annotations

import json
from typing import Any

import pytest

from proxy.settings import ProxySettings
from proxy.stream_usage import UsageStreamFilter, ask_for_usage
from tests.support.fake_payloads import ChatReply, LegacyReply

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}


def test_a_stream_that_does_not_ask_gains_the_member_and_keeps_every_byte() -> None:
    body = b' { "model": "gpt-4o", "stream": true, "messages": [{"content": "\\u00e9 1.0e5"}]}'

    asked = ask_for_usage(body)

    assert asked == b' {"stream_options":{"include_usage":true}, "model": "gpt-4o", ' \
        b'"stream": true, "messages": [{"content": "\\u00e9 1.0e5"}]}'


@pytest.mark.parametrize(
    ("options", "sent"),
    [
        (None, {"include_usage": True}),
        ({}, {"include_usage": True}),
        ({"include_usage": False}, {"include_usage": True}),
        ({"include_obfuscation": False}, {"include_obfuscation": False, "include_usage": True}),
    ],
)
def test_stream_options_that_do_not_ask_are_completed(
    options: dict[str, Any] | None, sent: dict[str, Any]
) -> None:
    body = {**CHAT, "stream": True, "stream_options": options}

    asked = ask_for_usage(json.dumps(body).encode())

    assert asked is not None
    assert json.loads(asked) == {**body, "stream_options": sent}


@pytest.mark.parametrize(
    "body",
    [
        {**CHAT, "stream": True, "stream_options": {"include_usage": True}},  # asks already
        {**CHAT, "stream": True, "stream_options": "yes"},  # the upstream's to judge
        {**CHAT, "stream": False},
        {**CHAT, "stream": "true"},
        CHAT,
        [{"stream": True}],
    ],
)
def test_other_bodies_are_left_alone(body: Any) -> None:
    assert ask_for_usage(json.dumps(body).encode()) is None


@pytest.mark.parametrize("value", [b"1e400", b'"\\ud800"'])
def test_a_body_that_cannot_be_written_back_is_left_alone(value: bytes) -> None:
    body = b'{"stream":true,"stream_options":{},"x":%s}' % value
    assert ask_for_usage(body) is None


def test_a_body_that_is_not_json_is_left_alone() -> None:
    assert ask_for_usage(b'{"stream": true,') is None
    assert ask_for_usage(b"\x1f\x8b compressed") is None
    assert ask_for_usage(json.dumps({**CHAT, "stream": True}).encode("utf-16")) is None


def _stream(reply: ChatReply | LegacyReply) -> bytes:
    return b"".join(reply.events())


def _replies(body: dict[str, Any]) -> tuple[bytes, bytes]:
    """The upstream's stream when usage is asked for, and the one when it is not."""
    kind = LegacyReply if "prompt" in body else ChatReply
    asked = {**body, "stream": True, "stream_options": {"include_usage": True}}
    return _stream(kind(asked, stable=True)), _stream(kind({**body, "stream": True}, stable=True))


def _filtered(pieces: list[bytes], untouched: list[int]) -> bytes:
    usage_filter = UsageStreamFilter(lambda: untouched.append(1), max_held_bytes=1 << 20)
    return b"".join(usage_filter.feed(piece) for piece in pieces) + usage_filter.flush()


@pytest.mark.parametrize(
    "body",
    [CHAT, {**CHAT, "n": 2}, {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hello"}],
    ids=["chat", "chat n=2", "legacy"],
)
@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"])
def test_the_client_gets_the_stream_it_would_have_had_however_it_is_split(
    body: dict[str, Any], line_end: bytes
) -> None:
    upstream, expected = (s.replace(b"\n", line_end) for s in _replies(body))
    assert b'"usage":null' in upstream and b'"choices":[]' in upstream
    untouched: list[int] = []

    assert _filtered([upstream], untouched) == expected
    for cut in range(1, len(upstream)):
        assert _filtered([upstream[:cut], upstream[cut:]], untouched) == expected, cut
    assert _filtered([upstream[k : k + 1] for k in range(len(upstream))], untouched) == expected
    assert untouched == []


def test_an_event_that_cannot_be_put_back_exactly_is_relayed_and_counted() -> None:
    twice = b'data: {"choices":[],"usage":null,"usage":null}\n\n'
    spread = b'data: {"choices":[],\ndata: "usage":null}\n\n'
    usage_in_choice = b'data: {"choices":[{"index":0}],"usage":{"total_tokens":3}}\n\n'
    untouched: list[int] = []

    assert _filtered([twice, spread, usage_in_choice], untouched) == (
        twice + spread + usage_in_choice
    )
    assert len(untouched) == 3


def test_usage_named_in_text_is_not_a_change() -> None:
    event = b'data: {"choices":[{"delta":{"content":"\\"usage\\":null"}}],"x":{"usage":null}}\n\n'
    comment = b': "usage" is coming\n\n'
    untouched: list[int] = []

    assert _filtered([event, comment], untouched) == event + comment
    assert untouched == []


def test_an_event_that_never_ends_is_let_go_past_the_cap() -> None:
    untouched: list[int] = []
    usage_filter = UsageStreamFilter(lambda: untouched.append(1), max_held_bytes=100)
    first = b'data: {"choices":[],"usage":null}\n\ndata: ' + b"x" * 60

    assert usage_filter.feed(first) == b'data: {"choices":[]}\n\n'
    assert usage_filter.feed(b"y" * 60) == b"data: " + b"x" * 60 + b"y" * 60
    assert usage_filter.feed(b'\n\ndata: {"usage":null}\n\n') == b'\n\ndata: {"usage":null}\n\n'
    assert untouched == [1]


@pytest.mark.parametrize(
    ("base_url", "mode", "asks"),
    [
        ("https://api.openai.com/v1", "inject", True),
        ("https://api.openai.com/v1", "passthrough", False),
        ("https://r.openai.azure.com/openai/v1", "inject", True),
        ("https://r.openai.azure.com/openai/deployments/gpt-4o?api-version=2024-02-01", "inject",
         False),
    ],
)
def test_azure_deployment_upstreams_keep_their_own_behaviour(
    base_url: str, mode: str, asks: bool
) -> None:
    settings = ProxySettings(openai_base_url=base_url, stream_usage=mode)
    assert settings.asks_stream_usage is asks
