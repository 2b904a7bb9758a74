"""The last cap: a record's JSON never exceeds ``RECORD_MAX_BYTES``.

The per-part caps (``CaptureLimits``) keep most records far below it; when a record is
still too large, its largest parts (bodies, then headers and query) are replaced, one
by one, by a marker with their full size and sha256 until it fits. The default leaves
room for the record in one append on every sink (Azure: 4 MiB per append block).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from shared.record import Record

REASON = "record_max_bytes"


def _marker(value: Any) -> dict[str, Any]:
    encoded = json.dumps(value, ensure_ascii=False, default=str).encode()
    return {
        "truncated": True,
        "reason": REASON,
        "size": len(encoded),
        "sha256": hashlib.sha256(encoded).hexdigest(),
    }


def _parts(record: Record) -> list[tuple[int, str, str]]:
    """``(size, part, field)`` for each part that can be cut, largest first."""
    found: list[tuple[int, str, str]] = []
    for part_name in ("request", "response"):
        part = getattr(record, part_name)
        if part is None:
            continue
        for field in ("body", "headers", "query"):
            if hasattr(part, field):
                value = getattr(part, field)
                size = len(json.dumps(value, ensure_ascii=False, default=str))
                found.append((size, part_name, field))
    return sorted(found, reverse=True)


def _cut(record: Record, part_name: str, field: str) -> Record:
    part = getattr(record, part_name)
    value = getattr(part, field)
    marker = _marker(value)
    if field == "headers":
        shown = f"{marker['size']} bytes, sha256 {marker['sha256']}"
        replacement: Any = {"x-proxy-truncated": shown}
    elif field == "query":
        replacement = f"[TRUNCATED: {marker['size']} bytes]"
    else:
        replacement = marker
    return record.model_copy(
        update={part_name: part.model_copy(update={field: replacement})}
    )


def bounded_json(
    record: Record, max_bytes: int, serialize: Callable[[Record], bytes]
) -> bytes:
    """``serialize(record)``, with its largest parts cut until it fits in ``max_bytes``."""
    data = serialize(record)
    if len(data) <= max_bytes:
        return data
    for _, part_name, field in _parts(record):
        record = _cut(record, part_name, field)
        data = serialize(record)
        if len(data) <= max_bytes:
            return data
    # Only the error message is left to blame: keep its head.
    if record.error is not None:
        error = record.error.model_copy(update={"message": record.error.message[:1024]})
        data = serialize(record.model_copy(update={"error": error}))
    return data
