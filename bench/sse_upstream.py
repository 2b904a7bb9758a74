"""A paced streaming upstream: chat-completion SSE chunks stamped with their send time.

``python -m bench.sse_upstream --port N``. Each chunk's ``delta.content`` is
``t=<CLOCK_MONOTONIC ns> `` taken just before the write, so a client on the same
machine measures, per chunk, how long it took to reach it (through a proxy or not).
A request whose ``model`` contains ``long`` gets a slow stream (to hold many streams
open at once); any other gets a quick one. A request with ``stream_options.include_usage``
gets what the API then sends: ``"usage":null`` on every chunk and a usage-only last chunk
(so the proxy's work to hide them from its client is measured). Raw asyncio, HTTP/1.1
keep-alive.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

QUICK_EVENTS = 20
QUICK_INTERVAL_S = 0.005
LONG_EVENTS = 40
LONG_INTERVAL_S = 0.25

_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


_USAGE = {"prompt_tokens": 1, "completion_tokens": QUICK_EVENTS, "total_tokens": QUICK_EVENTS + 1}


def _chunk(content: str | None, finish: str | None = None, *, usage: bool = False) -> bytes:
    delta = {"content": content} if content is not None else {}
    event: dict[str, object] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        event["usage"] = None
    return f"data: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def _usage_chunk() -> bytes:
    event = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
             "model": "bench-model", "choices": [], "usage": _USAGE}
    return f"data: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def _framed(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


UPLOAD_PATH = b"/v1/uploads/bench"
_UPLOADED = b'{"ok":true}'
_BLOCK_BYTES = 1024 * 1024


async def _read_chunked(reader: asyncio.StreamReader, keep: bool) -> bytes:
    parts: list[bytes] = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        while size:
            data = await reader.read(min(size, _BLOCK_BYTES))
            if not data:
                raise asyncio.IncompleteReadError(b"", size)
            size -= len(data)
            if keep:
                parts.append(data)
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")  # no trailers are sent to us
    return b"".join(parts)


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes, bool] | None:
    """Path, body and keep-alive of a request; an upload's body is read and dropped."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    path = head.split(b" ", 2)[1]
    length = 0
    chunked = False
    keep_alive = True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection":
            keep_alive = value.strip().lower() != b"close"
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    if chunked:
        return path, await _read_chunked(reader, keep=path != UPLOAD_PATH), keep_alive
    if path == UPLOAD_PATH:
        while length:
            length -= len(await reader.read(min(length, _BLOCK_BYTES)))
        return path, b"", keep_alive
    return path, (await reader.readexactly(length) if length else b""), keep_alive


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while (request := await _read_request(reader)) is not None:
            path, body, keep_alive = request
            if path == UPLOAD_PATH:
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(_UPLOADED), _UPLOADED))
                await writer.drain()
                if not keep_alive:
                    break
                continue
            request_body = json.loads(body or b"{}")
            model = str(request_body.get("model", ""))
            usage = bool((request_body.get("stream_options") or {}).get("include_usage"))
            events, interval_s = (
                (LONG_EVENTS, LONG_INTERVAL_S) if "long" in model else
                (QUICK_EVENTS, QUICK_INTERVAL_S)
            )
            writer.write(_HEAD)
            for index in range(events):
                if index:
                    await asyncio.sleep(interval_s)
                writer.write(_framed(_chunk(f"t={time.monotonic_ns()} ", usage=usage)))
                await writer.drain()
            end = _chunk(None, "stop", usage=usage)
            if usage:
                end += _usage_chunk()
            writer.write(_framed(end + b"data: [DONE]\n\n") + b"0\r\n\r\n")
            await writer.drain()
            if not keep_alive:
                break
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def _main(port: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sse_upstream", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(_main(parser.parse_args().port))


if __name__ == "__main__":
    main()
