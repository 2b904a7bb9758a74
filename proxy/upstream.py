"""The one shared HTTP client to the upstream, and the mapping of its errors.

httpx exceptions are turned into the proxy's own errors here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from proxy.errors import UpstreamTimeout, UpstreamUnreachable
from proxy.settings import ProxySettings
from proxy.upstream_transport import AiohttpTransport


def new_client(settings: ProxySettings) -> httpx.AsyncClient:
    """The process-wide client: explicit timeouts and limits, no redirects, no env proxies."""
    timeout = httpx.Timeout(
        connect=settings.upstream_connect_timeout_s,
        read=settings.upstream_read_timeout_s,
        write=settings.upstream_write_timeout_s,
        pool=settings.upstream_pool_timeout_s,
    )
    limits = httpx.Limits(
        max_connections=settings.upstream_max_connections,
        max_keepalive_connections=settings.upstream_max_keepalive_connections,
        keepalive_expiry=settings.upstream_keepalive_expiry_s,
    )
    aiohttp = settings.upstream_transport == "aiohttp"
    client = httpx.AsyncClient(
        timeout=timeout,
        limits=limits,
        follow_redirects=False,
        trust_env=False,
        transport=AiohttpTransport(limits) if aiohttp else None,
        # One client serves every caller: a cookie the upstream sets for one must never
        # ride along on another's request, so the jar accepts none.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )
    # No default headers of httpx's own: the client's Accept-Encoding, User-Agent and
    # Accept go upstream as sent (a gzip the client did not ask for would reach it raw).
    client.headers.clear()
    return client


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
