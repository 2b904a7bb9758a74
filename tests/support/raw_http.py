"""HTTP/1.1 over a plain socket: the request target goes out exactly as written."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]  # lower-cased names, in order
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(
    port: int, method: str, target: str, body: bytes = b"", timeout_s: float = 10.0
) -> RawResponse:
    """Send one request with ``Connection: close`` and read the whole answer."""
    head = (
        f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(head.encode("latin-1") + body)
        pieces = []
        while chunk := sock.recv(65536):
            pieces.append(chunk)
    raw = b"".join(pieces)
    header_block, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = []
    for line in lines:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    body_out = rest
    if ("transfer-encoding", "chunked") in headers:
        body_out = _unchunk(rest)
    return RawResponse(int(status_line.split()[1]), headers, body_out)


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)
