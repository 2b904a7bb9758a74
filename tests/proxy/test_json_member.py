"""Cutting ``"usage":null`` out of a chunk's text gives the chunk as if it never had it."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.json_member import cut_null_member

_TRAPS = ['"usage":null', '{"usage":null}', '\\"usage\\":null', '"usage"', ",", "{", "}"]
_texts = st.text(max_size=8) | st.sampled_from(_TRAPS)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _texts,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(_texts | st.just("usage"), inner, max_size=3),
    max_leaves=8,
)
_objects = st.dictionaries(_texts.filter(lambda key: key != "usage"), _json, max_size=5)
_SEPARATORS = [(",", ":"), (", ", ": ")]  # OpenAI's compact form, and json.dumps' default


def _dumps(value: Any, separators: tuple[str, str], ascii_only: bool) -> bytes:
    return json.dumps(value, separators=separators, ensure_ascii=ascii_only).encode()


@settings(max_examples=400)
@given(
    data=_objects,
    position=st.integers(min_value=0),
    separators=st.sampled_from(_SEPARATORS),
    ascii_only=st.booleans(),
)
def test_the_cut_is_the_object_written_without_usage(
    data: dict[str, Any], position: int, separators: tuple[str, str], ascii_only: bool
) -> None:
    items = list(data.items())
    at = position % (len(items) + 1)
    with_usage = dict([*items[:at], ("usage", None), *items[at:]])

    cut = cut_null_member(_dumps(with_usage, separators, ascii_only), b"usage")

    assert cut == _dumps(data, separators, ascii_only)


@settings(max_examples=200)
@given(data=_objects, separators=st.sampled_from(_SEPARATORS))
def test_nothing_is_cut_without_a_top_level_null_usage(
    data: dict[str, Any], separators: tuple[str, str]
) -> None:
    # Nested objects and strings may say "usage":null as often as they like.
    text = _dumps(data, separators, False)
    assert cut_null_member(text, b"usage") is None
    assert cut_null_member(_dumps({**data, "usage": {"total_tokens": 3}}, separators, False),
                           b"usage") is None


def test_openai_chunks_lose_exactly_the_member_and_its_comma() -> None:
    chunk = (
        b'{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,'
        b'"delta":{"content":"\\"usage\\":null"},"finish_reason":null}],"usage":null,'
        b'"obfuscation":"a1B2"}'
    )
    assert cut_null_member(chunk, b"usage") == chunk.replace(b',"usage":null', b"")
    assert cut_null_member(b'{"usage":null}', b"usage") == b"{}"
    assert cut_null_member(b' {"usage" : null , "a":1} ', b"usage") == b' {"a":1} '


def test_what_cannot_be_cut_exactly_is_refused() -> None:
    assert cut_null_member(b'{"usage":null,"usage":null}', b"usage") is None
    assert cut_null_member(b'[{"usage":null}]', b"usage") is None
    assert cut_null_member(b'{"a":{"usage":null}}', b"usage") is None
    assert cut_null_member(b'{"a\\"usage":null}', b"usage") is None
    assert cut_null_member(b'"usage":null', b"usage") is None
