"""The SSE parser: events come out the same however the bytes are split (WHATWG rules)."""

from __future__ import annotations

import random

import pytest

from proxy.capture.sse import SSEEvent, SSEParser


def parse_whole(data: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    return parser.feed(data) + parser.flush()


def parse_in_pieces(data: bytes, cuts: list[int]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        events += parser.feed(data[start:cut])
        start = cut
    return events + parser.flush()


FIRST_DATA = '{"type": "response.created", "text": "caf\u00e9 \U0001f600 \u4f60\u597d"}'
STREAM = (
    ": keep-alive comment\n"
    "event: response.created\n"
    "id: 1\n"
    f"data: {FIRST_DATA}\n"
    "\n"
    "data: first line\n"
    "data: second line\n"
    "\n"
    "retry: 3000\n"
    "data: [DONE]\n"
    "\n"
)


def test_fields_comments_and_multiline_data() -> None:
    assert parse_whole(STREAM.encode()) == [
        SSEEvent("response.created", FIRST_DATA, "1"),
        SSEEvent(None, "first line\nsecond line", "1"),
        SSEEvent(None, "[DONE]", "1"),
    ]


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"])
def test_every_line_ending_gives_the_same_events(line_end: str) -> None:
    data = STREAM.replace("\n", line_end).encode()
    assert parse_whole(data) == parse_whole(STREAM.encode())


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"])
def test_every_single_split_point_gives_the_same_events(line_end: str) -> None:
    """Splits inside UTF-8 characters and between "\\r" and "\\n" included."""
    data = STREAM.replace("\n", line_end).encode()
    expected = parse_whole(data)
    for cut in range(len(data) + 1):
        assert parse_in_pieces(data, [cut]) == expected, f"split at byte {cut}"


def test_random_splits_and_byte_by_byte_give_the_same_events() -> None:
    data = (STREAM.replace("\n", "\r\n") * 5).encode()
    expected = parse_whole(data)
    rng = random.Random(1234)
    for _ in range(200):
        cuts = rng.sample(range(len(data)), rng.randint(1, 40))
        assert parse_in_pieces(data, cuts) == expected
    assert parse_in_pieces(data, list(range(len(data)))) == expected


def test_events_are_returned_as_soon_as_their_blank_line_arrives() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n") == []
    assert parser.feed(b"\n") == [SSEEvent(None, "a")]
    assert parser.feed(b"data: b\r") == []
    # A lone "\r" already ended the line; the blank line is the next "\r".
    assert parser.feed(b"\r") == [SSEEvent(None, "b")]
    assert parser.feed(b"\n") == []


def test_value_spacing_and_fields_without_colon() -> None:
    data = b"data:no-space\ndata:  two spaces\ndata\n\nevent\ndata: x\n\n"
    assert parse_whole(data) == [
        SSEEvent(None, "no-space\n two spaces\n"),
        SSEEvent(None, "x"),
    ]


def test_events_without_data_are_not_dispatched_and_unknown_fields_are_ignored() -> None:
    data = b"event: ping\n\n\n\nfoo: bar\ndata: kept\n\n"
    assert parse_whole(data) == [SSEEvent(None, "kept")]


def test_last_event_id_persists_until_changed_and_null_ids_are_ignored() -> None:
    data = b"id: 7\ndata: a\n\ndata: b\n\nid: 8\0x\ndata: c\n\nid\ndata: d\n\n"
    assert [event.id for event in parse_whole(data)] == ["7", "7", "7", None]


def test_retry_is_kept_when_it_is_a_number() -> None:
    parser = SSEParser()
    parser.feed(b"retry: 1500\n\nretry: soon\n\n")
    assert parser.retry_ms == 1500


def test_leading_byte_order_mark_is_dropped_once() -> None:
    data = "\ufeffdata: x\n\n".encode()
    assert parse_in_pieces(data, [1, 2]) == [SSEEvent(None, "x")]


def test_flush_completes_a_last_event_without_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"a": 1}\n\ndata: tail') == [SSEEvent(None, '{"a": 1}')]
    assert parser.flush() == [SSEEvent(None, "tail")]
    assert parser.flush() == []


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert parse_whole(b"data: \xff\xfe ok\n\n") == [SSEEvent(None, "\ufffd\ufffd ok")]


def test_long_line_in_many_pieces() -> None:
    payload = "x" * 1_000_000
    data = f"data: {payload}\n\n".encode()
    assert parse_in_pieces(data, list(range(1000, len(data), 1000))) == [SSEEvent(None, payload)]


def test_parsed_gives_json_or_text() -> None:
    assert SSEEvent(None, '{"a": [1]}').parsed() == {"a": [1]}
    assert SSEEvent(None, "[DONE]").parsed() == "[DONE]"
