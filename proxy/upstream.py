"""The one shared way to the upstream, and the mapping of its errors.

httpx exceptions are turned into the proxy's own errors here and nowhere else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from proxy.errors import UpstreamTimeout, UpstreamUnreachable
from proxy.settings import ProxySettings
from proxy.upstream_transport import AiohttpTransport

_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
"""Methods httpx sends ``Content-Length: 0`` for when there is no body."""


class Upstream:
    """The one way upstream: httpx requests and responses over one pooled transport.

    httpx's API (``httpx.Request``, ``httpx.Response.aiter_raw``, its exceptions) without
    ``httpx.AsyncClient``'s per-request layers: cookies, auth flow, redirects and event
    hooks are all things a relay must not apply, and they cost more CPU per request than
    the transport itself (``bench/README.md``, "Profile"). Nothing is added to a request
    but ``Host`` and its body's framing: no default headers, no cookies, no redirects.
    """

    def __init__(self, settings: ProxySettings) -> None:
        timeout = httpx.Timeout(
            connect=settings.upstream_connect_timeout_s,
            read=settings.upstream_read_timeout_s,
            write=settings.upstream_write_timeout_s,
            pool=settings.upstream_pool_timeout_s,
        ).as_dict()
        self._extensions = {"timeout": timeout}
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
        """A request to send: the caller checks its URL before ``send``.

        A body in memory (or none) gets the headers httpx would give it, ``Host`` and
        ``Content-Length``, without httpx's encoding step, which costs three times the
        rest of building the request; a streamed body goes through httpx as given.
        """
        if content is not None and not isinstance(content, bytes):
            return httpx.Request(
                method, url, headers=headers, content=content, extensions=self._extensions
            )
        url = httpx.URL(url)
        framing = (
            [("content-length", str(len(content or b"")))]
            if content is not None or method in _METHODS_WITH_BODY
            else []
        )
        request = httpx.Request(
            method,
            url,
            headers=[("host", url.netloc.decode("ascii")), *(headers or []), *framing],
            stream=httpx.ByteStream(content or b""),
            extensions=self._extensions,
        )
        request.read()  # as httpx does for a body in memory: ``request.content`` is set
        return request

    async def send(self, request: httpx.Request) -> httpx.Response:
        """The upstream's answer, its body not read yet (``aiter_raw``, then ``aclose``)."""
        response = await self._transport.handle_async_request(request)
        response.request = request
        return response

    @staticmethod
    def raw_body(response: httpx.Response) -> AsyncIterator[bytes]:
        """The response's raw body, each piece as the transport reads it.

        The transport's own stream, as ``response.aiter_raw()`` would give it without
        the chunker and the two context managers httpx puts around it. The caller
        closes the response (``aclose``) when done.
        """
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        return stream.__aiter__()

    async def aclose(self) -> None:
        await self._transport.aclose()


class UpstreamErrors:
    """Map httpx's errors raised inside the block; ``during`` says what was going on.

    A class rather than a ``@contextmanager``, which costs a generator on every use.
    """

    def __init__(self, during: str) -> None:
        self._during = during

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if isinstance(exc, httpx.TimeoutException):
            raise UpstreamTimeout(
                f"The upstream timed out {self._during} ({type(exc).__name__})."
            ) from exc
        if isinstance(exc, httpx.TransportError):
            raise UpstreamUnreachable(
                f"The upstream could not be reached {self._during} ({type(exc).__name__})."
            ) from exc
