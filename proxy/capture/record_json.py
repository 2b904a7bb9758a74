"""A record's JSON written straight from its fields, without building the ``Record`` model.

Building ``shared.record.Record`` validates every part, and dumping it calls back into
Python (the timestamp's format, ``usage_source`` left out when absent): together several
times the cost of writing the same JSON from a dict. The proxy fills every field itself,
with values of the right types, so it writes the JSON directly and builds the model only
when a record must be cut to ``RECORD_MAX_BYTES``. ``tests/proxy/test_record_json.py``
checks, for any record, that these bytes are the model's own dump.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_json

from shared.record import SCHEMA_VERSION, Record

# Each part's fields in the model's order: the JSON's order.
_REQUEST_FIELDS = ("method", "path", "query", "headers", "body")
_RESPONSE_FIELDS = ("status_code", "headers", "body", "streaming")


@dataclass(frozen=True, slots=True)
class RecordJson:
    """A finished record as JSON, with the few fields the proxy still reads after it."""

    fields: dict[str, Any]
    """The record's fields, the parts as dicts: ``Record.model_validate(fields)`` is the record."""
    json: bytes

    @property
    def record_id(self) -> str:
        record_id: str = self.fields["id"]
        return record_id

    @property
    def status(self) -> int | None:
        response = self.fields["response"]
        return None if response is None else response["status_code"]

    @property
    def error_type(self) -> str | None:
        error = self.fields["error"]
        return None if error is None else error["type"]

    def model(self) -> Record:
        """The same record as the model (for cutting it to size)."""
        return Record.model_validate(self.fields)


class _UtcStamps:
    """``isoformat()`` of a UTC datetime, reusing the text of its whole second: formatted
    anew each time, it was a noticeable part of writing a record."""

    def __init__(self) -> None:
        self._second: datetime | None = None
        self._text = ""

    def __call__(self, stamp: datetime) -> str:
        whole = stamp.replace(microsecond=0)
        if whole != self._second:
            self._second, self._text = whole, whole.isoformat().removesuffix("+00:00")
        micro = stamp.microsecond
        return f"{self._text}.{micro:06d}+00:00" if micro else f"{self._text}+00:00"


_utc_isoformat = _UtcStamps()


def record_json(
    *,
    record_id: str,
    timestamp: datetime,
    user_id: str | None,
    model: str | None,
    duration_ms: float | None,
    ttfb_ms: float | None,
    request: dict[str, Any],
    response: dict[str, Any] | None,
    error: dict[str, str] | None,
    usage_source: str | None,
) -> RecordJson:
    """The record with these fields, as ``Record(...).to_json()`` writes it.

    ``request`` holds ``method``, ``path``, ``query``, ``headers`` and ``body``;
    ``response`` ``status_code``, ``headers``, ``body`` and ``streaming``; ``error``
    ``type`` and ``message``.
    """
    stamp = timestamp.replace(tzinfo=UTC) if timestamp.tzinfo is None else timestamp.astimezone(UTC)
    fields: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "id": record_id,
        "timestamp": _utc_isoformat(stamp),
        "user_id": user_id,
        "model": model,
        "duration_ms": duration_ms,
        "ttfb_ms": ttfb_ms,
        "request": {name: request[name] for name in _REQUEST_FIELDS},
        "response": (
            None if response is None else {name: response[name] for name in _RESPONSE_FIELDS}
        ),
        "error": None if error is None else {"type": error["type"], "message": error["message"]},
    }
    if usage_source is not None:
        fields["usage_source"] = usage_source
    # As the model dumps: infinities and NaN (never in JSON text) as null.
    return RecordJson(fields, to_json(fields, inf_nan_mode="null"))
