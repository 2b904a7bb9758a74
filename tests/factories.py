"""Factories for the objects tests build: records and their JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
