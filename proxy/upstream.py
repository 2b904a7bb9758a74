"""The one shared way to the upstream, aiohttp's connection pool, and the mapping of its errors.

aiohttp's exceptions are turned into the proxy's own errors here and nowhere else.
Bytes pass unchanged both ways: nothing is added to a request but ``Host`` and its
body's framing (no default headers, no cookies, no compression), nothing is decoded
from a response, and no redirect is followed.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import aiohttp
import yarl

from proxy.errors import UpstreamTimeout, UpstreamUnreachable
from proxy.settings import ProxySettings

# What aiohttp would add on its own: the client's own values (or none) go upstream instead.
_SKIP_AUTO_HEADERS = frozenset({"Accept", "Accept-Encoding", "User-Agent", "Content-Type"})


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


class Upstream:
    """One aiohttp session per process, with the proxy's timeouts and limits.

    Only ``send``: the session's per-request layers a relay must not apply are off
    (``allow_redirects=False``, a cookie jar that keeps nothing, no decompression).
    """

    def __init__(self, settings: ProxySettings) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=settings.upstream_pool_timeout_s,  # aiohttp's ``connect`` includes the pool
            sock_connect=settings.upstream_connect_timeout_s,
            sock_read=settings.upstream_read_timeout_s,
        )
        self._max_connections = settings.upstream_max_connections
        self._keepalive_s = settings.upstream_keepalive_expiry_s
        self._session: aiohttp.ClientSession | None = None

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=self._keepalive_s,
            ttl_dns_cache=300,
            enable_cleanup_closed=False,
        )
        return aiohttp.ClientSession(
            connector=connector,
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=self._timeout,
        )

    async def send(
        self,
        method: str,
        url: yarl.URL,
        headers: list[tuple[str, str]],
        content: bytes | AsyncIterable[bytes] | None,
    ) -> aiohttp.ClientResponse:
        """The upstream's answer, its body not read yet (``response.content``, then
        ``response.release()``).

        A body in memory goes with its ``Content-Length``; a streamed one with the
        ``Content-Length`` in ``headers``, else chunked. Raises ``UpstreamUnreachable``
        or ``UpstreamTimeout``, or what the body's source raised.
        """
        session = self._session
        if session is None:
            # Created on first use: an aiohttp session belongs to the running event loop.
            session = self._session = self._new_session()
        streamed: _RequestBody | None = None
        data: bytes | AsyncIterator[bytes] | None
        if content is None or isinstance(content, bytes):
            # None for b: aiohttp sends ``Content-Length: 0`` itself, but for GET, HEAD, OPTIONS.
            data = content or None
        else:
            streamed = _RequestBody(content)
            data = streamed.chunks()
        try:
            with UpstreamErrors("before answering"):
                return await session.request(
                    method,
                    url,
                    headers=headers,
                    data=data,
                    allow_redirects=False,
                    compress=None,
                )
        except (UpstreamUnreachable, UpstreamTimeout):
            if streamed is not None and streamed.error is not None:
                raise streamed.error from None
            raise

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class UpstreamErrors:
    """Map aiohttp's errors raised inside the block; ``during`` says what was going on.

    A class rather than a ``@contextmanager``, which costs a generator on every use.
    """

    def __init__(self, during: str) -> None:
        self._during = during

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        # aiohttp's timeouts (connect, pool, socket read) are ``TimeoutError``s too.
        if isinstance(exc, TimeoutError):
            raise UpstreamTimeout(
                f"The upstream timed out {self._during} ({type(exc).__name__})."
            ) from exc
        if isinstance(exc, aiohttp.ClientError):
            raise UpstreamUnreachable(
                f"The upstream could not be reached {self._during} ({type(exc).__name__})."
            ) from exc
