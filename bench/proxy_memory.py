"""The proxy's memory while it relays a very large upload and a very large stream.

``.venv/bin/python -m bench.proxy_memory [--mib 1024]`` starts a private
``redis-server``, a minimal upstream (in this process) and ONE ``python -m proxy``, then

1. uploads ``--mib`` MiB through the proxy with a ``Content-Length`` (streamed upstream,
   never held whole), and
2. streams a chat completion of ``--mib`` MiB of SSE back through it (assembled for
   the record as it passes), and
3. the same stream gzip-compressed (decoded for the record up to
   ``RECORD_MAX_DECODED_BYTES``, in bounded pieces),

sampling the proxy's RSS (``/proc/<pid>/status``) every 20 ms. The growth is the peak
during a transfer minus the RSS after a warm-up; the target is at most 50 MB for
1 GiB each way. Results go to ``bench/results/proxy_memory.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis
import uvicorn
from starlette.types import Receive, Scope, Send

from shared.streams import DEFAULT_STREAM
from tests.support.ports import free_port, wait_for_port
from tests.support.redis_server import RedisServer

MIB = 1024 * 1024
MB = 1_000_000
TARGET_GROWTH_MB = 50.0
RESULTS = Path(__file__).resolve().parent / "results"
_EVENT_CONTENT = "x" * (16 * 1024)
_EVENT = (
    "data: "
    + json.dumps({"id": "c1", "object": "chat.completion.chunk", "model": "bench",
                  "choices": [{"index": 0, "delta": {"content": _EVENT_CONTENT}}]})
    + "\n\n"
).encode()


class _Upstream:
    """POST /v1/files drains the body; POST /v1/chat/completions streams ``stream_bytes``
    (gzip-compressed when the request asks with ``accept-encoding: gzip``)."""

    def __init__(self, stream_bytes: int) -> None:
        self.stream_bytes = stream_bytes
        self.received_bytes = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        received = 0
        while True:
            message = await receive()
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        self.received_bytes = received
        if scope["path"] == "/v1/chat/completions":
            gzipped = any(n == b"accept-encoding" and b"gzip" in v for n, v in scope["headers"])
            await self._stream(send, gzipped)
            return
        body = json.dumps({"object": "file", "bytes": received}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    async def _stream(self, send: Send, gzipped: bool) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS) if gzipped else None
        if compressor is not None:
            headers.append((b"content-encoding", b"gzip"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        batch = _EVENT * 4
        sent = 0
        while sent < self.stream_bytes:
            body = batch
            if compressor is not None:
                body = compressor.compress(batch) + compressor.flush(zlib.Z_SYNC_FLUSH)
            await send({"type": "http.response.body", "body": body, "more_body": True})
            sent += len(batch)
        tail = b"data: [DONE]\n\n"
        if compressor is not None:
            tail = compressor.compress(tail) + compressor.flush()
        await send({"type": "http.response.body", "body": tail})


class _RssSampler:
    """Samples a process's resident set size in a background thread."""

    def __init__(self, pid: int) -> None:
        self._path = Path(f"/proc/{pid}/status")
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def current_bytes(self) -> int:
        for line in self._path.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self.current_bytes())
            time.sleep(0.02)

    def __enter__(self) -> _RssSampler:
        self.peak_bytes = self.current_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class Result:
    case: str
    mib: int
    seconds: float
    baseline_mb: float
    peak_mb: float

    @property
    def growth_mb(self) -> float:
        return self.peak_mb - self.baseline_mb


def _upload(total_bytes: int) -> Iterator[bytes]:
    chunk = b"\x01" * MIB
    for _ in range(total_bytes // MIB):
        yield chunk


def _serve_upstream(app: _Upstream) -> tuple[uvicorn.Server, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    wait_for_port(port)
    return server, port


def run(mib: int) -> list[Result]:
    """Both cases against one proxy; returns their results."""
    total = mib * MIB
    upstream = _Upstream(stream_bytes=total)
    server, upstream_port = _serve_upstream(upstream)
    with tempfile.TemporaryDirectory() as folder, RedisServer(Path(folder) / "redis") as rds:
        port = free_port()
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("OPENAI_", "PROXY_", "REDIS_", "AUTH_", "RECORD_"))}
        env.update(OPENAI_BASE_URL=f"http://127.0.0.1:{upstream_port}/v1",
                   OPENAI_API_KEY="sk-bench", REDIS_URL=rds.url, PROXY_HOST="127.0.0.1",
                   PROXY_PORT=str(port), LOG_LEVEL="WARNING", MAX_REQUEST_BYTES=str(2 * total))
        proxy = subprocess.Popen([sys.executable, "-m", "proxy"], cwd=folder, env=env)
        try:
            wait_for_port(port)
            base = f"http://127.0.0.1:{port}/v1"
            results = []
            with httpx.Client(timeout=600) as client:
                for _ in range(20):  # warm-up: imports, pools, first records
                    client.post(f"{base}/files", content=b"{}")
                time.sleep(0.5)
                with _RssSampler(proxy.pid) as rss:
                    baseline = rss.current_bytes()
                    started = time.monotonic()
                    answer = client.post(
                        f"{base}/files", content=_upload(total),
                        headers={"content-length": str(total),
                                 "content-type": "application/octet-stream"},
                    )
                    answer.raise_for_status()
                    seconds = time.monotonic() - started
                assert upstream.received_bytes == total, upstream.received_bytes
                results.append(Result("upload", mib, seconds, baseline / MB, rss.peak_bytes / MB))
                for case, encoding in (("streamed response", "identity"),
                                       ("streamed response, gzip", "gzip")):
                    with _RssSampler(proxy.pid) as rss:
                        baseline = rss.current_bytes()
                        started = time.monotonic()
                        received = 0
                        with client.stream("POST", f"{base}/chat/completions",
                                           json={"model": "bench", "stream": True},
                                           headers={"accept-encoding": encoding}) as response:
                            for chunk in response.iter_raw():
                                received += len(chunk)
                        seconds = time.monotonic() - started
                    assert received > 0 and (encoding == "gzip" or received >= total), received
                    results.append(
                        Result(case, mib, seconds, baseline / MB, rss.peak_bytes / MB)
                    )
            records = redis.Redis.from_url(rds.url)
            deadline = time.monotonic() + 30
            while records.xlen(DEFAULT_STREAM) < 23 and time.monotonic() < deadline:
                time.sleep(0.1)
            largest = max(len(f[b"record"]) for _, f in records.xrange(DEFAULT_STREAM))
            records.close()
            print(f"largest record: {largest / MB:.2f} MB")
            return results
        finally:
            proxy.terminate()
            proxy.wait(timeout=30)
            server.should_exit = True


def _table(results: Sequence[Result], command: str) -> str:
    lines = [
        "# Proxy memory while relaying very large bodies",
        "",
        f"`{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {sys.version.split()[0]},"
        f" {os.cpu_count()} CPUs (shared). Target: RSS growth at most {TARGET_GROWTH_MB:.0f} MB.",
        "",
        "| case | size | time | throughput | RSS before | RSS peak | growth | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        verdict = "ok" if r.growth_mb <= TARGET_GROWTH_MB else "OVER"
        lines.append(
            f"| {r.case} | {r.mib} MiB | {r.seconds:.1f} s | {r.mib / r.seconds:.0f} MiB/s "
            f"| {r.baseline_mb:.1f} MB | {r.peak_mb:.1f} MB | {r.growth_mb:+.1f} MB | {verdict} |"
        )
    overall = max(r.peak_mb for r in results) - results[0].baseline_mb
    lines += ["", f"All cases, RSS after warm-up to the highest peak: {overall:+.1f} MB."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy_memory", description=__doc__)
    parser.add_argument("--mib", type=int, default=1024, help="size of each body (default 1024)")
    args = parser.parse_args(argv)
    results = run(args.mib)
    table = _table(results, "python -m bench.proxy_memory" + (f" --mib {args.mib}"
                                                               if args.mib != 1024 else ""))
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "proxy_memory.md").write_text(table)
    return 0 if all(r.growth_mb <= TARGET_GROWTH_MB for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
