"""Streaming and memory probes on raw sockets, so the client adds as little as possible.

- ``stream_timings``: sequential streamed chat completions; per stream, the time to the
  first chunk, and per chunk the delay from the upstream's send stamp to its arrival.
- ``rss_during_streams``: the target's resident memory while N streams are open.
- ``rss_during_transfer``: its peak resident memory while 1 GiB goes up or comes down.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.targets import CLIENT_KEY

GIB = 1024**3
_BLOCK = b"\0" * (1024 * 1024)
_STAMP = re.compile(rb"t=(\d+) ")
_SAMPLE_EVERY_S = 0.05


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (workers included)."""
    total = 0
    for current in _tree(pid):
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) * 1024 for line in status.splitlines()
                          if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time used so far by ``pid`` and its live descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for current in _tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _request(url: str, method: str, body: bytes, length: int | None = None) -> tuple[str, int,
                                                                                     bytes]:
    parts = urlsplit(url)
    head = (f"{method} {parts.path} HTTP/1.1\r\nhost: {parts.hostname}:{parts.port}\r\n"
            f"content-type: application/json\r\nauthorization: Bearer {CLIENT_KEY}\r\n"
            f"content-length: {len(body) if length is None else length}\r\n"
            "connection: close\r\n\r\n").encode()
    return parts.hostname or "127.0.0.1", parts.port or 80, head + body


def _stream_body(model: str) -> bytes:
    return json.dumps({"model": model, "stream": True,
                       "messages": [{"role": "user", "content": "Count"}]}).encode()


@dataclass
class StreamRun:
    ttfb_ms: float
    chunk_delays_ms: list[float]
    ok: bool


async def _one_stream(url: str, model: str) -> StreamRun:
    host, port, request = _request(url, "POST", _stream_body(model))
    reader, writer = await asyncio.open_connection(host, port)
    sent_ns = time.monotonic_ns()
    writer.write(request)
    await writer.drain()
    delays: list[float] = []
    first_ns: int | None = None
    tail = b""
    done = False
    while data := await reader.read(65536):
        now_ns = time.monotonic_ns()
        tail += data
        last_end = 0
        for match in _STAMP.finditer(tail):
            first_ns = first_ns or now_ns
            delays.append((now_ns - int(match.group(1))) / 1e6)
            last_end = match.end()
        done = done or b"[DONE]" in tail
        tail = tail[last_end:][-256:]
    writer.close()
    ttfb_ms = ((first_ns or time.monotonic_ns()) - sent_ns) / 1e6
    return StreamRun(ttfb_ms, delays, ok=bool(delays) and done)


@dataclass(frozen=True)
class StreamTimings:
    streams: int
    failed: int
    ttfb_p50_ms: float
    ttfb_p99_ms: float
    chunk_delay_p50_ms: float
    chunk_delay_p99_ms: float


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def stream_timings(url: str, model: str, streams: int) -> StreamTimings:
    """``streams`` streamed completions, one after the other."""
    runs = [await asyncio.wait_for(_one_stream(url, model), 30) for _ in range(streams)]
    good = [run for run in runs if run.ok]
    ttfbs = [run.ttfb_ms for run in good] or [float("nan")]
    delays = [d for run in good for d in run.chunk_delays_ms] or [float("nan")]
    return StreamTimings(streams, streams - len(good), round(statistics.median(ttfbs), 3),
                         round(_percentile(ttfbs, 99), 3),
                         round(statistics.median(delays), 3), round(_percentile(delays, 99), 3))


async def _peak_rss(pid: int, work: Awaitable[object]) -> tuple[int, object]:
    peak = rss_bytes(pid)
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.sleep(_SAMPLE_EVERY_S)
        peak = max(peak, rss_bytes(pid))
    return peak, task.result()


async def rss_during_streams(url: str, model: str, pid: int, streams: int) -> tuple[int, int]:
    """Peak RSS while ``streams`` long streams are open at once; and how many completed."""
    runs = asyncio.gather(*(_one_stream(url, model) for _ in range(streams)),
                          return_exceptions=True)
    peak, results = await _peak_rss(pid, asyncio.wait_for(runs, 60))
    assert isinstance(results, list)
    return peak, sum(1 for run in results if isinstance(run, StreamRun) and run.ok)


async def _upload(url: str, size: int) -> int:
    host, port, request = _request(url, "POST", b"", length=size)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    left = size
    while left:
        block = _BLOCK[: min(left, len(_BLOCK))]
        writer.write(block)
        await writer.drain()
        left -= len(block)
    response = await reader.read()
    writer.close()
    return int(response.split(b" ", 2)[1]) if response else 0


async def _download(url: str) -> int:
    host, port, request = _request(url, "GET", b"")
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    received = 0
    while data := await reader.read(1024 * 1024):
        received += len(data)
    writer.close()
    return received


@dataclass(frozen=True)
class Transfer:
    direction: str
    peak_rss_bytes: int
    seconds: float
    ok: bool


async def rss_during_transfer(url: str, pid: int, direction: str, size: int = GIB) -> Transfer:
    """Peak RSS of ``pid`` while ``size`` bytes are uploaded to, or downloaded from, ``url``."""
    started = time.monotonic()
    work = _upload(url, size) if direction == "upload" else _download(url)
    peak, result = await _peak_rss(pid, asyncio.wait_for(work, 300))
    ok = result == 200 if direction == "upload" else int(str(result)) >= size
    return Transfer(direction, peak, round(time.monotonic() - started, 2), ok)
