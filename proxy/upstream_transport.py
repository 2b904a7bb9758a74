"""An httpx transport that sends over aiohttp's connection pool.

The proxy keeps httpx's API (requests, responses, ``aiter_raw``, its exceptions) but
not httpcore's pool, whose per-request bookkeeping dominated the proxy's CPU time under
load (``bench/README.md``, "Profile"). aiohttp's errors are turned into httpx's here,
so ``proxy.upstream.UpstreamErrors`` maps one family of exceptions as before.

Bytes pass unchanged both ways: no automatic headers beyond Host and the body's framing,
no decompression, no redirects, no cookies.

Why not the ``httpx-aiohttp`` package, which adapts aiohttp to httpx too: measured side
by side (0.2.0, given this module's aiohttp session; ``bench/README.md``), it costs 3.9%
more instructions per call, and it would change what the proxy does: it maps a dropped
connection (``ServerDisconnectedError``) to a connect timeout (a 504 instead of a 502),
and hands aiohttp the URL as a string to parse and re-quote again.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from functools import lru_cache

import aiohttp
import httpx
import yarl

# What aiohttp would add on its own: the client's own values (or none) go upstream instead.
_SKIP_AUTO_HEADERS = frozenset({"Accept", "Accept-Encoding", "User-Agent", "Content-Type"})
# aiohttp frames a body of unknown length itself; a Content-Length is kept and honoured.
_FRAMING_HEADERS = frozenset({b"transfer-encoding"})


def _as_httpx(exc: Exception) -> httpx.TransportError:
    """aiohttp's exception as httpx's, the most specific first."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.TimeoutException(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, aiohttp.ClientOSError | aiohttp.ClientConnectionError):
        return httpx.ReadError(message)
    return httpx.TransportError(message)


class _HttpxErrors:
    """Raises aiohttp's exceptions (and timeouts) as httpx's; a class rather than a
    ``@contextmanager``, which costs a generator on every use."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if isinstance(exc, aiohttp.ClientError | TimeoutError):
            raise _as_httpx(exc) from exc


_httpx_errors = _HttpxErrors()  # holds no state: one serves every use


@lru_cache(maxsize=64)
def _client_timeout(
    pool: float | None, connect: float | None, read: float | None
) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=pool, sock_connect=connect, sock_read=read)


def _yarl_url(url: str) -> yarl.URL:
    # As encoded by the client: yarl would otherwise re-quote it (%2F -> /).
    if "?" in url:
        return yarl.URL(url, encoded=True)
    return _yarl_url_without_query(url)


@lru_cache(maxsize=1024)
def _yarl_url_without_query(url: str) -> yarl.URL:
    """Parsed once per path: most calls repeat a few (never a query, which may hold a key)."""
    return yarl.URL(url, encoded=True)


class _RequestBody:
    """The request body as aiohttp reads it, remembering what its source raised.

    aiohttp writes the body in a task of its own and reports a failing source as a
    connection error; the proxy needs the source's own error (body too large, client
    gone) to answer rightly, so it is raised again in place of aiohttp's.
    """

    def __init__(self, source: AsyncIterable[bytes]) -> None:
        self._source = source
        self.error: Exception | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._source:
                yield chunk
        except Exception as exc:
            self.error = exc
            raise


class _ResponseStream(httpx.AsyncByteStream):
    """The upstream body, each piece as soon as it is read from the socket."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors:
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # Back to the pool when the body was read to its end; closed otherwise.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncClient(transport=AiohttpTransport(...))``: one pool per process."""

    def __init__(self, limits: httpx.Limits, keepalive_s: float = 15.0) -> None:
        self._limits = limits
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self._limits.keepalive_expiry or self._keepalive_s,
            ttl_dns_cache=300,
            enable_cleanup_closed=False,
        )
        return aiohttp.ClientSession(
            connector=connector,
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            # Created on first use: an aiohttp session belongs to the running event loop.
            self._session = self._new_session()
        body: bytes | AsyncIterator[bytes] | None
        streamed: _RequestBody | None = None
        try:
            body = request.content or None
        except httpx.RequestNotRead:
            assert isinstance(request.stream, AsyncIterable)
            streamed = _RequestBody(request.stream)
            body = streamed.chunks()
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers.raw
            if name.lower() not in _FRAMING_HEADERS
        ]
        try:
            response = await self._send(request, headers, body)
        except httpx.TransportError:
            if streamed is not None and streamed.error is not None:
                raise streamed.error from None
            raise
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response),
            request=request,
            extensions={"http_version": b"HTTP/1.1",
                        "reason_phrase": (response.reason or "").encode("latin-1")},
        )

    async def _send(
        self,
        request: httpx.Request,
        headers: list[tuple[str, str]],
        body: bytes | AsyncIterator[bytes] | None,
    ) -> aiohttp.ClientResponse:
        assert self._session is not None
        timeout = request.extensions.get("timeout", {})
        with _httpx_errors:
            return await self._session.request(
                request.method,
                _yarl_url(str(request.url)),
                headers=headers,
                data=body,
                allow_redirects=False,
                compress=None,
                timeout=_client_timeout(
                    timeout.get("pool"), timeout.get("connect"), timeout.get("read")
                ),
            )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
