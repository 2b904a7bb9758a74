"""Stream assembly: turn a streamed response into the object the plain call would have returned.

The proxy feeds every upstream byte to an assembler as it relays it, so the
record of a stream holds one final object (full text, tool calls, finish reason,
usage) rather than hundreds of chunks. Each event is parsed once and text pieces
are collected in lists, joined only in ``result()``: the cost per chunk stays the
same however long the stream gets.

``result()`` takes the bytes fed so far as the whole stream, so a stream cut
short assembles to what had arrived.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from proxy.capture.assembly_chat import ChatCompletionAssembler, CompletionAssembler
from proxy.capture.assembly_responses import ResponsesAssembler
from proxy.capture.limits import CaptureLimits
from proxy.capture.sse import SSEEvent, SSEParser

__all__ = [
    "ChatCompletionAssembler",
    "CompletionAssembler",
    "EventListAssembler",
    "ResponsesAssembler",
    "StreamAssembler",
    "assembler_for",
]

# POST /responses streams a new response; GET /responses/{id}?stream=true resumes one.
_RESPONSES_PATH = re.compile(r"/responses(?:/[^/]+)?$")


class StreamAssembler(Protocol):
    """Collects a stream's raw bytes and builds the final object from them."""

    def feed(self, data: bytes) -> None:
        """Raw upstream bytes, as they arrive."""

    def result(self) -> Any:
        """The assembled final object so far (works on a partial stream too)."""


def assembler_for(path: str, limits: CaptureLimits | None = None) -> StreamAssembler:
    """The assembler for an endpoint, by request path (``/v1/chat/completions``; no query)."""
    path = path.rstrip("/")
    if path.endswith("/chat/completions"):
        return ChatCompletionAssembler(limits)
    if path.endswith("/completions"):
        return CompletionAssembler(limits)
    if _RESPONSES_PATH.search(path):
        return ResponsesAssembler(limits)
    return EventListAssembler(limits)


class EventListAssembler:
    """Unknown endpoints: ``{"events": [...]}``, each data as JSON if it parses, else text.

    At most ``limits.events`` events, holding at most ``limits.body_bytes`` characters of
    data, are kept; past either cap ``events_total`` and ``truncated`` say what was cut.
    """

    def __init__(self, limits: CaptureLimits | None = None) -> None:
        self._limits = limits or CaptureLimits()
        self._parser = SSEParser(self._limits.sse_line_chars)
        self._events: list[Any] = []
        self._kept_chars = 0
        self._total = 0

    def feed(self, data: bytes) -> None:
        """Raw upstream bytes, as they arrive."""
        self._keep(self._parser.feed(data))

    def _keep(self, events: list[SSEEvent]) -> None:
        for event in events:
            self._total += 1
            self._kept_chars += len(event.data)
            if len(self._events) < self._limits.events and (
                self._kept_chars <= self._limits.body_bytes
            ):
                self._events.append(event.parsed())

    def result(self) -> dict[str, Any]:
        """The events kept so far; the bytes fed so far count as the whole stream."""
        self._keep(self._parser.flush())
        result: dict[str, Any] = {"events": list(self._events)}
        total = self._total + self._parser.skipped
        if total > len(self._events):
            result.update(truncated=True, events_total=total)
        return result
