"""``python -m bench.stream_usage [--streams N]``: what asking for usage costs a stream.

Streams chat completions from the paced SSE upstream (``bench/sse_upstream.py``, which
answers ``include_usage`` as the API does) directly, through a proxy with
``STREAM_USAGE=passthrough`` and through one with ``STREAM_USAGE=inject``, and prints the
time to the first chunk and the delay per chunk of each, round after round (the
``streaming`` rows of ``make bench``, without the rest of the suite). Then times
in-process the proxy's CPU work per event of an injected stream. Prints; writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

from bench.probes import stream_timings
from bench.targets import STREAM_MODEL, start_proxy, start_sse_upstream
from proxy.stream_usage import UsageStreamFilter, ask_for_usage
from tests.support.redis_server import RedisServer

_CHUNK = (
    b'data: {"id":"chatcmpl-AbC","object":"chat.completion.chunk","created":1700000000,'
    b'"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_1",'
    b'"choices":[{"index":0,"delta":{"content":" world"},"logprobs":null,'
    b'"finish_reason":null}],"usage":null,"obfuscation":"Xy3k"}\n\n'
)
_BODY = b'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"%s"}]}' % (
    b"x" * 2000
)


def _per_call_us(statement: Callable[[], object], number: int = 20_000) -> float:
    # CPU time, not wall time: on a shared machine the figure is then the work's own.
    runs = timeit.repeat(statement, number=number, repeat=5, timer=time.process_time)
    return min(runs) / number * 1e6


def _print_stream_timings(streams: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="stream-usage-") as tmp:
        workdir = Path(tmp)
        with RedisServer(workdir / "redis") as redis_server:
            port, upstream = start_sse_upstream(workdir)
            upstream_url = f"http://127.0.0.1:{port}/v1"
            targets = [("direct", f"{upstream_url}/chat/completions")]
            proxies = []
            try:
                for mode in ("passthrough", "inject"):
                    proxy = start_proxy(f"proxy-{mode}", upstream_url, redis_server.url, 1,
                                        workdir, {"STREAM_USAGE": mode})
                    proxies.append(proxy)
                    targets.append((f"proxy, STREAM_USAGE={mode}", proxy.stream_url))
                print("| target | first chunk p50 ms | per chunk p50 ms | per chunk p99 ms |")
                print("|---|---|---|---|")
                for _ in range(rounds):  # interleaved, so a change in load hits every target
                    for name, url in targets:
                        timings = asyncio.run(stream_timings(url, STREAM_MODEL, streams))
                        print(f"| {name} | {timings.ttfb_p50_ms} | "
                              f"{timings.chunk_delay_p50_ms} | {timings.chunk_delay_p99_ms} |")
            finally:
                for proxy in proxies:
                    proxy.stop()
                upstream.terminate()
                upstream.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_usage", description=__doc__)
    parser.add_argument("--streams", type=int, default=40, help="per target and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    _print_stream_timings(args.streams, args.rounds)
    usage_filter = UsageStreamFilter(lambda: None, 1 << 20)
    plain = _CHUNK.replace(b',"usage":null', b"")
    cut_us = _per_call_us(lambda: usage_filter.feed(_CHUNK))
    plain_us = _per_call_us(lambda: usage_filter.feed(plain))
    ask_us = _per_call_us(lambda: ask_for_usage(_BODY))
    print(f"\nin-process, per event: {cut_us:.2f} us cutting usage:null, {plain_us:.2f} us for "
          f"an event without usage; per request: {ask_us:.2f} us asking for usage (2 KB body)")


if __name__ == "__main__":
    main()
