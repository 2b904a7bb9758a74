"""The floor of a Python relay on this machine: forward ``/v1/...`` to an upstream, no record.

    python -m bench.floor_relay uvicorn|aiohttp PORT UPSTREAM_BASE [WORKERS]
                                         (UPSTREAM_BASE like http://127.0.0.1:9000)

``uvicorn``: a raw ASGI app on uvicorn (httptools, uvloop), an aiohttp client with a
keep-alive pool, in ``WORKERS`` processes (default 1) as the proxy runs them.
``aiohttp``: aiohttp's own server, the same client. It reads each
response whole before answering (no streaming), checks nothing and keeps nothing: the
least a Python relay on this stack does per call, which the proxy is measured against
(``bench/proxy_bench.py``, ``bench/proxy_cost.py --floor``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import aiohttp

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class FloorRelay:
    """The relay to ``base``; ``asgi`` is its ASGI app, ``handle`` its aiohttp handler."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.session: aiohttp.ClientSession | None = None

    def client(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256), auto_decompress=False
            )
        return self.session

    async def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        async with self.client().request(method, self.base + path, headers=headers,
                                         data=body) as r:
            data = await r.read()
            return r.status, [(k, v) for k, v in r.headers.items() if k.lower() not in HOP], data

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        hdrs = {k.decode(): v.decode() for k, v in scope["headers"] if k.decode() not in HOP}
        status, rh, data = await self.forward(scope["method"], scope["path"], hdrs, body)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in rh]
                    + [(b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    async def handle(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.read()
        hdrs = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        status, rh, data = await self.forward(request.method, request.path_qs, hdrs, body)
        return web.Response(status=status, headers=dict(rh), body=data)


_UPSTREAM_ENV = "FLOOR_UPSTREAM"


def worker_app() -> Any:
    """Each worker's app (uvicorn's factory), to the upstream in ``FLOOR_UPSTREAM``."""
    return FloorRelay(os.environ[_UPSTREAM_ENV]).asgi


def main(argv: list[str]) -> None:
    mode, port, base = argv[0], int(argv[1]), argv[2]
    workers = int(argv[3]) if len(argv) > 3 else 1
    relay = FloorRelay(base)
    if mode == "uvicorn":
        import uvicorn

        os.environ[_UPSTREAM_ENV] = base
        # asgi3 said, not guessed: uvicorn takes a bound method for an ASGI 2 app.
        app = "bench.floor_relay:worker_app" if workers > 1 else relay.asgi
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", workers=workers,
                    factory=workers > 1, access_log=False, loop="uvloop", http="httptools",
                    interface="asgi3")
        return
    import uvloop
    from aiohttp import web

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", relay.handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(sys.argv[1:])
