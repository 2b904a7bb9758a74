"""Bounded capture, in-process: every cut is marked, no buffer grows with the input."""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from typing import Any

import brotli
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.capture.assembly import ChatCompletionAssembler, EventListAssembler
from proxy.capture.bodies import BodyCapture
from proxy.capture.decoding import PIECE_BYTES, decoder_for
from proxy.capture.limits import CaptureLimits
from proxy.capture.record_builder import ResponseCapture
from proxy.capture.record_size import bounded_json
from proxy.capture.sse import SSEParser
from tests.factories import make_record

try:
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from backports import zstd

LIMITS = CaptureLimits(
    body_bytes=1000, form_field_bytes=100, form_parts=5, events=10, sse_line_chars=2000,
    decoded_bytes=50_000,
)


def _feed(target: Any, data: bytes, step: int = 4096) -> None:
    for start in range(0, len(data), step):
        target.feed(data[start : start + step])


def _sse(*payloads: Any) -> bytes:
    return b"".join(f"data: {json.dumps(p)}\n\n".encode() for p in payloads)


def test_form_fields_and_parts_are_capped_and_marked() -> None:
    long_value = b"v" * 5000
    parts = [(f"f{i}", b"short") for i in range(8)] + [("long", long_value)]
    body = b"".join(
        b"--B\r\nContent-Disposition: form-data; name=\"" + name.encode() + b"\"\r\n\r\n"
        + value + b"\r\n"
        for name, value in [("long", long_value), *parts[:-1]]
    ) + b"--B--\r\n"
    capture = BodyCapture("multipart/form-data; boundary=B", LIMITS)

    _feed(capture, body, step=777)
    result = capture.result()

    assert result["fields"]["long"] == {
        "truncated": True, "size": 5000, "sha256": hashlib.sha256(long_value).hexdigest(),
        "text": "v" * 100,
    }
    assert len(result["fields"]) == 5 and result["parts_not_listed"] == 4


def test_assembled_text_and_tool_arguments_are_capped() -> None:
    deltas = [{"choices": [{"index": 0, "delta": {"content": "é" * 100}}]}] * 30
    calls = [
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": "a" * 100}}]}}]}
    ] * 20
    assembler = ChatCompletionAssembler(LIMITS)

    _feed(assembler, _sse(*deltas, *calls), step=333)
    message = assembler.result()["choices"][0]["message"]

    content = message["content"]
    assert content["truncated"] and content["size"] == 30 * 200
    assert len(content["text"].encode()) <= 1000 and set(content["text"]) == {"é"}
    arguments = message["tool_calls"][0]["function"]["arguments"]
    assert arguments == {"truncated": True, "size": 2000, "text": "a" * 1000}


def test_event_lists_and_sse_lines_are_capped() -> None:
    events = EventListAssembler(LIMITS)
    _feed(events, _sse(*range(25)))
    result = events.result()
    assert result["events"] == list(range(10))
    assert result["truncated"] and result["events_total"] == 25

    parser = SSEParser(max_line_chars=100)
    for _ in range(1000):  # 1 MB without a line break
        assert parser.feed(b"data: " + b"x" * 1000) == []
    assert parser._partial_chars <= 100 + 1006
    tail = parser.feed(b"\n\ndata: ok\n\n")
    assert [event.data for event in tail] == ["ok"] and parser.skipped == 1


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_a_compression_bomb_never_inflates_past_the_cap(encoding: str) -> None:
    zeros = b"\0" * (20 * 1024 * 1024)
    compress = {
        "gzip": gzip.compress, "deflate": zlib.compress,
        "br": lambda data: brotli.compress(data, quality=4), "zstd": zstd.compress,
    }[encoding]
    bomb = compress(zeros)
    decoder = decoder_for(encoding, limit_bytes=1_000_000)
    assert decoder is not None

    pieces = [piece for start in range(0, len(bomb), 1024)
              for piece in decoder.decode(bomb[start : start + 1024])]

    assert max(len(piece) for piece in pieces) <= 2 * PIECE_BYTES  # brotli may overshoot
    assert sum(len(piece) for piece in pieces) == 1_000_000 and decoder.cut


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_br_zstd_and_multi_member_streams_are_decoded(encoding: str) -> None:
    first, second = _sse({"choices": [{"index": 0, "delta": {"content": "Hel"}}]}), _sse(
        {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]}
    )
    compress = {"gzip": gzip.compress, "br": brotli.compress, "zstd": zstd.compress}[encoding]
    raw = compress(first + second) if encoding == "br" else compress(first) + compress(second)
    headers = [(b"content-type", b"text/event-stream"), (b"content-encoding", encoding.encode())]
    capture = ResponseCapture("/v1/chat/completions", headers, LIMITS)

    _feed(capture, raw, step=5)
    capture.finish()

    assert capture.result()["choices"][0]["message"]["content"] == "Hello"


def test_a_corrupt_encoding_is_reported_not_raised() -> None:
    headers = [(b"content-type", b"application/json"), (b"content-encoding", b"br")]
    capture = ResponseCapture("/v1/models", headers, LIMITS)

    capture.feed(b"this is not brotli at all")

    assert "decoding_error" in capture.result()


def test_a_record_over_the_cap_loses_its_largest_parts_first() -> None:
    record = make_record(body_bytes=200_000)

    data = bounded_json(record, 100_000, lambda shown: shown.to_json())

    assert len(data) <= 100_000
    body = json.loads(data)["request"]["body"]
    assert body["truncated"] and body["reason"] == "record_max_bytes" and body["size"] > 200_000
    assert json.loads(data)["response"]["body"]["choices"]  # the small part is kept


_CHUNKS = st.lists(st.binary(max_size=3000), max_size=40)


@settings(max_examples=150, deadline=None)
@given(
    chunks=_CHUNKS,
    content_type=st.sampled_from(
        ["application/json", "text/plain", "text/event-stream", "image/png",
         "multipart/form-data; boundary=B"]
    ),
    body_bytes=st.integers(10, 2000),
)
def test_captured_size_is_bounded_whatever_the_input(
    chunks: list[bytes], content_type: str, body_bytes: int
) -> None:
    limits = CaptureLimits(body_bytes=body_bytes, form_field_bytes=50, form_parts=3,
                           events=5, sse_line_chars=500, decoded_bytes=10_000)
    headers = [(b"content-type", content_type.encode())]
    capture = ResponseCapture("/v1/anything", headers, limits)
    text = b"".join(chunks)
    # Make SSE-ish and form-ish inputs likely as well as pure noise.
    for chunk in [*chunks, b"\n\ndata: " + text[:100] + b"\n\n", b"--B\r\n"]:
        capture.feed(chunk)
    capture.finish()

    shown = json.dumps(capture.result(), ensure_ascii=False).encode()

    # Whatever the input: the kept text is within a small multiple of the caps.
    assert len(shown) <= 6 * body_bytes + 6 * 500 + 2000


def test_an_event_stream_in_an_unknown_encoding_is_kept_as_metadata() -> None:
    headers = [(b"content-type", b"text/event-stream"), (b"content-encoding", b"compress")]
    capture = ResponseCapture("/v1/chat/completions", headers, LIMITS)

    capture.feed(b"\x1f\x9d compressed bytes")

    result = capture.result()
    assert result["binary"] is True and result["size"] == 19
