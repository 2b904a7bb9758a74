"""What one forwarded call costs the proxy's own process, without the server or the network.

``.venv/bin/python -m bench.proxy_cost [--requests N] [--callgrind] [--floor]`` drives the proxy's
ASGI app (``proxy.dispatch.Dispatch``, lifespan included) in-process, one call after
another: a small chat completion POSTed with a proxy key, answered by nginx (the
benchmark's canned upstream) and published to a private ``redis-server``. uvicorn,
the client and its socket are left out, so the figure is the proxy's own work per call:
building and checking the upstream URL, the upstream client, relaying, the record,
scrubbing, publishing and its log line.

- CPU time per call (``time.process_time``, this process: the log writer thread
  included): quick, but on a shared or virtual machine it varies by 30% from run to
  run; five runs, the lowest and the median are printed.
- ``--callgrind``: instructions per call, counted by valgrind's callgrind in two runs
  (N and 6 N calls after the same warm-up; the difference divided by 5 N). The same
  code gives the same count whatever else the machine does, so two versions can be
  compared to a percent. Slow: about two minutes.
- ``--floor``: the same for the floor (``bench/floor_relay.py``'s ASGI app, the same
  calls, the same upstream): what any Python relay on this stack costs, to set the
  proxy's figure against.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import uvloop

from bench import callgrind
from bench.floor_relay import FloorRelay
from bench.nginx import Nginx
from bench.targets import CLIENT_KEY, JSON_MODEL
from proxy import log_thread
from proxy.app import create_app
from proxy.dispatch import Dispatch
from proxy.log_redaction import setup_redacted_logging
from proxy.settings import ProxySettings
from tests.support.redis_server import RedisServer

WARM_UP = 300
BODY = b'{"model":"%s","messages":[{"role":"user","content":"Say hi"}]}' % JSON_MODEL.encode()
_HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"content-type", b"application/json"),
    (b"authorization", b"Bearer " + CLIENT_KEY.encode()),
    (b"content-length", str(len(BODY)).encode()),
    (b"user-agent", b"bench"),
]


@contextmanager
def _services() -> Iterator[dict[str, str]]:
    """nginx and redis-server on free ports, and the proxy's environment for them."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        download = work / "download"
        download.write_bytes(b"x")
        redis = RedisServer(work / "redis")
        redis.start()
        upstream = Nginx.upstream(work / "nginx", download)
        try:
            upstream.start()
            yield {
                "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream.port}/v1",
                "OPENAI_API_KEY": "sk-bench-upstream",
                "AUTH_MODE": "keys",
                "PROXY_API_KEYS": f"{CLIENT_KEY}=bench",
                "REDIS_URL": redis.url,
                "REDIS_STREAM": "bench:cost",
                "SPOOL_DIR": str(work / "spool"),
            }
        finally:
            upstream.stop()
            redis.stop()


App = Callable[[dict[str, object], object, object], Awaitable[None]]


@asynccontextmanager
async def _proxy(settings: ProxySettings) -> AsyncIterator[App]:
    fastapi_app = create_app(settings)
    async with fastapi_app.router.lifespan_context(fastapi_app):
        yield Dispatch(fastapi_app)  # type: ignore[misc]


@asynccontextmanager
async def _floor(settings: ProxySettings) -> AsyncIterator[App]:
    relay = FloorRelay(settings.openai_base_url.removesuffix("/v1"))
    try:
        yield relay.asgi
    finally:
        if relay.session is not None:
            await relay.session.close()


async def _drive(settings: ProxySettings, requests: int, floor: bool = False) -> float:
    """CPU seconds per call over ``requests`` calls, after the warm-up."""

    async def call() -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/v1/chat/completions",
            "raw_path": b"/v1/chat/completions", "query_string": b"", "root_path": "",
            "headers": _HEADERS, "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000), "state": {},
        }
        answered = asyncio.Event()
        statuses: list[int] = []
        body_sent = False

        async def receive() -> dict[str, object]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": BODY, "more_body": False}
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])  # type: ignore[arg-type]
            elif not message.get("more_body"):
                answered.set()

        await app(scope, receive, send)  # type: ignore[arg-type]
        if statuses != [200]:
            raise RuntimeError(f"the proxy answered {statuses}")

    async with (_floor if floor else _proxy)(settings) as app:
        for _ in range(WARM_UP):
            await call()
        await asyncio.sleep(0.2)  # the warm-up's records published
        started = time.process_time()
        for _ in range(requests):
            await call()
        await asyncio.sleep(0.05)  # and these
        return (time.process_time() - started) / requests


def _one_run(requests: int, floor: bool = False) -> float:
    settings = ProxySettings()
    setup_redacted_logging(settings)  # as the proxy sets it up
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    with open(os.devnull, "w") as nowhere:
        handler.setStream(nowhere)  # lines formatted and written as in production, to nowhere
        log_thread.start()
        try:
            return uvloop.run(_drive(settings, requests, floor))
        finally:
            log_thread.stop()


def _callgrind_instructions(requests: int, floor: bool) -> int:
    """Instructions of a whole run of the proxy under callgrind (start-up included)."""
    floor_flag = ["--floor"] if floor else []
    return callgrind.instructions(
        "bench.proxy_cost", "--requests", str(requests), "--inner", *floor_flag
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy_cost", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--callgrind", action="store_true",
                        help="instructions per call, counted by valgrind (slow, repeatable)")
    parser.add_argument("--floor", action="store_true",
                        help="cost the floor (bench/floor_relay.py) instead of the proxy")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.callgrind:
        base = max(args.requests // 20, 50)
        short = _callgrind_instructions(base, args.floor)
        long = _callgrind_instructions(6 * base, args.floor)
        print(f"instructions per call: {(long - short) // (5 * base):,} "
              f"(callgrind, {base} and {6 * base} calls)")
        return 0
    with _services() as env:
        os.environ.update(env)
        if args.inner:  # one run, inside valgrind
            _one_run(args.requests, args.floor)
            return 0
        per_call_us = sorted(_cpu_run(args.requests, args.floor) * 1e6 for _ in range(5))
    print(f"CPU per call: lowest {per_call_us[0]:.0f} us, median "
          f"{statistics.median(per_call_us):.0f} us (5 runs of {args.requests} calls)")
    return 0


def _cpu_run(requests: int, floor: bool) -> float:
    """One run in a fresh interpreter, so that runs do not warm each other up."""
    code = f"from bench.proxy_cost import _one_run; print(_one_run({requests}, {floor}))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=True, capture_output=True, text=True, env={**os.environ},
    )
    return float(done.stdout.split()[-1])


if __name__ == "__main__":
    raise SystemExit(main())
