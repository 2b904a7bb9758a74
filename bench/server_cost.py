"""Instructions per call of a real server, the proxy's or the floor's, whatever the machine does.

``.venv/bin/python -m bench.server_cost [--floor] [--connections 16] [--requests 3000]``
starts the target as ``make bench`` does (uvicorn, the nginx upstream, a private Redis),
but under valgrind's callgrind, and counts the instructions of its process, every thread
(the log writer's too), while a client posts ``--requests`` small chat completions over
``--connections`` keep-alive connections: the counters are zeroed after a warm-up and
dumped once the last answer is in, so start-up is left out.

Unlike CPU time under ``wrk``, the count does not move with the machine's load or speed,
so two versions (or the proxy and the floor) compare to a percent. Unlike
``bench.proxy_cost``, it includes uvicorn, the sockets' system calls' user-space side and
the batching that concurrent calls bring. The server runs about fifty times slower under
valgrind, so records are batched more than at full speed: the proxy's figure is a little
low against a real run's. About a minute per target.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench import versus
from bench.rig import Stoppers, start_rig, stop_all
from bench.targets import (
    CLIENT_KEY,
    JSON_MODEL,
    Target,
    chat_body,
    start_floor,
    start_proxy,
)

WARM_UP = 300


def _request(url_path: str, port: int) -> bytes:
    body = chat_body(JSON_MODEL).encode()
    return (
        f"POST {url_path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
        f"content-type: application/json\r\nauthorization: Bearer {CLIENT_KEY}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _post(port: int, requests: int, connections: int) -> None:
    """``requests`` calls over ``connections`` keep-alive connections; each must be a 200."""
    request = _request("/v1/chat/completions", port)
    left = requests

    async def connection() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while left > 0:
                left -= 1
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"the target answered {head[:200]!r}")
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                if length is None:
                    raise RuntimeError("an answer without Content-Length")
                await reader.readexactly(int(length.group(1)))
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))


def _callgrind(pid: int, *options: str) -> None:
    subprocess.run(["callgrind_control", *options, str(pid)], check=True,
                   capture_output=True)


def _dumped_instructions(out: Path) -> int:
    """The total of what ``callgrind_control --dump`` wrote next to ``out`` (``out.1``, or
    one file per thread: ``out.1-01``, ``out.1-02``...)."""
    deadline = time.monotonic() + 60
    while not (dumps := sorted(out.parent.glob(f"{out.name}.*"))):
        if time.monotonic() > deadline:
            raise RuntimeError(f"callgrind wrote no dump next to {out}")
        time.sleep(0.5)
    time.sleep(1.0)  # written whole
    total = 0
    for dump in dumps:
        found = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.MULTILINE)
        if found is None:
            raise RuntimeError(f"no total in {dump}")
        total += int(found.group(1))
    return total


def measure(floor: bool, requests: int, connections: int,
            proxy_env: dict[str, str] | None = None) -> float:
    """Instructions per call of the target's process."""
    with tempfile.TemporaryDirectory(prefix="server-cost-") as tmp:
        workdir = Path(tmp)
        out = workdir / "callgrind.out"
        wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        stoppers: Stoppers = []
        try:
            rig = start_rig(workdir, stoppers)
            target: Target
            if floor:
                target = start_floor(rig.json_upstream.removesuffix("/v1"), workdir,
                                     wrapper=wrapper)
            else:
                target = start_proxy("proxy", rig.json_upstream, rig.redis_url, 1, workdir,
                                     proxy_env, wrapper=wrapper)
            stoppers.append(target.stop)
            assert target.pid is not None
            port = urlsplit(target.json_url).port
            assert port is not None
            asyncio.run(_post(port, WARM_UP, connections))
            time.sleep(1.0)  # the warm-up's records published, its log lines written
            _callgrind(target.pid, "--zero")
            asyncio.run(_post(port, requests, connections))
            time.sleep(1.0)  # and these
            _callgrind(target.pid, "--dump")
            return _dumped_instructions(out) / requests
        finally:
            stop_all(stoppers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server_cost", description=__doc__)
    parser.add_argument("--floor", action="store_true", help="the floor instead of the proxy")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--proxy-pythonpath", type=Path, default=None,
                        help="the proxy of this source tree (as python -m bench --suite floor)")
    args = parser.parse_args(argv)
    per_call = measure(args.floor, args.requests, args.connections,
                       versus.proxy_env(args.proxy_pythonpath))
    print(f"{'floor' if args.floor else 'proxy'}: {per_call:,.0f} instructions per call "
          f"(callgrind, {args.requests} calls over {args.connections} connections)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
