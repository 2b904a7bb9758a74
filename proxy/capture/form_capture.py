"""A multipart/form-data body as metadata, parsed chunk by chunk as it streams past.

Form fields keep their (capped) text value; files keep their name, content type,
size and sha256 — never their bytes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header


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

    def __init__(self, boundary: bytes, max_field_bytes: int) -> None:
        self._max_field_bytes = max_field_bytes
        self._part = _Part()
        self.fields: dict[str, str] = {}
        self.files: list[dict[str, Any]] = []
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
        return {"fields": self.fields, "files": self.files}

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
        if part.filename is None:
            room = self._max_field_bytes - len(part.text)
            if room > 0:
                part.text += chunk[:room]
        else:
            part.sha256.update(chunk)

    def _on_part_end(self) -> None:
        part = self._part
        if part.filename is None:
            self.fields[part.field] = part.text.decode("utf-8", "replace")
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
