"""Undo a response's ``Content-Encoding`` for the record, chunk by chunk, within a bound.

The client gets the upstream's raw bytes with their encoding intact; only the copy
that goes into the record is decoded here. Supported: ``gzip``, ``deflate``, ``br``
(the ``brotli`` package) and ``zstd`` (``backports.zstd``, the standard library's
``compression.zstd`` from Python 3.14).

Decoding is bounded twice: each call hands out output in pieces of about
``PIECE_BYTES`` (a small input can never inflate into one large buffer), and once
``limit_bytes`` of output were produced the decoder stops for good (``cut`` is set),
so a compression bomb costs a bounded amount of memory and CPU.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol

import brotli

try:
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # Python < 3.14
    from backports import zstd

PIECE_BYTES = 64 * 1024


class DecodingError(Exception):
    """The encoded bytes are corrupt: the record keeps the raw bytes' metadata instead."""


class _Stage(Protocol):
    def pieces(self, data: bytes) -> Iterator[bytes]: ...


class _Identity:
    def pieces(self, data: bytes) -> Iterator[bytes]:
        for start in range(0, len(data), PIECE_BYTES):
            yield data[start : start + PIECE_BYTES]


class _Zlib:
    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._decompressor = zlib.decompressobj(wbits)

    def pieces(self, data: bytes) -> Iterator[bytes]:
        try:
            while data:
                out = self._decompressor.decompress(data, PIECE_BYTES)
                if out:
                    yield out
                if self._decompressor.eof:
                    # A gzip stream may hold several members: the next one starts afresh.
                    data = self._decompressor.unused_data
                    self._decompressor = zlib.decompressobj(self._wbits)
                else:
                    data = self._decompressor.unconsumed_tail
            while out := self._decompressor.decompress(b"", PIECE_BYTES) if not data else b"":
                yield out
        except zlib.error as exc:
            raise DecodingError(str(exc)) from exc


class _Brotli:
    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def pieces(self, data: bytes) -> Iterator[bytes]:
        try:
            out = self._decompressor.process(data, output_buffer_limit=PIECE_BYTES)
            while True:
                if out:
                    yield out
                if self._decompressor.can_accept_more_data() or self._decompressor.is_finished():
                    return
                out = self._decompressor.process(b"", output_buffer_limit=PIECE_BYTES)
        except brotli.error as exc:
            raise DecodingError(str(exc)) from exc


class _Zstd:
    def __init__(self) -> None:
        self._decompressor = zstd.ZstdDecompressor()

    def pieces(self, data: bytes) -> Iterator[bytes]:
        try:
            while True:
                out = self._decompressor.decompress(data, PIECE_BYTES)
                data = b""
                if out:
                    yield out
                if self._decompressor.eof:
                    # Several frames may follow each other.
                    data = self._decompressor.unused_data
                    self._decompressor = zstd.ZstdDecompressor()
                    if not data:
                        return
                elif self._decompressor.needs_input:
                    return
        except zstd.ZstdError as exc:
            raise DecodingError(str(exc)) from exc


_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_OR_GZIP_WBITS = 32 + zlib.MAX_WBITS


def is_identity(content_encoding: str | None) -> bool:
    """Whether a ``Content-Encoding`` value means the bytes are not encoded at all."""
    return (content_encoding or "").strip().lower() in ("", "identity")


def _stage(encoding: str) -> _Stage | None:
    if encoding in ("", "identity"):
        return _Identity()
    if encoding in ("gzip", "x-gzip"):
        return _Zlib(_GZIP_WBITS)
    if encoding == "deflate":
        # Servers send "deflate" both zlib-wrapped and raw; zlib's auto-detect covers the first.
        return _Zlib(_ZLIB_OR_GZIP_WBITS)
    if encoding == "br":
        return _Brotli()
    if encoding == "zstd":
        return _Zstd()
    return None


class Decoder:
    """Decodes one body; ``decode`` yields the decoded bytes in bounded pieces."""

    def __init__(self, stage: _Stage, limit_bytes: int) -> None:
        self._stage = stage
        self._limit_bytes = limit_bytes
        self.decoded_bytes = 0
        self.cut = False
        """True once the output reached ``limit_bytes``: the rest is not decoded."""

    def decode(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of the next raw chunk; raises ``DecodingError`` when corrupt."""
        if self.cut or not data:
            return
        for piece in self._stage.pieces(data):
            room = self._limit_bytes - self.decoded_bytes
            if len(piece) >= room:
                self.cut = True
                piece = piece[:room]
            self.decoded_bytes += len(piece)
            if piece:
                yield piece
            if self.cut:
                return


def decoder_for(content_encoding: str | None, limit_bytes: int) -> Decoder | None:
    """A bounded decoder for the encoding (identity when there is none), ``None`` if unknown.

    Encodings applied in sequence (``gzip, br``) are not supported: they are rare, and
    the record then keeps metadata about the raw bytes instead.
    """
    stage = _stage((content_encoding or "").strip().lower())
    return Decoder(stage, limit_bytes) if stage is not None else None
