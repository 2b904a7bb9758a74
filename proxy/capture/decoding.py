"""Undo a response's ``Content-Encoding`` for the record, chunk by chunk.

The client gets the upstream's raw bytes with their encoding intact; only the copy
that goes into the record is decoded here.
"""

from __future__ import annotations

import zlib
from typing import Protocol


class Decoder(Protocol):
    def decode(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _Identity:
    def decode(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


class _Zlib:
    def __init__(self, wbits: int) -> None:
        self._decompressor = zlib.decompressobj(wbits)

    def decode(self, data: bytes) -> bytes:
        return self._decompressor.decompress(data)

    def flush(self) -> bytes:
        return self._decompressor.flush()


_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_OR_GZIP_WBITS = 32 + zlib.MAX_WBITS


def decoder_for(content_encoding: str | None) -> Decoder | None:
    """A decoder for the encoding, identity when there is none, ``None`` when unsupported.

    Encodings applied in sequence (``gzip, deflate``) are not supported: they are rare
    and the record then keeps metadata about the raw bytes instead.
    """
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return _Identity()
    if encoding in ("gzip", "x-gzip"):
        return _Zlib(_GZIP_WBITS)
    if encoding == "deflate":
        # Servers send "deflate" both zlib-wrapped and raw; zlib's auto-detect covers the first.
        return _Zlib(_ZLIB_OR_GZIP_WBITS)
    return None
