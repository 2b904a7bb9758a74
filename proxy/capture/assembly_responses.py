"""Responses API streams, assembled into the ``response`` object the plain call returns.

A finished stream carries its own answer: ``response.completed`` (or
``.incomplete`` / ``.failed``) holds the whole response. For a stream cut before
that, the latest response snapshot is rebuilt with the output items and the text
assembled from the deltas that had arrived.
"""

from __future__ import annotations

from typing import Any

from proxy.capture.limits import CaptureLimits, TextBuffer
from proxy.capture.sse import SSEEvent, SSEParser

Json = dict[str, Any]

_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_TEXT_DELTAS = {"response.output_text.delta": "text", "response.refusal.delta": "refusal"}
_PART_TYPES = {"text": "output_text", "refusal": "refusal"}


class ResponsesAssembler:
    """``response.*`` events -> one ``response`` object."""

    def __init__(self, limits: CaptureLimits | None = None) -> None:
        self._limits = limits or CaptureLimits()
        self._parser = SSEParser(self._limits.sse_line_chars)
        self._final: Json | None = None
        self._snapshot: Json | None = None
        self._items: dict[int, Json] = {}
        self._items_done: set[int] = set()
        self._parts: dict[tuple[int, int], Json] = {}
        self._parts_done: set[tuple[int, int]] = set()
        self._text: dict[tuple[int, int], tuple[str, TextBuffer]] = {}
        self._arguments: dict[int, TextBuffer] = {}
        self._error: Json | None = None

    def feed(self, data: bytes) -> None:
        """Raw upstream bytes, as they arrive."""
        for event in self._parser.feed(data):
            self._on_event(event)

    def _on_event(self, event: SSEEvent) -> None:
        payload = event.parsed()
        if not isinstance(payload, dict):
            return
        kind = payload.get("type") or event.event
        if isinstance(payload.get("response"), dict):
            self._snapshot = payload["response"]
            if kind in _FINAL_EVENTS:
                self._final = payload["response"]
        elif kind in _TEXT_DELTAS:
            where = (payload.get("output_index", 0), payload.get("content_index", 0))
            field = _TEXT_DELTAS[kind]
            if where not in self._text and len(self._text) >= self._limits.events:
                return
            buffer = self._text.setdefault(where, (field, TextBuffer(self._limits.body_bytes)))
            buffer[1].append(_text(payload.get("delta")))
        elif kind == "response.function_call_arguments.delta":
            index = payload.get("output_index", 0)
            if index not in self._arguments and len(self._arguments) >= self._limits.events:
                return
            pieces = self._arguments.setdefault(index, TextBuffer(self._limits.body_bytes))
            pieces.append(_text(payload.get("delta")))
        elif kind in ("response.output_item.added", "response.output_item.done"):
            index = payload.get("output_index", 0)
            if index not in self._items and len(self._items) >= self._limits.events:
                return
            self._items[index] = payload.get("item") or {}
            if kind.endswith(".done"):
                self._items_done.add(index)
        elif kind in ("response.content_part.added", "response.content_part.done"):
            where = (payload.get("output_index", 0), payload.get("content_index", 0))
            if where not in self._parts and len(self._parts) >= self._limits.events:
                return
            self._parts[where] = payload.get("part") or {}
            if kind.endswith(".done"):
                self._parts_done.add(where)
        elif kind == "error":
            self._error = payload

    def result(self) -> Json:
        """The final response, or a snapshot rebuilt from the events that had arrived."""
        for event in self._parser.flush():
            self._on_event(event)
        if self._final is not None:
            return self._final if not self._parser.skipped else {
                **self._final, "sse_truncated": self._parser.skipped
            }
        response: Json = dict(self._snapshot or {"object": "response", "status": "in_progress"})
        indexes = sorted({*self._items, *self._arguments, *(o for o, _ in self._text)})
        response["output"] = [self._item(index) for index in indexes]
        if self._error is not None and not response.get("error"):
            response["error"] = {
                "code": self._error.get("code"),
                "message": self._error.get("message"),
            }
        if self._parser.skipped:
            response["sse_truncated"] = self._parser.skipped
        return response

    def _item(self, index: int) -> Json:
        item = self._items.get(index) or {"type": "message", "role": "assistant"}
        if index in self._items_done:
            return item
        item = dict(item)
        if index in self._arguments:
            item["arguments"] = self._arguments[index].value()
        places = sorted(
            {where for where in (*self._parts, *self._text) if where[0] == index},
            key=lambda where: where[1],
        )
        if places:
            item["content"] = [self._part(where) for where in places]
        return item

    def _part(self, where: tuple[int, int]) -> Json:
        if where in self._parts_done or where not in self._text:
            return self._parts.get(where, {})
        field, pieces = self._text[where]
        part = dict(self._parts.get(where) or {"type": _PART_TYPES[field]})
        part[field] = pieces.value()
        return part


def _text(delta: Any) -> str:
    return delta if isinstance(delta, str) else ""
