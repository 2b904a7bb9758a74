"""The shortcut for canonical records answers exactly as the full validation would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from shared.record import RequestPart
from shipper import canonical
from shipper.batch import Entry, Rejected, parse_entry
from shipper.canonical import canonical_fields
from shipper.source import StreamEntry
from tests.factories import make_record

_MAX_LINE_BYTES = 1 << 20

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                  max_size=3),
    max_leaves=6,
)
_zones = st.just(UTC) | st.builds(timezone, st.timedeltas(timedelta(hours=-23),
                                                          timedelta(hours=23)))
_timestamps = (
    st.datetimes(timezones=_zones).map(datetime.isoformat)
    | st.datetimes(timezones=_zones).map(lambda moment: moment.isoformat(sep=" "))
    | st.datetimes().map(datetime.isoformat)
    | st.datetimes(timezones=st.just(UTC)).map(lambda m: m.isoformat().replace("+00:00", "Z"))
    | st.integers(-10**12, 10**12)
    | _json
)
_PATHS = [
    ("schema_version",), ("id",), ("user_id",), ("model",), ("duration_ms",), ("ttfb_ms",),
    ("request",), ("request", "method"), ("request", "path"), ("request", "query"),
    ("request", "headers"), ("request", "headers", "content-type"), ("request", "body"),
    ("response",), ("response", "status_code"), ("response", "headers"),
    ("response", "headers", "content-type"), ("response", "streaming"),
    ("error",), ("error", "type"), ("error", "message"), ("usage_source",), ("extra",),
    ("request", "extra"),
]
# JSON text for bodies: well-formed structure with leaves that a parser might judge
# differently from pydantic's (numbers, escapes, UTF-8, control characters).
_BODY_LEAVES = [
    b"0", b"-0", b"1.5e-3", b"1E+2", b"1e400", b"01", b"1.", b"NaN", b"Infinity", b"true", b"tru",
    b"null", b'"a"', b'"\\u00e9"', b'"\\ud83d\\ude00"', b'"\\ud800"', b'"\\udc00"', b'"\\x"',
    b'"\xc3\xa9"', b'"\xff"', b'"\xed\xa0\x80"', b'"\xc0\x80"', b'"a\x01"', b'"a\tb"',
]
_bodies = st.recursive(
    st.sampled_from(_BODY_LEAVES),
    lambda inner: st.lists(inner, max_size=3).map(lambda items: b"[%s]" % b",".join(items))
    | st.lists(st.tuples(st.sampled_from([b'"k"', b'"\\u006b"', b'"\xff"']), inner), max_size=3)
    .map(lambda pairs: b"{%s}" % b",".join(b"%s:%s" % pair for pair in pairs)),
    max_leaves=5,
)
_changes = st.lists(
    st.tuples(st.sampled_from(_PATHS), st.none() | st.tuples(_json)), min_size=1, max_size=2
)


@contextmanager
def _full_validation_only() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(canonical, "ENABLED", False)
        yield


def _parse(raw: bytes) -> Entry | Rejected:
    return parse_entry(StreamEntry("1-0", {b"record": raw}), _MAX_LINE_BYTES)


def _assert_same_as_full_validation(raw: bytes) -> None:
    quick = _parse(raw)
    with _full_validation_only():
        assert quick == _parse(raw), raw


def _change(data: dict[str, Any], path: tuple[str, ...], value: tuple[Any] | None) -> None:
    parent: Any = data
    for key in path[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(parent, dict):
        return
    if value is None:
        parent.pop(path[-1], None)
    else:
        parent[path[-1]] = value[0]


def test_the_check_is_written_for_the_current_record_schema() -> None:
    # Fails when ``Record`` changes: review ``shipper.canonical`` and update its digest.
    assert canonical.schema_digest() == canonical.SCHEMA_DIGEST
    assert canonical.ENABLED


def test_records_published_by_the_proxy_take_the_shortcut() -> None:
    moment = datetime(2024, 10, 21, 23, 59, 59, 5, tzinfo=UTC)
    records = [
        make_record(user_id="a_b", model="ft:gpt-4o:org::x", timestamp=moment),
        make_record(user_id=None, model=None, timestamp=moment.replace(microsecond=0)),
        make_record(error={"type": "upstream_timeout", "message": "no answer"}, ttfb_ms=3),
        make_record(response=None, duration_ms=None),
        make_record(usage_source="injected"),
        make_record(request=RequestPart(method="POST", path="/v1/chat/completions", body={
            "messages": [{"role": "user", "content": "Grüße"}] * 200,
        })),
    ]
    for record in records:
        raw = record.to_json()
        fields = canonical_fields(raw)
        assert fields is not None, raw
        assert (fields.record_id, fields.user_id, fields.model, fields.day) == (
            record.id, record.user_id, record.model, record.timestamp.date()
        )
        _assert_same_as_full_validation(raw)


def test_anything_else_is_left_to_the_full_validation() -> None:
    raw = make_record(timestamp=datetime(2024, 10, 21, 23, 30, tzinfo=UTC)).to_json()
    others = [
        json.dumps(json.loads(raw), indent=1).encode(),
        raw.replace(b"+00:00", b""),
        raw.replace(b"+00:00", b"Z"),
        raw.replace(b"+00:00", b"+00:00+00:00"),
        raw.replace(b"+00:00", b"\\u002b00:00"),  # the same time, in other bytes
        raw.replace(b"+00:00", b".000000+00:00"),
        raw.replace(b'"schema_version":1,', b""),
        raw.replace(b'"request":{', b'"request":{"nan":NaN,'),
        raw.replace(b'"duration_ms":12.5', b'"duration_ms":"12.5"'),
        raw.replace(b'"ttfb_ms":null', b'"ttfb_ms":true'),
        raw.replace(b'"status_code":200', b'"status_code":"200"'),
        raw.replace(b'"streaming":false', b'"streaming":0'),
        raw.replace(b'"streaming":false', b'"streaming":"false"'),
        raw.replace(b'"schema_version":1', b'"schema_version":true'),
        raw.replace(b'"schema_version":1', b'"schema_version":1.0'),
        raw.replace(b'"status_code":200', b'"status_code":200.0'),
        raw.replace(b'"duration_ms":12.5', b'"duration_ms":true'),
        raw.replace(b'"method":"POST"', b'"method":1'),
        raw.replace(b'"method":"POST"', b'"method":null'),
        raw.replace(b'"query":""', b'"query":null'),
        raw.replace(b'"headers":{"content-type":"application/json"}', b'"headers":{"a":1}'),
        raw.replace(b'"error":null', b'"error":{"type":"t"}'),
        raw[:-1] + b',"id":""}',
        raw[:-1] + b',"usage_source":1}',
        raw[:-1] + b',"note":"a field of a newer producer"}',
    ]
    for other in others:
        assert canonical_fields(other) is None, other
        _assert_same_as_full_validation(other)


@settings(max_examples=500)
@given(changes=_changes, timestamp=st.booleans().flatmap(lambda keep: st.none() if keep
                                                         else _timestamps),
       with_error=st.booleans(),
       ascii_only=st.booleans())
def test_every_answer_is_the_full_validations(
    changes: list[tuple[tuple[str, ...], tuple[Any] | None]], timestamp: Any,
    with_error: bool, ascii_only: bool,
) -> None:
    record = make_record(error={"type": "t", "message": "m"} if with_error else None)
    data = json.loads(record.to_json())
    if timestamp is not None:
        data["timestamp"] = timestamp
    for path, value in changes:
        _change(data, path, value)
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=ascii_only)
    encoded = raw.encode(errors="surrogatepass")
    event("shortcut" if canonical_fields(encoded) is not None else "full validation")
    _assert_same_as_full_validation(encoded)



@pytest.mark.parametrize(
    "body",
    [b'"\\ud800"', b'"\xff"', b'"\xed\xa0\x80"', b'"\xc0\x80"', b'"\xf4\x90\x80\x80"', b'"a\x01b"',
     b"1e400", b"NaN", b"-0", b"01", b"1.", b'{"a":1,"a":2}', b"[1,]",
     *(b"[" * depth + b"]" * depth for depth in (140, 195, 196, 197, 198, 199, 300)),
     b'"%s\xff"' % (b"x" * 5000), b'%s"%s"%s' % (b"[" * 300, b"x" * 5000, b"]" * 300)],
)
def test_body_texts_are_judged_as_the_model_judges_them(body: bytes) -> None:
    # Edge cases of JSON text, nesting around pydantic's depth limit, and big records.
    raw = make_record(timestamp=datetime(2024, 10, 21, 23, 30, tzinfo=UTC)).to_json()
    _assert_same_as_full_validation(raw.replace(b'"body":{', b'"body":%s,"x":{' % body, 1))
    _assert_same_as_full_validation(raw.replace(b'"streaming":false', b'"body":%s' % body, 1))


@settings(max_examples=500)
@given(body=_bodies)
def test_any_body_text_is_judged_as_the_model_judges_it(body: bytes) -> None:
    raw = make_record(response=None).to_json()
    edited = raw.replace(b'"request":{', b'"request":{"body":%s,' % body, 1)
    event("shortcut" if canonical_fields(edited) is not None else "full validation")
    _assert_same_as_full_validation(edited)
