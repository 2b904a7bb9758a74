"""Usage on every stream: ask the upstream for it, keep it for the record, hide it from the client.

The official SDKs stream chat and legacy completions without
``stream_options.include_usage``, so the upstream sends no token counts and the record
would have none. With ``STREAM_USAGE=inject`` (``docs/usage.md``) the proxy:

1. adds ``"stream_options":{"include_usage":true}`` to such a request's body
   (``ask_for_usage``): a ``POST /v1/chat/completions`` or ``/v1/completions`` whose body,
   read whole, is a JSON object with ``"stream": true`` and does not ask for usage;
2. relays the answer through ``UsageStreamFilter``, which gives the client the bytes it
   would have had without that member: the usage-only last chunk (``"choices":[]``) is
   dropped, event and blank line, and the ``"usage":null`` the upstream adds to every
   other chunk is cut from its text (``proxy.json_member``). The record is fed the
   upstream's bytes as they came, so it keeps the usage.

Only events that mention ``"usage"`` are looked at; an event that cannot be put back
exactly is relayed as it came and counted (``proxy_stream_usage_untouched_events_total``).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from proxy.capture import json_values
from proxy.json_member import cut_null_member

USAGE_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})
"""The endpoints whose streams carry usage only when asked; any other path is left alone."""

_ASKED = b'"stream_options":{"include_usage":true},'
_JSON_WHITESPACE = b" \t\r\n"
_NOT_ASKING = (None, False)
_USAGE = b'"usage"'


def ask_for_usage(body: bytes) -> bytes | None:
    """``body`` asking for a usage chunk, or ``None`` when it is not a stream that needs one.

    A body without ``stream_options`` keeps every byte and gains the member at its start;
    one whose ``stream_options`` says no (or null) is written anew with it set.
    """
    if b'"stream"' not in body or not body.lstrip(_JSON_WHITESPACE).startswith(b"{"):
        return None  # not a stream, or not an object in UTF-8 (the text edited below)
    try:
        value = json_values.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("stream") is not True:
        return None
    if "stream_options" not in value:
        start = body.index(b"{") + 1  # the object's own brace: only whitespace precedes it
        return body[:start] + _ASKED + body[start:]
    options = value["stream_options"]
    if options is None:
        options = {}
    if not isinstance(options, dict) or options.get("include_usage") not in _NOT_ASKING:
        return None  # the client asked for usage, or sent something the upstream will judge
    value["stream_options"] = {**options, "include_usage": True}
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode()
    except (ValueError, RecursionError):  # 1e400, a lone surrogate, deep nesting: leave it
        return None


class UsageStreamFilter:
    """Feed the upstream's raw event stream; get back the bytes for the client.

    Bytes are held back only up to the end of the event they belong to (events are cut at
    blank lines, ``\\n\\n`` or ``\\r\\n\\r\\n``); an event still open after ``max_held_bytes``
    ends the filtering, and the rest of the stream is relayed as it comes.
    """

    def __init__(self, on_untouched: Callable[[], None], max_held_bytes: int) -> None:
        self._on_untouched = on_untouched
        self._max_held_bytes = max_held_bytes
        self._held = b""
        self._off = False

    def feed(self, chunk: bytes) -> bytes:
        """What to send the client for the next raw chunk (possibly nothing yet)."""
        if self._off:
            return chunk
        data = self._held + chunk if self._held else chunk
        end = _last_event_end(data)
        events, self._held = data[:end], data[end:]
        out = events if _USAGE not in events else b"".join(map(self._event, _split(events)))
        if len(self._held) > self._max_held_bytes:
            self._off = True
            self._on_untouched()
            out, self._held = out + self._held, b""
        return out

    def flush(self) -> bytes:
        """The end of the stream: whatever is held goes out as it is."""
        held, self._held = self._held, b""
        if held and _USAGE in held:
            return self._event(held)
        return held

    def _event(self, event: bytes) -> bytes:
        if _USAGE not in event:
            return event
        lines = _data_values(event)
        if not lines:
            return event  # a comment: no data to speak of
        if len(lines) > 1:
            self._on_untouched()  # data spread over lines: nothing to cut safely
            return event
        start, end = lines[0]
        text = event[start:end]
        try:
            chunk = json_values.loads(text)
        except ValueError:
            self._on_untouched()
            return event
        if not isinstance(chunk, dict) or "usage" not in chunk:
            return event  # the word is in a string or a nested object: nothing was added
        usage = chunk["usage"]
        if usage is not None and chunk.get("choices") == []:
            return b""  # the usage chunk: the record has it, the client did not ask
        cut = cut_null_member(text, b"usage") if usage is None else None
        if cut is None:
            self._on_untouched()
            return event
        return event[:start] + cut + event[end:]


def _data_values(event: bytes) -> list[tuple[int, int]]:
    """Where the value of each ``data:`` line of ``event`` starts and ends."""
    spans: list[tuple[int, int]] = []
    start, size = 0, len(event)
    while start < size:
        end = event.find(b"\n", start)
        if end < 0:
            end = size
        if event.startswith(b"data:", start):
            value = start + 6 if event.startswith(b" ", start + 5) else start + 5
            spans.append((value, end - 1 if event[end - 1 : end] == b"\r" else end))
        start = end + 1
    return spans


def _last_event_end(data: bytes) -> int:
    """Where the last complete event in ``data`` ends (0: none is complete)."""
    lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)


def _split(data: bytes) -> list[bytes]:
    """``data`` as events, each with the blank line that ends it (the last may have none)."""
    end = b"\r\n\r\n" if b"\r\n\r\n" in data else b"\n\n"  # a stream keeps to one form
    if data.find(end) == len(data) - len(end):
        return [data]  # the usual read: one whole event
    *events, rest = data.split(end)
    return [event + end for event in events] + ([rest] if rest else [])
