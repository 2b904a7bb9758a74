"""An incremental server-sent events parser (WHATWG HTML, "Server-sent events").

Bytes may be split anywhere: inside a UTF-8 character, inside a line, or between
the ``\\r`` and ``\\n`` of a line break. Each byte is decoded and scanned once;
a long line arriving in many pieces is collected in a list and joined once.

Memory is bounded: a line, or an event's data, longer than ``max_line_chars`` is
dropped as it arrives and counted in ``skipped``, so a stream without line breaks
never grows the buffer.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Any

from proxy.capture import json_values

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: ``event`` is None when the stream named no type."""

    event: str | None
    data: str
    id: str | None = None

    def parsed(self) -> Any:
        """The data as JSON when it is JSON, else the text itself."""
        try:
            return json_values.loads(self.data)
        except ValueError:
            return self.data


class SSEParser:
    """Feed raw bytes as they arrive; get back the events they complete."""

    def __init__(self, max_line_chars: int = 4 * 1024 * 1024) -> None:
        self._max_line_chars = max_line_chars
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial_line: list[str] = []
        self._partial_chars = 0
        self._dropping_line = False
        self._data_chars = 0
        self.skipped = 0
        """Lines or events dropped for being longer than ``max_line_chars``."""
        self._after_cr = False
        self._at_start = True
        self._data: list[str] = []
        self._event_type: str | None = None
        self._last_id: str | None = None
        self.retry_ms: int | None = None
        """The reconnection time the stream asked for, if any."""

    def feed(self, data: bytes) -> list[SSEEvent]:
        """The events completed by ``data`` (possibly none)."""
        text = self._decoder.decode(data)
        if not text:
            return []
        if self._at_start:
            self._at_start = False
            text = text.removeprefix(_BOM)
        if self._after_cr and text.startswith("\n"):
            # The "\n" of a "\r\n" split across two feeds: the line already ended.
            text = text[1:]
        self._after_cr = text.endswith("\r")
        events: list[SSEEvent] = []
        start = 0
        for match in _LINE_BREAK.finditer(text):
            line = text[start : match.start()]
            start = match.end()
            if self._dropping_line:
                self._dropping_line = False
                continue
            if self._partial_line:
                self._partial_line.append(line)
                line = "".join(self._partial_line)
                self._partial_line.clear()
                self._partial_chars = 0
            if len(line) > self._max_line_chars:
                self.skipped += 1
                continue
            self._process_line(line, events)
        if start < len(text) and not self._dropping_line:
            self._partial_line.append(text[start:])
            self._partial_chars += len(text) - start
            if self._partial_chars > self._max_line_chars:
                self._partial_line.clear()
                self._partial_chars = 0
                self._dropping_line = True
                self.skipped += 1
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: the last line and event count as complete even without a blank line."""
        events: list[SSEEvent] = []
        rest = self._decoder.decode(b"", final=True)
        if rest and not self._dropping_line:
            self._partial_line.append(rest)
        if self._partial_line:
            line = "".join(self._partial_line)
            self._partial_line.clear()
            self._partial_chars = 0
            if len(line) <= self._max_line_chars:
                self._process_line(line, events)
        self._dispatch(events)
        return events

    def _process_line(self, line: str, events: list[SSEEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line[0] == ":":
            return  # a comment, such as a keep-alive ": ping"
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data_chars += len(value)
            if self._data_chars <= self._max_line_chars:
                self._data.append(value)
        elif name == "event":
            self._event_type = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._data_chars > self._max_line_chars:
            self.skipped += 1
        elif self._data:
            data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
            events.append(SSEEvent(self._event_type or None, data, self._last_id or None))
        self._data = []
        self._data_chars = 0
        self._event_type = None
