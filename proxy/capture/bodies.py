"""What the record keeps of a body that streams past the proxy.

Shapes of ``RequestPart.body`` / ``ResponsePart.body`` (documented in docs/record.md):

- no body: ``null``
- JSON (by content type, or untyped text that parses): the parsed value
- other text: the text
- binary: ``{"binary": true, "content_type", "size", "sha256"}``
- multipart/form-data: ``{"multipart": true, "content_type", "size", "sha256",
  "fields": {name: text}, "files": [{"field", "filename", "content_type", "size", "sha256"}]}``
  (a long field's text is a truncation marker; ``parts_not_listed`` past the cap)
- text or JSON longer than the cap: ``{"truncated": true, "content_type", "size",
  "sha256", "text": <the first cap bytes as text>}``

Raw bytes never enter the record, and no body is ever held beyond the cap.
"""

from __future__ import annotations

import codecs
import hashlib
from functools import lru_cache
from typing import Any

from python_multipart.multipart import parse_options_header

from proxy.capture import json_values
from proxy.capture.form_capture import FormCapture
from proxy.capture.limits import CaptureLimits

_TAIL_BYTES = 4096
_TEXT_SUBTYPES = frozenset(
    {"json", "x-www-form-urlencoded", "xml", "javascript", "x-ndjson", "jsonl", "yaml"}
)


@lru_cache(maxsize=256)
def _media_type(content_type: str | None) -> tuple[str, dict[bytes, bytes]]:
    # Cached: calls repeat a few content types (the options are only ever read).
    media, options = parse_options_header(content_type or "")
    return media.decode("latin-1").lower(), options


def _is_textual(media: str) -> bool:
    if not media or media.startswith("text/"):
        return True
    subtype = media.partition("/")[2]
    return subtype in _TEXT_SUBTYPES or subtype.endswith(("+json", "+xml"))


def _is_json(media: str) -> bool:
    return not media or media.endswith(("/json", "+json"))


class BodyCapture:
    """Feed a body chunk by chunk; ``result()`` is what the record holds of it."""

    def __init__(self, content_type: str | None, limits: CaptureLimits) -> None:
        self._max_bytes = limits.body_bytes
        self._media, options = _media_type(content_type)
        self._head = bytearray()
        self._tail = b""
        # Started only once the body outgrows the head: until then the head holds all of it.
        self._sha256: hashlib._Hash | None = None
        self.size = 0
        boundary = options.get(b"boundary")
        self._form = (
            FormCapture(boundary, limits)
            if self._media == "multipart/form-data" and boundary
            else None
        )

    def feed(self, data: bytes) -> None:
        """Account for the next chunk of the body."""
        if not data:
            return
        self.size += len(data)
        if self._sha256 is not None:
            self._sha256.update(data)
        elif self.size > self._max_bytes:
            self._sha256 = hashlib.sha256(self._head)
            self._sha256.update(data)
        room = self._max_bytes - len(self._head)
        if room > 0:
            self._head += data[:room]
        # A large chunk holds the whole tail: no need to copy the old tail along with it.
        if len(data) >= _TAIL_BYTES:
            self._tail = data[-_TAIL_BYTES:]
        else:
            self._tail = (self._tail + data)[-_TAIL_BYTES:]
        if self._form is not None:
            self._form.feed(data)

    @property
    def truncated(self) -> bool:
        return self.size > len(self._head)

    @property
    def head(self) -> bytes:
        """The first bytes of the body, at most the cap."""
        return bytes(self._head)

    @property
    def tail(self) -> bytes:
        """The last few KiB of the body (to find a field that comes after the cap)."""
        return self._tail

    def result(self) -> Any:
        """The body as the record holds it (see the module docstring for the shapes)."""
        if self.size == 0:
            return None
        if self._form is not None:
            return {"multipart": True, **self._meta(), **self._form.metadata()}
        text = self._text()
        if text is None:
            return {"binary": True, **self._meta()}
        if self.truncated:
            return {"truncated": True, **self._meta(), "text": text}
        if _is_json(self._media):
            try:
                return json_values.loads(text)
            except ValueError:
                pass
        return text

    def _meta(self) -> dict[str, Any]:
        digest = self._sha256 or hashlib.sha256(self._head)
        return {
            "content_type": self._media or None,
            "size": self.size,
            "sha256": digest.hexdigest(),
        }

    def _text(self) -> str | None:
        if not _is_textual(self._media):
            return None
        try:
            if not self.truncated:
                return self._head.decode()
            # Incremental decoding drops a multi-byte character cut in half by the cap.
            return codecs.getincrementaldecoder("utf-8")().decode(self._head, final=False)
        except UnicodeDecodeError:
            return None
