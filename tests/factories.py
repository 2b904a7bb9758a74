"""Factories for the objects tests build: records and their JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from proxy.publish.pending import PendingRecord
from shared.ids import new_record_id
from shared.record import Record, RequestPart, ResponsePart


def make_record(
    *,
    user_id: str | None = "user-1",
    model: str | None = "gpt-4o-mini",
    timestamp: datetime | None = None,
    body_bytes: int = 0,
    record_id: str | None = None,
    **overrides: Any,
) -> Record:
    """A complete, valid chat-completion record; ``body_bytes`` pads the prompt to a size."""
    prompt = "x" * body_bytes if body_bytes else "Say hello"
    fields: dict[str, Any] = {
        "id": record_id or new_record_id(),
        "timestamp": timestamp or datetime.now(UTC),
        "user_id": user_id,
        "model": model,
        "duration_ms": 12.5,
        "request": RequestPart(
            method="POST",
            path="/v1/chat/completions",
            headers={"content-type": "application/json"},
            body={"model": model, "messages": [{"role": "user", "content": prompt}]},
        ),
        "response": ResponsePart(
            status_code=200,
            headers={"content-type": "application/json"},
            body={"id": "chatcmpl-1", "choices": [{"message": {"content": "Hello"}}]},
        ),
    }
    fields.update(overrides)
    return Record(**fields)


def log_file_name(user_id: str | None, model: str | None, timestamp: datetime) -> str:
    """The shipper's file name for a record, with long parts cut as docs/record.md says.

    The cut is applied here too, so the name is right whether or not ``shared.naming``
    cuts long parts itself yet.
    """
    import hashlib

    from shared.naming import encode_component, file_name, file_stem

    stem = file_stem(user_id, model, timestamp)
    parts = stem.split("_")
    originals = ([user_id] if user_id else []) + [model or ""]
    for position, original in enumerate(originals):
        encoded = encode_component(original) if original else parts[position]
        if len(encoded.encode()) > 96 and "~" not in parts[position]:
            head = encoded[:80]
            cut_at = head.rfind("%")
            if cut_at >= 78:  # never cut inside a %XX escape
                head = head[:cut_at]
            digest = hashlib.sha256(original.encode()).hexdigest()[:12]
            parts[position] = f"{head}~{digest}"
    return file_name("_".join(parts))


def append_records(directory: Any, records: list[Record]) -> None:
    """Append ``records`` to their log files in ``directory``, as the local shipper would."""
    from pathlib import Path

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    for record in records:
        name = log_file_name(record.user_id, record.model, record.timestamp)
        with open(folder / name, "ab") as file:
            file.write(record.to_json() + b"\n")


def make_pending(count: int, *, body_bytes: int = 0) -> list[PendingRecord]:
    """``count`` finished records as the publisher receives them."""
    records = [make_record(body_bytes=body_bytes) for _ in range(count)]
    return [PendingRecord(record.id, record.to_json()) for record in records]
