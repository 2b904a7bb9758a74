"""Recognise a record already in its canonical form without building a ``Record``.

The proxy publishes ``Record.to_json()``; such bytes are written as they are. Proving
that they are a valid record through pydantic builds a model per record, which is most
of the shipper's CPU. ``canonical_fields`` proves the same from the parsed JSON with a
stricter check: it answers only when the full validation would certainly accept the
record and ``shipper.batch`` would write its bytes unchanged; otherwise it answers
``None``, and the record goes through ``Record.from_json`` (which accepts it in another
form, or rejects it with its reason). So no record is accepted here that the model
rejects, and every answer here is the one the model would give.

The check knows ``Record``'s schema; ``SCHEMA_DIGEST`` pins it, and when the model
changes the check stays off (every record takes the full path) until it is reviewed.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pydantic_core import from_json

from shared.record import Record

CANONICAL_START = b'{"schema_version":'
"""How ``Record.to_json()`` begins: a line without it is rendered anew."""

SCHEMA_DIGEST = "2970d0a5edf77c65aa962ae37d995e7dee7799a1a4acdd7ba80a6fa7e4898328"
"""sha256 of ``Record.model_json_schema()`` (``schema_digest()``) the check was written for."""

_FIELDS = frozenset(
    {"schema_version", "id", "timestamp", "user_id", "model", "duration_ms", "ttfb_ms",
     "request", "response", "error"}
)
_INT_LIMIT = 2**63
_ZERO = timedelta(0)


def schema_digest() -> str:
    """A fingerprint of ``Record``'s schema, as ``SCHEMA_DIGEST`` holds it."""
    schema = json.dumps(Record.model_json_schema(), sort_keys=True).encode()
    return hashlib.sha256(schema).hexdigest()


ENABLED = schema_digest() == SCHEMA_DIGEST


@dataclass(frozen=True, slots=True)
class CanonicalFields:
    """What the shipper needs of a canonical record."""

    record_id: str
    user_id: str | None
    model: str | None
    day: date


def canonical_fields(raw: bytes) -> CanonicalFields | None:
    """The fields of ``raw`` when it is a valid record in canonical form, else ``None``.

    ``None`` means "not proven here", never "invalid": the caller validates fully.
    """
    if not ENABLED or not raw.startswith(CANONICAL_START) or b"\n" in raw or b"\r" in raw:
        return None
    try:
        data = from_json(raw, allow_inf_nan=False)
    except ValueError:
        return None
    if type(data) is not dict or not data.keys() <= _FIELDS:
        return None
    record_id = data.get("id")
    user_id = data.get("user_id")
    model = data.get("model")
    timestamp = data.get("timestamp")
    if (
        type(record_id) is not str
        or not record_id
        or not _is_int(data.get("schema_version"))
        or not (user_id is None or type(user_id) is str)
        or not (model is None or type(model) is str)
        or not _optional_float(data.get("duration_ms"))
        or not _optional_float(data.get("ttfb_ms"))
        or not _request(data.get("request"))
        or not _response(data.get("response"))
        or not _error(data.get("error"))
        or type(timestamp) is not str
    ):
        return None
    day = _utc_day(timestamp)
    # The line is the entry's bytes only if they carry the timestamp as the model renders it.
    if day is None or b'"timestamp":"%s"' % timestamp.encode() not in raw:
        return None
    return CanonicalFields(record_id, user_id, model, day)


def _is_int(value: Any) -> bool:
    return type(value) is int and -_INT_LIMIT < value < _INT_LIMIT


def _optional_float(value: Any) -> bool:
    if value is None or _is_int(value):
        return True
    return type(value) is float and math.isfinite(value)


def _str_map(value: Any) -> bool:
    return type(value) is dict and all(type(item) is str for item in value.values())


def _request(value: Any) -> bool:
    return (
        type(value) is dict
        and type(value.get("method")) is str
        and type(value.get("path")) is str
        and type(value.get("query", "")) is str
        and _str_map(value.get("headers", {}))
    )


def _response(value: Any) -> bool:
    if value is None:
        return True
    if type(value) is not dict:
        return False
    status = value.get("status_code")
    return (
        (status is None or _is_int(status))
        and _str_map(value.get("headers", {}))
        and type(value.get("streaming", False)) is bool
    )


def _error(value: Any) -> bool:
    return value is None or (
        type(value) is dict
        and type(value.get("type")) is str
        and type(value.get("message")) is str
    )


def _utc_day(timestamp: str) -> date | None:
    """The UTC day of a timestamp in exactly the form ``Record`` renders, else ``None``."""
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    if moment.utcoffset() != _ZERO or moment.isoformat() != timestamp:
        return None
    return moment.date()
