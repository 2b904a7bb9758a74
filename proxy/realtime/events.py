"""A Realtime session's messages as the record keeps them: in order, bounded, audio hashed.

Every message relayed either way becomes an entry ``{"direction": "client" | "server",
"timestamp", "elapsed_ms", "event"}``. Audio payloads (base64 in ``audio`` fields and in
audio ``delta`` events) are replaced by ``{"audio": true, "size", "sha256"}`` of the decoded
bytes unless the setting keeps them. Memory stays bounded however long the session: the
first events are kept up to three quarters of the caps, then only the latest quarter
rolls on, and what fell between is counted in ``events_omitted``. Usage from every
``response.done`` is summed whatever was cut.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections import deque
from datetime import datetime
from typing import Any, Literal

Direction = Literal["client", "server"]

AUDIO_DELTA_EVENTS = frozenset({"response.audio.delta", "response.output_audio.delta"})
_LARGEST_EVENT_SHARE = 16
"""One event may take at most 1/16 of the byte cap; a larger one is kept as metadata."""


def _audio_summary(payload: str) -> dict[str, Any]:
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raw = payload.encode()
    return {"audio": True, "size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}


def _without_audio(value: Any) -> Any:
    """``value`` with every string under an ``audio`` key replaced by its summary."""
    if isinstance(value, dict):
        return {
            key: _audio_summary(item)
            if key == "audio" and isinstance(item, str)
            else _without_audio(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without_audio(item) for item in value]
    return value


def _add_usage(total: dict[str, Any], usage: dict[str, Any]) -> None:
    for key, value in usage.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            total[key] = total.get(key, 0) + value
        elif isinstance(value, dict):
            _add_usage(total.setdefault(key, {}), value)


def _parsed(data: str | bytes) -> Any:
    if isinstance(data, bytes):
        return {"binary": True, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    try:
        return json.loads(data)
    except ValueError:
        return {"text": data}


class SessionLog:
    """The events of one session, within ``max_events`` and ``max_bytes`` (serialized)."""

    def __init__(self, *, max_events: int, max_bytes: int, keep_audio: bool) -> None:
        self._keep_audio = keep_audio
        self._head_max_events = max(1, max_events - max_events // 4)
        self._head_max_bytes = max_bytes - max_bytes // 4
        self._tail_max_events = max(1, max_events // 4)
        self._tail_max_bytes = max_bytes // 4
        self._largest_event_bytes = max(1024, max_bytes // _LARGEST_EVENT_SHARE)
        self._head: list[dict[str, Any]] = []
        self._head_bytes = 0
        self._tail: deque[tuple[dict[str, Any], int]] = deque()
        self._tail_bytes = 0
        self._head_full = False
        self.events_total = 0
        self.omitted_events = 0
        self.omitted_bytes = 0
        self.responses_done = 0
        self.usage: dict[str, Any] = {}
        self.model: str | None = None

    def add(self, direction: Direction, data: str | bytes, at: datetime, elapsed_ms: float) -> None:
        """Account for one message, already relayed."""
        self.events_total += 1
        event = _parsed(data)
        self._note(direction, event)
        if not self._keep_audio and isinstance(event, dict):
            event = self._strip_audio(event)
        entry = {
            "direction": direction,
            "timestamp": at.isoformat(),
            "elapsed_ms": round(elapsed_ms, 1),
            "event": event,
        }
        size = len(json.dumps(entry))
        if size > self._largest_event_bytes:
            raw = data.encode() if isinstance(data, str) else data
            entry["event"] = {
                "type": event.get("type") if isinstance(event, dict) else None,
                "truncated": True,
                "size": len(raw),
                "sha256": hashlib.sha256(raw).hexdigest(),
            }
            size = len(json.dumps(entry))
        self._keep(entry, size)

    def _note(self, direction: Direction, event: Any) -> None:
        if not isinstance(event, dict) or direction != "server":
            return
        kind = event.get("type")
        if kind == "response.done":
            self.responses_done += 1
            usage = (event.get("response") or {}).get("usage")
            if isinstance(usage, dict):
                _add_usage(self.usage, usage)
        elif kind in ("session.created", "session.updated") and self.model is None:
            model = (event.get("session") or {}).get("model")
            self.model = model if isinstance(model, str) else None

    @staticmethod
    def _strip_audio(event: dict[str, Any]) -> dict[str, Any]:
        if event.get("type") in AUDIO_DELTA_EVENTS and isinstance(event.get("delta"), str):
            return {**event, "delta": _audio_summary(event["delta"])}
        return dict(_without_audio(event))

    def _keep(self, entry: dict[str, Any], size: int) -> None:
        if not self._head_full:
            if (
                len(self._head) < self._head_max_events
                and self._head_bytes + size <= self._head_max_bytes
            ):
                self._head.append(entry)
                self._head_bytes += size
                return
            self._head_full = True
        self._tail.append((entry, size))
        self._tail_bytes += size
        while self._tail and (
            len(self._tail) > self._tail_max_events or self._tail_bytes > self._tail_max_bytes
        ):
            _, dropped = self._tail.popleft()
            self._tail_bytes -= dropped
            self.omitted_events += 1
            self.omitted_bytes += dropped

    def events(self) -> list[dict[str, Any]]:
        """The kept events in order, with a marker where some were left out."""
        marker: list[dict[str, Any]] = []
        if self.omitted_events:
            marker = [
                {
                    "direction": None,
                    "omitted": True,
                    "events": self.omitted_events,
                    "size": self.omitted_bytes,
                }
            ]
        return [*self._head, *marker, *(entry for entry, _ in self._tail)]

    def summary(self) -> dict[str, Any]:
        """Counts for the record beside the events."""
        return {
            "events_total": self.events_total,
            "events_omitted": self.omitted_events,
            "events_omitted_bytes": self.omitted_bytes,
            "responses": self.responses_done,
            "usage": self.usage or None,
        }
