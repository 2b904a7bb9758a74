"""The one shared way to the upstream, and the mapping of its errors.

httpx exceptions are turned into the proxy's own errors here and nowhere else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx

from proxy.errors import UpstreamTimeout, UpstreamUnreachable
from proxy.settings import ProxySettings
from proxy.upstream_transport import AiohttpTransport


class Upstream:
    """The one way upstream: httpx requests and responses over one pooled transport.

    httpx's API (``httpx.Request``, ``httpx.Response.aiter_raw``, its exceptions) without
    ``httpx.AsyncClient``'s per-request layers: cookies, auth flow, redirects and event
    hooks are all things a relay must not apply, and they cost more CPU per request than
    the transport itself (``bench/README.md``, "Profile"). Nothing is added to a request
    but ``Host`` and its body's framing: no default headers, no cookies, no redirects.
    """

    def __init__(self, settings: ProxySettings) -> None:
        self._timeout = httpx.Timeout(
            connect=settings.upstream_connect_timeout_s,
            read=settings.upstream_read_timeout_s,
            write=settings.upstream_write_timeout_s,
            pool=settings.upstream_pool_timeout_s,
        ).as_dict()
        limits = httpx.Limits(
            max_connections=settings.upstream_max_connections,
            max_keepalive_connections=settings.upstream_max_keepalive_connections,
            keepalive_expiry=settings.upstream_keepalive_expiry_s,
        )
        self._transport: httpx.AsyncBaseTransport = (
            AiohttpTransport(limits)
            if settings.upstream_transport == "aiohttp"
            # No proxies from the environment: the upstream is reached directly.
            else httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
        )

    def request(
        self,
        method: str,
        url: httpx.URL | str,
        headers: list[tuple[str, str]] | None = None,
        content: bytes | AsyncIterator[bytes] | None = None,
    ) -> httpx.Request:
        """A request to send: the caller checks its URL before ``send``."""
        return httpx.Request(
            method, url, headers=headers, content=content, extensions={"timeout": self._timeout}
        )

    async def send(self, request: httpx.Request) -> httpx.Response:
        """The upstream's answer, its body not read yet (``aiter_raw``, then ``aclose``)."""
        response = await self._transport.handle_async_request(request)
        response.request = request
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()


@contextmanager
def upstream_errors(during: str) -> Iterator[None]:
    """Map httpx's errors raised inside the block; ``during`` says what was going on."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(f"The upstream timed out {during} ({type(exc).__name__}).") from exc
    except httpx.TransportError as exc:
        raise UpstreamUnreachable(
            f"The upstream could not be reached {during} ({type(exc).__name__})."
        ) from exc
