"""Recognise a record already in its canonical form without building a ``Record``.

The proxy publishes ``Record.to_json()``; such bytes are written as they are. Proving
that they are a valid record through pydantic builds a model per record, which is most
of the shipper's CPU. ``canonical_fields`` proves the same with a stricter check: it
answers only when the full validation would certainly accept the record and
``shipper.batch`` would write its bytes unchanged; otherwise it answers ``None``, and
the record goes through ``Record.from_json`` (which accepts it in another form, or
rejects it with its reason). So no record is accepted here that the model rejects, and
every answer here is the one the model would give.

The record is parsed by pydantic's own JSON parser (so exactly the same texts are JSON
to both), then its fields' types are checked by msgspec against structs that mirror
``Record``, in C rather than in a walk over the parsed objects.

The check knows ``Record``'s schema; ``SCHEMA_DIGEST`` pins it, and when the model
changes the check stays off (every record takes the full path) until it is reviewed.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import date, datetime
from typing import Any, NamedTuple

import msgspec
from pydantic_core import from_json

from shared.record import Record

CANONICAL_START = b'{"schema_version":'
"""How ``Record.to_json()`` begins: a line without it is rendered anew."""

SCHEMA_DIGEST = "e1ff8308445cc64b2e10046024fafe72f5de5a703847f907c39115c6bfcee272"
"""sha256 of ``Record.model_json_schema()`` (``schema_digest()``) the check was written for."""

_INT_LIMIT = 2**63


def schema_digest() -> str:
    """A fingerprint of ``Record``'s schema, as ``SCHEMA_DIGEST`` holds it."""
    schema = json.dumps(Record.model_json_schema(), sort_keys=True).encode()
    return hashlib.sha256(schema).hexdigest()


ENABLED = schema_digest() == SCHEMA_DIGEST


class _Request(msgspec.Struct, forbid_unknown_fields=True):
    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = {}
    body: Any = None


class _Response(msgspec.Struct, forbid_unknown_fields=True):
    status_code: int | None = None
    headers: dict[str, str] = {}
    body: Any = None
    streaming: bool = False


class _Error(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    message: str


class _Record(msgspec.Struct, forbid_unknown_fields=True):
    schema_version: int
    id: str
    timestamp: str
    request: _Request
    user_id: str | None = None
    model: str | None = None
    duration_ms: float | None = None
    ttfb_ms: float | None = None
    response: _Response | None = None
    error: _Error | None = None
    usage_source: str | None = None


class CanonicalFields(NamedTuple):
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
        record = msgspec.convert(from_json(raw, allow_inf_nan=False), _Record)
    except (ValueError, msgspec.ValidationError):  # not JSON, or not of the types above
        return None
    response = record.response
    if (
        not record.id
        or not _is_int(record.schema_version)
        or not _is_finite(record.duration_ms)
        or not _is_finite(record.ttfb_ms)
        or (response is not None and not _is_int(response.status_code))
    ):
        return None
    timestamp = record.timestamp
    day = _utc_day(timestamp)
    # The line is the entry's bytes only if they carry the timestamp as the model renders it.
    if day is None or b'"timestamp":"%s"' % timestamp.encode() not in raw:
        return None
    return CanonicalFields(record.id, record.user_id, record.model, day)


def _is_int(value: int | None) -> bool:
    return value is None or -_INT_LIMIT < value < _INT_LIMIT


def _is_finite(value: float | None) -> bool:
    return value is None or math.isfinite(value)


def _utc_day(timestamp: str) -> date | None:
    """The UTC day of a timestamp in exactly the form ``Record`` renders, else ``None``."""
    # Rendering a naive time is twice as fast as rendering an aware one.
    local, offset = timestamp[:-6], timestamp[-6:]
    if offset != "+00:00":
        return None
    try:
        moment = datetime.fromisoformat(local)
    except ValueError:
        return None
    if moment.tzinfo is not None or moment.isoformat() != local:
        return None
    return moment.date()
