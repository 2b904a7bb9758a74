"""The shared way upstream: bytes as sent, errors as the proxy's own, no cookie jar."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import uvicorn
import yarl
from starlette.types import Receive, Scope, Send

from proxy.errors import UpstreamUnreachable
from proxy.settings import ProxySettings
from proxy.upstream import Upstream
from tests.support.ports import free_port, wait_for_port


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Sets a cookie, and answers with the Cookie header, raw path and framing it was sent."""
    if scope["type"] != "http":
        return
    headers = dict(scope["headers"])
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"set-cookie", b"__cf_bm=someone-elses; Path=/"),
        (b"x-cookie", headers.get(b"cookie", b"none")),
        (b"x-raw-path", scope["raw_path"]),
        (b"x-hosts", b",".join(value for name, value in scope["headers"] if name == b"host")),
        (b"x-content-length", headers.get(b"content-length", b"none")),
        (b"x-body", str(len(body)).encode()),
    ]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_echo, port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    await asyncio.to_thread(wait_for_port, port)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


def _url(text: str) -> yarl.URL:
    return yarl.URL(text, encoded=True)  # as ``proxy.targets`` builds them


async def test_a_cookie_set_for_one_caller_never_reaches_the_next(upstream: str) -> None:
    client = Upstream(ProxySettings(_env_file=None))  # type: ignore[call-arg]
    try:
        seen = []
        for _ in range(2):
            response = await client.send("GET", _url(f"{upstream}/a%2Fb?x=%2F"), [], None)
            seen.append(response.headers["x-cookie"])
            assert response.headers["x-raw-path"] == "/a%2Fb"  # not re-quoted
            assert b"".join([chunk async for chunk in response.content.iter_any()]) == b"ok"
            response.release()
    finally:
        await client.aclose()
    assert seen == ["none", "none"]


@pytest.mark.parametrize(
    ("method", "content", "content_length"),
    [("POST", b"hello", "5"), ("POST", None, "0"), ("PUT", b"", "0"), ("GET", None, "none"),
     ("DELETE", b"{}", "2")],
)
async def test_a_body_in_memory_goes_with_one_host_and_its_length(
    upstream: str, method: str, content: bytes | None, content_length: str
) -> None:
    client = Upstream(ProxySettings(_env_file=None))  # type: ignore[call-arg]
    try:
        response = await client.send(method, _url(f"{upstream}/x"), [("x-a", "1")], content)
        response.release()
    finally:
        await client.aclose()
    assert response.headers["x-hosts"] == upstream.removeprefix("http://")
    assert response.headers["x-content-length"] == content_length
    assert response.headers["x-body"] == str(len(content or b""))


async def test_a_refused_connection_is_unreachable_not_a_timeout() -> None:
    client = Upstream(ProxySettings(_env_file=None))  # type: ignore[call-arg]
    try:
        with pytest.raises(UpstreamUnreachable):
            await client.send("GET", _url(f"http://127.0.0.1:{free_port()}/"), [], None)
    finally:
        await client.aclose()


async def test_an_error_of_the_body_source_is_raised_as_itself(upstream: str) -> None:
    class Refused(Exception):
        """Stands for the proxy's own errors (body too large, client gone)."""

    async def body() -> AsyncIterator[bytes]:
        yield b"a" * 1000
        raise Refused

    client = Upstream(ProxySettings(_env_file=None))  # type: ignore[call-arg]
    try:
        with pytest.raises(Refused):
            await client.send("POST", _url(f"{upstream}/"), [], body())
    finally:
        await client.aclose()
