"""Streaming compressors for the fake upstream: gzip, deflate, br and zstd, flushed per chunk."""

from __future__ import annotations

import zlib
from typing import Protocol

import brotli

try:
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from backports import zstd


class StreamCompressor(Protocol):
    def chunk(self, data: bytes) -> bytes:
        """``data`` compressed and flushed, so the receiver can decode it at once."""

    def end(self) -> bytes:
        """The end of the compressed stream."""


class _Zlib:
    def __init__(self, wbits: int) -> None:
        self._compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)

    def chunk(self, data: bytes) -> bytes:
        return self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def end(self) -> bytes:
        return self._compressor.flush()


class _Brotli:
    def __init__(self) -> None:
        self._compressor = brotli.Compressor(quality=5)

    def chunk(self, data: bytes) -> bytes:
        return bytes(self._compressor.process(data) + self._compressor.flush())

    def end(self) -> bytes:
        return bytes(self._compressor.finish())


class _Zstd:
    def __init__(self) -> None:
        self._compressor = zstd.ZstdCompressor()

    def chunk(self, data: bytes) -> bytes:
        return bytes(self._compressor.compress(data, zstd.ZstdCompressor.FLUSH_BLOCK))

    def end(self) -> bytes:
        return bytes(self._compressor.flush(zstd.ZstdCompressor.FLUSH_FRAME))


def compressor_for(encoding: str) -> StreamCompressor:
    """A compressor for ``gzip``, ``deflate``, ``br`` or ``zstd``."""
    if encoding == "gzip":
        return _Zlib(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return _Zlib(zlib.MAX_WBITS)
    if encoding == "br":
        return _Brotli()
    if encoding == "zstd":
        return _Zstd()
    raise ValueError(f"unsupported encoding {encoding!r}")
