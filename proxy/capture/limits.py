"""How much of an exchange the record may keep, and how a cut is marked.

Every cut leaves a marker in place of what was cut, in the shape docs/record.md documents:
``{"truncated": true, "size": <full size in bytes>, "sha256": ..., "text": <the head>}``
(``sha256`` where it is cheap to know). The record as a whole is bounded by
``RECORD_MAX_BYTES`` (``proxy.capture.record_size``).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CaptureLimits:
    """The caps of one exchange's capture; built once from the settings."""

    body_bytes: int = 1024 * 1024
    """Text kept of a plain body, and of each assembled text (message, tool arguments)."""
    form_field_bytes: int = 64 * 1024
    """Text kept of each multipart form field."""
    form_parts: int = 100
    """Multipart fields and files listed; the rest are counted."""
    events: int = 1000
    """Events kept by the generic event list (and logprob entries per list)."""
    sse_line_chars: int = 4 * 1024 * 1024
    """The longest SSE line (or event data) parsed, in characters; longer ones are skipped."""
    decoded_bytes: int = 64 * 1024 * 1024
    """Decoded output of a compressed body past which decoding for the record stops."""


class TextBuffer:
    """Text arriving in pieces, kept up to ``max_bytes`` (UTF-8) and joined once."""

    __slots__ = ("_kept", "_max_bytes", "_room", "size")

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._room = max_bytes
        self._kept: list[str] = []
        self.size = 0
        """Bytes seen (UTF-8), kept or not."""

    def append(self, piece: str) -> None:
        encoded_bytes = len(piece) if piece.isascii() else len(piece.encode())
        self.size += encoded_bytes
        if self._room <= 0:
            return
        if encoded_bytes > self._room:
            piece = _utf8_head(piece, self._room)
        self._kept.append(piece)
        self._room -= encoded_bytes

    @property
    def cut(self) -> bool:
        return self.size > self._max_bytes

    def value(self) -> Any:
        """The whole text, or a truncation marker holding its head and full size."""
        text = "".join(self._kept)
        if not self.cut:
            return text
        return {"truncated": True, "size": self.size, "text": text}


def _utf8_head(text: str, max_bytes: int) -> str:
    decoder = codecs.getincrementaldecoder("utf-8")("ignore")
    return decoder.decode(text.encode()[:max_bytes])
