"""The record JSON the proxy writes directly is, byte for byte, the ``Record`` model's dump."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.capture.record_json import record_json
from shared.record import Record

_text = st.text(max_size=20)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_headers = st.dictionaries(_text, _text, max_size=5)
_durations = st.none() | st.floats(min_value=0, max_value=1e7)
_timestamps = st.datetimes(
    timezones=st.none() | st.just(UTC) | st.builds(timezone, st.sampled_from(
        [timedelta(hours=h) for h in (-11, -3, 2, 5, 13)]
    ))
)
_requests = st.fixed_dictionaries(
    {"method": _text, "path": _text, "query": _text, "headers": _headers, "body": _json}
)
_responses = st.none() | st.fixed_dictionaries(
    {
        "status_code": st.none() | st.integers(100, 599),
        "headers": _headers,
        "body": _json,
        "streaming": st.booleans(),
    }
)
_errors = st.none() | st.fixed_dictionaries({"type": _text, "message": _text})


@settings(max_examples=300, deadline=None)
@given(
    record_id=st.text(min_size=1, max_size=40),
    timestamp=_timestamps,
    user_id=st.none() | _text,
    model=st.none() | _text,
    duration_ms=_durations,
    ttfb_ms=_durations,
    request=_requests,
    response=_responses,
    error=_errors,
    usage_source=st.none() | st.sampled_from(["upstream", "injected"]),
)
def test_the_bytes_are_the_models_dump(**fields: Any) -> None:
    written = record_json(**fields)

    model = Record(id=fields.pop("record_id"), **fields)
    assert written.json == model.to_json()
    assert written.model() == model
    assert Record.from_json(written.json) == Record.from_json(model.to_json())


def test_a_record_as_the_proxy_fills_it() -> None:
    fields: dict[str, Any] = {
        "record_id": "0193a2c4-0000-7000-8000-000000000001",
        "timestamp": datetime(2026, 12, 6, 3, 0, 0, 123456, tzinfo=UTC),
        "user_id": "alice",
        "model": "gpt-4o-mini",
        "duration_ms": 12.345,
        "ttfb_ms": 10.5,
        "request": {"method": "POST", "path": "/v1/chat/completions", "query": "",
                    "headers": {"authorization": "[REDACTED]"},
                    "body": {"model": "gpt-4o-mini", "messages": [{"content": "é"}]}},
        "response": {"status_code": 200, "headers": {"content-type": "application/json"},
                     "body": {"usage": {"total_tokens": 3}, "x": float("inf")},
                     "streaming": False},
        "error": None,
        "usage_source": "upstream",
    }
    written = record_json(**fields)

    assert written.json == Record(id=fields.pop("record_id"), **fields).to_json()
    assert (written.record_id, written.status, written.error_type) == (
        "0193a2c4-0000-7000-8000-000000000001", 200, None)
