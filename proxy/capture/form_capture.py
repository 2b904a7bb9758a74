"""A multipart/form-data body as metadata, parsed chunk by chunk as it streams past.

Form fields keep their text value up to ``form_field_bytes`` each and ``body_bytes`` in
all (a longer one becomes a truncation marker with its size and sha256); files keep
their name, content type, size and sha256 — never their bytes. At most ``form_parts``
fields and files are listed; ``parts_not_listed`` counts the others.
"""

from __future__ import annotations

import hashlib
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from proxy.capture.limits import CaptureLimits


class _Part:
    def __init__(self) -> None:
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.headers: dict[str, str] = {}
        self.size = 0
        self.text = bytearray()
        self.sha256 = hashlib.sha256()
        self.field = ""
        self.filename: str | None = None

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get("content-disposition", ""))
        self.field = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self.filename = filename.decode("utf-8", "replace") if filename is not None else None


class FormCapture:
    """Feed the raw body; ``fields`` and ``files`` describe what was sent."""

    def __init__(self, boundary: bytes, limits: CaptureLimits) -> None:
        self._limits = limits
        self._text_room = limits.body_bytes
        self._part = _Part()
        self.fields: dict[str, Any] = {}
        self.files: list[dict[str, Any]] = []
        self.parts_not_listed = 0
        self.malformed = False
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
        )

    def feed(self, data: bytes) -> None:
        if self.malformed:
            return
        try:
            self._parser.write(data)
        except MultipartParseError:
            self.malformed = True

    def metadata(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"fields": self.fields, "files": self.files}
        if self.parts_not_listed:
            shown["parts_not_listed"] = self.parts_not_listed
        return shown

    def _on_part_begin(self) -> None:
        self._part = _Part()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._part.header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._part.header_value += data[start:end]

    def _on_header_end(self) -> None:
        part = self._part
        name = part.header_name.decode("latin-1").lower()
        part.headers[name] = part.header_value.decode("latin-1")
        part.header_name.clear()
        part.header_value.clear()

    def _on_headers_finished(self) -> None:
        self._part.headers_finished()

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        chunk = data[start:end]
        part.size += len(chunk)
        part.sha256.update(chunk)
        if part.filename is None:
            room = min(self._limits.form_field_bytes - len(part.text), self._text_room)
            if room > 0:
                kept = chunk[:room]
                part.text += kept
                self._text_room -= len(kept)

    def _on_part_end(self) -> None:
        part = self._part
        if len(self.fields) + len(self.files) >= self._limits.form_parts:
            self.parts_not_listed += 1
            return
        if part.filename is None:
            text = part.text.decode("utf-8", "ignore" if part.size > len(part.text) else "replace")
            self.fields[part.field] = (
                text
                if part.size == len(part.text)
                else {
                    "truncated": True,
                    "size": part.size,
                    "sha256": part.sha256.hexdigest(),
                    "text": text,
                }
            )
            return
        self.files.append(
            {
                "field": part.field,
                "filename": part.filename,
                "content_type": part.headers.get("content-type"),
                "size": part.size,
                "sha256": part.sha256.hexdigest(),
            }
        )
