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
from proxy.capture.sse import SSEParser

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


def assembler_for(path: str) -> StreamAssembler:
    """The assembler for an endpoint, by request path (``/v1/chat/completions``; no query)."""
    path = path.rstrip("/")
    if path.endswith("/chat/completions"):
        return ChatCompletionAssembler()
    if path.endswith("/completions"):
        return CompletionAssembler()
    if _RESPONSES_PATH.search(path):
        return ResponsesAssembler()
    return EventListAssembler()


class EventListAssembler:
    """Unknown endpoints: ``{"events": [...]}``, each data as JSON if it parses, else text."""

    def __init__(self) -> None:
        self._parser = SSEParser()
        self._events: list[Any] = []

    def feed(self, data: bytes) -> None:
        """Raw upstream bytes, as they arrive."""
        self._events.extend(event.parsed() for event in self._parser.feed(data))

    def result(self) -> dict[str, list[Any]]:
        """Every event so far; the bytes fed so far count as the whole stream."""
        self._events.extend(event.parsed() for event in self._parser.flush())
        return {"events": list(self._events)}
