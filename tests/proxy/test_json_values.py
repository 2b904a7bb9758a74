"""``proxy.capture.json_values.loads`` gives exactly what ``json.loads`` gives."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.capture.json_values import loads

_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 is not 1.0 here)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.slow
@given(_VALUES)
def test_any_json_text_reads_as_python_reads_it(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
        assert _same(loads(text), json.loads(text))


@pytest.mark.parametrize("text", [
    "123456789012345678901234567890",  # beyond 64 bits
    "[NaN, Infinity, -Infinity, 1e400, -0.0, 0.1, 5e-324]",
    '"\\ud800 lone surrogate"',  # pydantic's parser refuses it
    "[" * 300 + "]" * 300,  # deeper than pydantic's parser goes
    '{"a": 1, "a": 2}',
    ' {"emoji": "\\ud83d\\ude00", "text": "caf\\u00e9"} ',
])
def test_texts_only_python_accepts_or_reads_specially_read_the_same(text: str) -> None:
    assert _same(loads(text), json.loads(text))


@pytest.mark.parametrize("text", ["", "[DONE]", "{'a': 1}", '{"a": 1,}', "01", '"\x01"', "[1] 2"])
def test_what_is_not_json_raises_value_error_as_python_does(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        loads(text)
